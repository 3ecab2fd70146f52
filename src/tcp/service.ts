// The tcp service: for each accepted client, try the app's targets in strategy order until one
// connects (failover), then pipe bytes, through the app's and the target's faults when it has any.
// No target: reset the client (or accept and close it) and say why.
import type { Socket } from 'node:net'
import { type Target, Upstream } from '../balance/upstream.ts'
import type { TargetSpec, TcpAppSpec } from '../config/types.ts'
import type { KindStatus, Service, ServiceDeps } from '../engine/contract.ts'
import { ConnectError } from '../errors.ts'
import { ConnectionFaults } from '../faults/connection.ts'
import { FaultSet, type FaultSetSpec } from '../faults/faultset.ts'
import { connectTime, type DialTls, dial, dialTls } from '../net/dial.ts'
import type { DnsCache } from '../net/dns.ts'
import { Pipe } from '../net/pipe.ts'
import { ByteCount, ConnectionCap, type ListenerContext, type Tracked } from '../net/service.ts'
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
  rejectedFault: Series
  bytesIn: Series
  bytesOut: Series
  session: HistogramSeries
}

let nextConnId = 1

/** One client connection through the tcp service. */
class TcpConnection implements Tracked {
  readonly id = nextConnId++
  readonly client: Socket
  readonly listener: ListenerContext
  readonly slot: Slot
  readonly started = performance.now()
  target: Target | null = null
  pipe: Pipe | null = null
  faults: ConnectionFaults | null = null
  /** The upstream socket being connected, destroyed to cancel when the client goes away. */
  pending: Socket | null = null
  done = false
  readonly #bytes = new ByteCount()

  constructor(client: Socket, listener: ListenerContext) {
    this.client = client
    this.listener = listener
    this.slot = listener.slot as Slot
  }

  destroy(_cause: 'drain' | 'shutdown'): void {
    if (this.pipe) this.pipe.destroy('killed')
    else {
      this.pending?.destroy()
      this.client.destroy()
    }
  }

  /** A fault holds this connection's data indefinitely: shutdown ends it at once. */
  get holding(): boolean {
    return this.faults?.holding ?? false
  }

  flushBytes(): void {
    this.#bytes.flush(this.client, this.slot)
  }
}

export type TcpServiceDeps = ServiceDeps

/** Balances one tcp app's connections over its targets. */
export class TcpService implements Service<TcpAppSpec> {
  readonly name: string
  spec: TcpAppSpec
  readonly upstream: Upstream
  readonly faults: FaultSet
  readonly conns = new Set<TcpConnection>()
  active = 0
  #metrics: Metrics
  #dns: DnsCache
  #log: Logger
  #debug: boolean
  #cap = new ConnectionCap()
  #tls = new Map<string, DialTls>()
  #runDuration: number | null

  constructor(spec: TcpAppSpec, deps: TcpServiceDeps) {
    this.name = spec.name
    this.spec = spec
    this.#metrics = deps.metrics
    this.#dns = deps.dns
    this.#log = deps.log.child({ app: spec.name })
    this.#debug = this.#log.isLevelEnabled('debug')
    this.#runDuration = deps.runDuration
    this.upstream = new Upstream(spec, deps.metrics, this.#log)
    this.#tls = tlsContexts(spec.targets, this.#log)
    this.faults = new FaultSet(this.#faultSpec(spec), deps.metrics, () => this.#syncFaults())
  }

  #faultSpec(spec: TcpAppSpec): FaultSetSpec {
    return {
      app: spec.name,
      faults: spec.faults,
      targets: spec.targets.filter((t) => t.faults.length).map((t) => ({ key: t.key, faults: t.faults })),
      runDuration: this.#runDuration,
    }
  }

  /** New settings apply to new connections; open ones keep their target. Faults apply to open ones too. */
  update(spec: TcpAppSpec, runDuration: number | null = this.#runDuration): void {
    this.spec = spec
    this.#runDuration = runDuration
    this.upstream.update(spec)
    this.#tls = tlsContexts(spec.targets, this.#log)
    this.#debug = this.#log.isLevelEnabled('debug')
    this.faults.update(this.#faultSpec(spec))
  }

  /** Bring every live connection's fault stages in line with the app's faults. */
  #syncFaults(): void {
    if (!this.faults) return
    for (const c of this.conns) {
      if (!c.pipe || !c.target) continue
      if (!c.faults) {
        if (this.faults.empty) continue
        c.faults = new ConnectionFaults(c.pipe, this.faults.rng)
      }
      c.faults.sync(this.faults.streamFaults(c.target.key))
    }
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
      rejectedFault: m.rejected.series({ ...labels, reason: 'fault' }),
      bytesIn: m.bytesIn.series(labels),
      bytesOut: m.bytesOut.series(labels),
      session: m.sessionSeconds.series(labels),
    }
    l.slot = slot
  }

  handle(client: Socket, l: ListenerContext): void {
    const slot = l.slot as Slot
    const spec = this.spec
    if (this.#cap.refuse(client, this.active, spec.maxConnections, l.key, slot.rejectedMax, this.#log)) return
    if (!this.faults.empty) {
      const f = this.faults.connectFault(null)
      if (f) {
        slot.rejectedFault.value++
        client.on('error', () => {})
        if (this.#debug)
          this.#log.debug({ listener: l.key, fault: f.name, type: f.type }, 'connection refused by a fault')
        if (f.type === 'refuse') client.resetAndDestroy()
        else closeClient(client)
        return
      }
    }
    this.active++
    slot.accepted.value++
    slot.active.value++
    const conn = new TcpConnection(client, l)
    l.conns.add(conn)
    this.conns.add(conn)
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
    const ready = spec.postgresClientSsl === 'refuse' ? refusePostgresEncryption(client) : Promise.resolve()
    ready
      .then(() => (client.destroyed ? undefined : this.#connect(conn)))
      .catch((err: Error) => {
        // A bug here must cost one connection, not the process.
        this.#log.error(
          { code: 'ERR_INTERNAL', listener: l.key, conn: conn.id, error: err.stack ?? err.message },
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
      const fault = this.faults.empty ? null : this.faults.connectFault(t.key)
      if (fault?.type === 'close') {
        // The target "accepts and closes": the client gets an end of stream.
        conn.target = t
        closeClient(client)
        return
      }
      try {
        if (fault?.type === 'refuse')
          throw new ConnectError('refused', t.key, `refused by fault "${fault.name}"`)
        const upstream = await dial(t.spec, {
          timeout: Math.min(spec.connectTimeout, left),
          dns: this.#dns,
          noDelay: spec.noDelay,
          keepAlive: spec.keepAlive,
          tls: this.#tls.get(t.key) ?? null,
          starttls: t.spec.starttls,
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
        failures.push({ target: t.key, reason: e.reason, error: e.detail })
        this.upstream.failed(t, e.reason, e.message, Date.now())
        const next = order[i + 1]
        this.#log.warn(
          {
            listener: conn.listener.key,
            conn: conn.id,
            target: t.key,
            reason: e.reason,
            code: e.code,
            error: e.detail,
            ...(next ? { next: next.key } : {}),
          },
          next ? 'target skipped, trying the next' : 'target failed',
        )
      }
    }
    conn.slot.rejectedNoTarget.value++
    const close = spec.onNoTarget === 'close'
    this.#log.error(
      {
        listener: conn.listener.key,
        conn: conn.id,
        client: client.remoteAddress,
        code: 'ERR_NO_TARGET',
        attempts: failures,
      },
      `no target reachable; client ${close ? 'closed' : 'reset'}`,
    )
    if (close) closeClient(client)
    else client.resetAndDestroy()
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
        conn.faults?.destroy()
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
    if (!this.faults.empty && this.faults.hasStreamFaults(t.key)) {
      conn.faults = new ConnectionFaults(conn.pipe, this.faults.rng)
      conn.faults.sync(this.faults.streamFaults(t.key))
    }
  }

  #finish(conn: TcpConnection): void {
    if (conn.done) return
    conn.done = true
    this.active--
    this.conns.delete(conn)
    conn.flushBytes()
    conn.slot.active.value--
    this.#metrics.sessionSeconds.observe(conn.slot.session, (performance.now() - conn.started) / 1000)
    conn.listener.conns.delete(conn)
  }

  status(now: number): KindStatus {
    return {
      kind: 'tcp',
      strategy: this.spec.strategy,
      health: this.spec.health ? 'active' : 'passive',
      targets: this.upstream.targets.map((t) => ({
        address: t.key,
        weight: t.weight,
        up: t.isUp(now),
        checkedUp: t.checkedUp,
        ejectedForMs: Math.max(0, t.ejectedUntil - now),
        activeConnections: t.active,
        totalConnections: t.total,
        lastError: t.lastError,
        lastErrorAt: t.lastErrorAt ? new Date(t.lastErrorAt).toISOString() : null,
      })),
    }
  }

  faultStatus() {
    return this.faults.status()
  }

  hosts(): string[] {
    return this.spec.targets.map((t) => t.host)
  }

  summary(): Record<string, unknown> {
    return { targets: this.spec.targets.map((t) => t.key), strategy: this.spec.strategy }
  }

  scrape(): void {
    const now = Date.now()
    for (const t of this.upstream.targets) {
      const labels = { app: this.name, target: t.key }
      this.#metrics.targetUp.series(labels).value = t.isUp(now) ? 1 : 0
      this.#metrics.targetActive.series(labels).value = t.active
    }
  }

  setTargetHealth(target: string, up: boolean): void {
    this.upstream.setChecked(target, up)
  }

  close(): void {
    this.upstream.close()
    this.faults.close()
  }
}

const SSL_REQUEST = 80877103
const GSSENC_REQUEST = 80877104

/**
 * Answer a PostgreSQL client's SSLRequest or GSSENCRequest with 'N' (as a server without SSL does),
 * so it goes on in clear text; sluice does TLS towards the server itself (psqls). Whatever else the
 * client sent is left in the stream for the pipe: bytes are taken only once they are known to be a
 * request, so that a FIN after a few bytes (which ends the stream) loses none of them.
 */
function refusePostgresEncryption(client: Socket): Promise<void> {
  return new Promise((resolve) => {
    // Whether the first 4 bytes now buffered were seen: a length of 8 (a request, still arriving).
    let sawLength = false
    const finish = () => {
      client.removeListener('readable', onReadable)
      client.removeListener('end', finish)
      client.removeListener('close', finish)
      resolve()
    }
    const onReadable = () => {
      for (;;) {
        // 8 bytes, or null while fewer are buffered; at the end of the stream, what is left.
        const message = client.read(8) as Buffer | null
        if (message === null) {
          if (!sawLength && client.readableLength >= 4) {
            // A length other than 8 is a startup message (or anything else): hand over now.
            const length = client.read(4) as Buffer
            client.unshift(length)
            sawLength = true
            if (length.readUInt32BE(0) !== 8) finish()
          }
          return
        }
        const code = message.length === 8 ? message.readUInt32BE(4) : 0
        if (
          message.length < 8 ||
          message.readUInt32BE(0) !== 8 ||
          (code !== SSL_REQUEST && code !== GSSENC_REQUEST)
        ) {
          client.unshift(message)
          return finish()
        }
        client.write('N')
        sawLength = false
      }
    }
    client.on('readable', onReadable)
    client.once('end', finish)
    client.once('close', finish)
  })
}

/** Accept-and-close: end the client (FIN) and read what it still sends, so the close is not a reset. */
function closeClient(client: Socket): void {
  client.on('error', () => {})
  client.resume()
  client.end()
  setTimeout(() => client.destroy(), 2000).unref()
}

/** TLS settings per target key, built once per config. */
function tlsContexts(targets: TargetSpec[], log: Logger): Map<string, DialTls> {
  const out = new Map<string, DialTls>()
  for (const t of targets) {
    if (!t.tls || out.has(t.key)) continue
    const caFile = t.tls.caFile
    out.set(
      t.key,
      dialTls(t.tls, t.host, (err) =>
        log.error(
          { code: 'ERR_CONFIG_READ', target: t.key, caFile, error: err.message },
          'cannot read the CA file',
        ),
      ),
    )
  }
  return out
}
