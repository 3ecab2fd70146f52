// The tcp service: for each accepted client, try the app's targets in strategy order until one
// connects (failover), then pipe bytes. No target: reset the client and say why.
import type { Socket } from 'node:net'
import { type Target, Upstream } from '../balance/upstream.ts'
import type { TcpAppSpec } from '../config/types.ts'
import { ConnectError } from '../errors.ts'
import { connectTime, dial } from '../net/dial.ts'
import type { DnsCache } from '../net/dns.ts'
import { Pipe } from '../net/pipe.ts'
import type { ListenerContext, Service, Tracked } from '../net/service.ts'
import type { Logger } from '../observe/logger.ts'
import type { Metrics } from '../observe/metrics.ts'
import type { HistogramSeries, Series } from '../observe/series.ts'

/** Metric series for one (app, listener) pair, resolved when the listener is attached. */
interface Slot {
  listener: string
  accepted: Series
  active: Series
  rejectedMax: Series
  rejectedNoTarget: Series
  bytesIn: Series
  bytesOut: Series
  session: HistogramSeries
}

let nextConnId = 1

/** One client connection through the tcp service. */
class TcpConnection implements Tracked {
  readonly id = nextConnId++
  readonly client: Socket
  readonly service: TcpService
  readonly listener: ListenerContext
  readonly slot: Slot
  readonly started = performance.now()
  target: Target | null = null
  pipe: Pipe | null = null
  /** The upstream socket being connected, destroyed to cancel when the client goes away. */
  pending: Socket | null = null
  done = false
  #in = 0
  #out = 0

  constructor(service: TcpService, client: Socket, listener: ListenerContext) {
    this.service = service
    this.client = client
    this.listener = listener
    this.slot = listener.slot as Slot
  }

  destroy(cause: 'drain' | 'shutdown'): void {
    if (this.pipe) this.pipe.destroy(cause === 'drain' ? 'killed' : 'killed')
    else {
      this.pending?.destroy()
      this.client.destroy()
    }
  }

  flushBytes(): void {
    const read = this.client.bytesRead
    const written = this.client.bytesWritten
    this.slot.bytesIn.value += read - this.#in
    this.slot.bytesOut.value += written - this.#out
    this.#in = read
    this.#out = written
  }
}

/** Balances one tcp app's connections over its targets. */
export class TcpService implements Service {
  readonly name: string
  spec: TcpAppSpec
  readonly upstream: Upstream
  active = 0
  #metrics: Metrics
  #dns: DnsCache
  #log: Logger
  #debug: boolean
  #lastCapWarning = 0

  constructor(spec: TcpAppSpec, deps: { metrics: Metrics; dns: DnsCache; log: Logger }) {
    this.name = spec.name
    this.spec = spec
    this.#metrics = deps.metrics
    this.#dns = deps.dns
    this.#log = deps.log.child({ app: spec.name })
    this.#debug = this.#log.isLevelEnabled('debug')
    this.upstream = new Upstream(spec, deps.metrics, this.#log)
  }

  /** New settings apply to new connections; open ones keep their target. */
  update(spec: TcpAppSpec): void {
    this.spec = spec
    this.upstream.update(spec)
    this.#debug = this.#log.isLevelEnabled('debug')
  }

  attach(l: ListenerContext): void {
    const m = this.#metrics
    const labels = { app: this.name, listener: l.key }
    const slot: Slot = {
      listener: l.key,
      accepted: m.accepted.series(labels),
      active: m.active.series(labels),
      rejectedMax: m.rejected.series({ ...labels, reason: 'max_connections' }),
      rejectedNoTarget: m.rejected.series({ ...labels, reason: 'no_target' }),
      bytesIn: m.bytesIn.series(labels),
      bytesOut: m.bytesOut.series(labels),
      session: m.sessionSeconds.series(labels),
    }
    l.slot = slot
  }

  handle(client: Socket, l: ListenerContext): void {
    const slot = l.slot as Slot
    const spec = this.spec
    if (spec.maxConnections > 0 && this.active >= spec.maxConnections) {
      slot.rejectedMax.value++
      client.on('error', () => {})
      client.resetAndDestroy()
      const now = Date.now()
      if (now - this.#lastCapWarning > 1000) {
        this.#lastCapWarning = now
        this.#log.warn(
          { listener: l.key, max: spec.maxConnections },
          'connection reset: max_connections reached',
        )
      }
      return
    }
    this.active++
    slot.accepted.value++
    slot.active.value++
    const conn = new TcpConnection(this, client, l)
    l.conns.add(conn)
    client.on('error', () => {
      // Errors before the pipe exists (client reset while dialing) end the connection via 'close'.
    })
    client.once('close', () => {
      if (!conn.pipe) {
        conn.pending?.destroy()
        this.#finish(conn)
      }
    })
    if (spec.noDelay) client.setNoDelay(true)
    if (spec.keepAlive) client.setKeepAlive(true, spec.keepAlive)
    this.#connect(conn).catch((err: Error) => {
      // A bug here must cost one connection, not the process.
      this.#log.error(
        { listener: l.key, conn: conn.id, error: err.stack ?? err.message },
        'connection failed unexpectedly',
      )
      conn.pending?.destroy()
      client.destroy()
    })
  }

  async #connect(conn: TcpConnection): Promise<void> {
    const spec = this.spec
    const client = conn.client
    const now = Date.now()
    // remoteAddress costs a getpeername call: only the hash strategy asks for it.
    const order = this.upstream.order(() => client.remoteAddress ?? '', now)
    const deadline = now + spec.connectBudget
    const failures: { target: string; reason: string; error: string }[] = []
    for (let i = 0; i < order.length; i++) {
      const t = order[i]!
      const left = deadline - Date.now()
      if (left <= 0) {
        failures.push({
          target: t.key,
          reason: 'budget',
          error: `connect_budget of ${spec.connectBudget}ms spent`,
        })
        break
      }
      if (i > 0) this.#metrics.retries.series({ app: this.name }).value++
      try {
        const upstream = await dial(t.spec, {
          timeout: Math.min(spec.connectTimeout, left),
          dns: this.#dns,
          noDelay: spec.noDelay,
          keepAlive: spec.keepAlive,
          onAttempt: (s) => {
            conn.pending = s
          },
        })
        conn.pending = null
        if (client.destroyed) {
          upstream.destroy()
          return
        }
        this.upstream.succeeded(t, connectTime(upstream))
        this.#proxy(conn, t, upstream)
        return
      } catch (err) {
        conn.pending = null
        if (client.destroyed) return
        const e = err instanceof ConnectError ? err : new ConnectError('error', t.key, String(err))
        failures.push({ target: t.key, reason: e.reason, error: e.message })
        this.upstream.failed(t, e.reason, e.message, Date.now())
        const next = order[i + 1]
        this.#log.warn(
          {
            listener: conn.listener.key,
            conn: conn.id,
            target: t.key,
            reason: e.reason,
            code: e.code,
            error: e.message,
          },
          next ? `target skipped: ${e.reason}, trying ${next.key}` : `target failed: ${e.reason}`,
        )
      }
    }
    conn.slot.rejectedNoTarget.value++
    this.#log.error(
      {
        listener: conn.listener.key,
        conn: conn.id,
        client: client.remoteAddress,
        code: 'ERR_NO_TARGET',
        attempts: failures,
      },
      `no target reachable (${failures.map((f) => `${f.target}: ${f.reason}`).join(', ')}); client reset`,
    )
    client.resetAndDestroy()
  }

  #proxy(conn: TcpConnection, t: Target, upstream: Socket): void {
    conn.target = t
    t.active++
    if (this.#debug) {
      this.#log.debug(
        { listener: conn.listener.key, conn: conn.id, client: conn.client.remoteAddress, target: t.key },
        'connection proxied',
      )
    }
    conn.pipe = new Pipe(conn.client, upstream, {
      idleTimeout: this.spec.idleTimeout,
      onClose: (pipe) => {
        t.active--
        if (this.#debug) {
          this.#log.debug(
            {
              listener: conn.listener.key,
              conn: conn.id,
              target: t.key,
              cause: pipe.cause,
              bytesIn: conn.client.bytesRead,
              bytesOut: conn.client.bytesWritten,
              ms: Math.round(performance.now() - conn.started),
            },
            'connection closed',
          )
        }
        this.#finish(conn)
      },
    })
  }

  #finish(conn: TcpConnection): void {
    if (conn.done) return
    conn.done = true
    this.active--
    conn.flushBytes()
    conn.slot.active.value--
    this.#metrics.sessionSeconds.observe(conn.slot.session, (performance.now() - conn.started) / 1000)
    conn.listener.conns.delete(conn)
  }

  close(): void {
    this.upstream.close()
  }
}
