// The tunnel's server side: sessions from client instances come in on sluice's listeners (TLS 1.3,
// client certificate checked against the CA and peer_hostname, HTTP/2), and each stream becomes a
// plain HTTP/1.1 request to the origin over a keep-alive pool (node:http Agent).
import { Agent, type IncomingMessage, request } from 'node:http'
import {
  constants,
  type Http2Session,
  type IncomingHttpHeaders,
  type OutgoingHttpHeaders,
  type ServerHttp2Stream,
} from 'node:http2'
import type { Socket } from 'node:net'
import { joinHostPort } from '../config/address.ts'
import type { TunnelAppSpec } from '../config/types.ts'
import type { KindStatus, Service } from '../engine/contract.ts'
import type { ErrorCode } from '../errors.ts'
import { type ListenerContext, type Tracked, track } from '../net/service.ts'
import type { Logger } from '../observe/logger.ts'
import type { Metrics } from '../observe/metrics.ts'
import type { Series } from '../observe/series.ts'
import { appendForwarded, CHUNKED_MARK, endToEnd, forwardedElement } from './headers.ts'
import { reportIgnored, TunnelStats, tunnelStatus } from './stats.ts'
import {
  loadTls,
  type PeerInfo,
  sameTls,
  type TransportServer,
  type TransportTls,
  transportServer,
} from './transport.ts'

const SERVER = 'sluice-tunnel-server'

interface Slot {
  accepted: Series
  active: Series
}

/** A synthetic answer from this side on a stream: its code (also in `sluice-error`), then what failed. */
function answer(stream: ServerHttp2Stream, status: number, code: ErrorCode, text: string): void {
  if (stream.headersSent || stream.destroyed) {
    stream.close(constants.NGHTTP2_INTERNAL_ERROR)
    return
  }
  const body = `${code}: ${text}\n`
  stream.respond({
    ':status': status,
    server: SERVER,
    'sluice-error': code,
    'content-type': 'text/plain; charset=utf-8',
    'content-length': Buffer.byteLength(body),
  })
  stream.end(body)
}

/** Why a connection to the origin failed, in words. */
function why(err: NodeJS.ErrnoException): string {
  if (err.code === 'ECONNREFUSED') return 'connection refused'
  if (err.code === 'ENOTFOUND' || err.code === 'EAI_AGAIN') return 'the name does not resolve'
  if (err.code === 'ECONNRESET') return 'the connection was reset'
  return err.code ? `${err.message} (${err.code})` : err.message
}

/** h2 request headers → the raw HTTP/1.1 list for the origin. */
function requestFields(h: IncomingHttpHeaders): [string, string][] {
  const raw: string[] = []
  for (const [name, value] of Object.entries(h)) {
    if (name.startsWith(':') || value === undefined) continue
    if (Array.isArray(value)) for (const x of value) raw.push(name, x)
    else raw.push(name, String(value))
  }
  return endToEnd(raw)
}

/** The origin's response head → h2 headers (hop-by-hop fields removed, duplicates kept). */
function responseHeaders(res: IncomingMessage): OutgoingHttpHeaders {
  const out: OutgoingHttpHeaders = { ':status': res.statusCode ?? 502 }
  for (const [n, v] of endToEnd(res.rawHeaders)) {
    const prev = out[n]
    out[n] = prev === undefined ? v : Array.isArray(prev) ? [...prev, v] : [String(prev), v]
  }
  return out
}

export class TunnelServerService implements Service<TunnelAppSpec> {
  readonly name: string
  spec: TunnelAppSpec
  readonly log: Logger
  active = 0
  #server: TransportServer | null = null
  /** Servers replaced by a reload, still holding the sessions opened on them. */
  #retired: TransportServer[] = []
  #agent: Agent
  #metrics: Metrics
  #stats: TunnelStats

  constructor(spec: TunnelAppSpec, deps: { metrics: Metrics; log: Logger }) {
    this.name = spec.name
    this.spec = spec
    this.log = deps.log.child({ app: spec.name })
    this.#metrics = deps.metrics
    this.#stats = new TunnelStats(spec.name, deps.metrics)
    this.#agent = new Agent({ keepAlive: true, maxSockets: 1024, maxFreeSockets: 256, timeout: 60_000 })
    reportIgnored(spec, this.log)
    this.#build()
  }

  #tls: TransportTls | null = null

  /**
   * A transport server for the current settings; sessions already open stay on the one they came
   * to. When the files cannot be used, the server in place (if any) goes on with the ones it has.
   */
  #build(): void {
    let tls: TransportTls
    let server: TransportServer
    try {
      tls = loadTls(this.spec)
      server = this.#transport(tls)
    } catch (err) {
      this.log.error(
        { code: 'ERR_TUNNEL_CERT', error: (err as Error).message },
        this.#server
          ? 'cannot use the TLS files; new sessions get the certificates in use'
          : 'cannot use the TLS files; sessions are refused',
      )
      return
    }
    const previous = this.#server
    this.#tls = tls
    this.#server = server
    if (previous) this.#retired.push(previous)
  }

  #transport(tls: TransportTls): TransportServer {
    return transportServer(tls, this.spec, {
      stream: (stream, headers, session) => this.#forward(stream, headers, session),
      refused: (why, remote) =>
        this.log.warn({ remote, code: 'ERR_TUNNEL_PEER_REFUSED', error: why }, 'tunnel session refused'),
      opened: (peer) => this.log.info(peerFields(peer), 'tunnel session established'),
      closed: (peer, how) => {
        const fields = {
          ...peerFields(peer),
          durationS: Number((how.ms / 1000).toFixed(1)),
          requests: how.streams,
          by: how.by,
        }
        if (how.error)
          this.log.warn({ ...fields, code: 'ERR_TUNNEL_SESSION', error: how.error }, 'tunnel session closed')
        else this.log.info(fields, 'tunnel session closed')
      },
    })
  }

  /** New settings or rotated certificate files apply to the sessions that open from now on. */
  update(spec: TunnelAppSpec): void {
    const old = this.spec
    this.spec = spec
    const key = (x: TunnelAppSpec) =>
      JSON.stringify([
        x.streamWindow,
        x.sessionWindow,
        x.maxConcurrentStreams,
        x.connectTimeout,
        x.peerHostname,
      ])
    let tls: TransportTls | null = null
    try {
      tls = loadTls(spec)
    } catch {}
    // Unreadable files: #build says so and keeps what is in use.
    if (key(old) === key(spec) && tls !== null && sameTls(tls, this.#tls)) return
    this.log.info('tunnel settings or certificates changed: new sessions get them; open ones keep theirs')
    this.#build()
  }

  #forward(stream: ServerHttp2Stream, h: IncomingHttpHeaders, session: Http2Session): void {
    if (h[':method'] === 'CONNECT') {
      this.#websocket(stream, h, session)
      return
    }
    const target = this.spec.target!
    const started = performance.now()
    const method = String(h[':method'])
    const path = String(h[':path'] ?? '/')
    let fields = requestFields(h)
    if (h[':authority'] !== undefined) fields.unshift(['host', String(h[':authority'])])
    if (this.spec.addForwarded) fields = appendForwarded(fields, forwardedElement(session.socket, 'https'))
    const chunked = h[CHUNKED_MARK] !== undefined
    if (chunked) fields.push(['transfer-encoding', 'chunked'])
    const hasBody = chunked || Number(h['content-length'] ?? 0) > 0
    const raw: string[] = []
    for (const [n, v] of fields) raw.push(n, v)
    this.#stats.opened()
    let up = 0
    let down = 0
    const fail = (status: number, code: ErrorCode, text: string) => {
      this.#stats.count(status)
      this.log.warn(
        { status, code, method, path: path.slice(0, 200), origin: `${target.host}:${target.port}` },
        text,
      )
      answer(stream, status, code, text)
    }
    const req = request({
      host: target.host,
      port: target.port,
      method,
      path,
      headers: raw,
      setHost: false,
      agent: this.#agent,
    })
    req.on('socket', (s: Socket) => s.setNoDelay(this.spec.noDelay))
    // One timer on the stream (not a socket timeout re-armed on every pooled request): no response
    // head within request_timeout fails the request with 504.
    let timedOut = false
    const timer = setTimeout(() => {
      timedOut = true
      req.destroy()
      fail(
        504,
        'ERR_TUNNEL_ORIGIN_TIMEOUT',
        `the origin ${target.host}:${target.port} sent no response within ${this.spec.requestTimeout}ms`,
      )
    }, this.spec.requestTimeout)
    req.on('error', (err: NodeJS.ErrnoException) => {
      clearTimeout(timer)
      if (timedOut) return
      if (stream.destroyed) return
      fail(
        502,
        'ERR_TUNNEL_ORIGIN',
        `the origin ${target.host}:${target.port} could not be reached: ${why(err)}`,
      )
    })
    req.on('response', (res: IncomingMessage) => {
      clearTimeout(timer)
      this.#stats.responded(started)
      this.#stats.count(res.statusCode ?? 502)
      if (stream.destroyed) {
        res.destroy()
        return
      }
      stream.respond(responseHeaders(res))
      res.on('data', (d: Buffer) => (down += d.length))
      res.pipe(stream)
      res.on('error', (err: NodeJS.ErrnoException) => {
        if (stream.destroyed) return
        this.log.warn(
          {
            code: 'ERR_TUNNEL_ORIGIN',
            method,
            path: path.slice(0, 200),
            origin: `${target.host}:${target.port}`,
            error: why(err),
          },
          'the origin connection failed after the response began: the stream is reset',
        )
        stream.close(constants.NGHTTP2_INTERNAL_ERROR)
      })
    })
    if (hasBody) {
      stream.on('data', (d: Buffer) => (up += d.length))
      stream.pipe(req)
    } else {
      stream.resume()
      req.end()
    }
    stream.on('error', () => {})
    stream.once('close', () => {
      clearTimeout(timer)
      this.#stats.closed(up, down)
      if (stream.rstCode && !req.destroyed) req.destroy()
    })
  }

  /** An extended CONNECT for a WebSocket (RFC 8441): the origin gets an HTTP/1.1 upgrade, then bytes pass both ways. */
  #websocket(stream: ServerHttp2Stream, h: IncomingHttpHeaders, session: Http2Session): void {
    const target = this.spec.target!
    stream.on('error', () => {})
    const refuse = (status: number, code: ErrorCode, text: string) => {
      this.#stats.count(status)
      this.log.warn({ status, code, path: String(h[':path']).slice(0, 200) }, text)
      answer(stream, status, code, text)
    }
    if (h[':protocol'] !== 'websocket') {
      refuse(
        501,
        'ERR_TUNNEL_UNSUPPORTED',
        `CONNECT for ${JSON.stringify(String(h[':protocol'] ?? '').slice(0, 40))} is not carried to the origin`,
      )
      return
    }
    let fields = requestFields(h)
    if (h[':authority'] !== undefined) fields.unshift(['host', String(h[':authority'])])
    if (this.spec.addForwarded) fields = appendForwarded(fields, forwardedElement(session.socket, 'https'))
    fields.push(['connection', 'Upgrade'], ['upgrade', 'websocket'])
    const raw: string[] = []
    for (const [n, v] of fields) raw.push(n, v)
    // An upgraded connection leaves the pool for good: it gets a socket of its own.
    const req = request({
      host: target.host,
      port: target.port,
      method: 'GET',
      path: String(h[':path'] ?? '/'),
      headers: raw,
      setHost: false,
      agent: false,
    })
    this.#stats.opened()
    stream.once('close', () => {
      this.#stats.closed(0, 0)
      req.destroy()
    })
    req.on('error', (err: NodeJS.ErrnoException) =>
      refuse(
        502,
        'ERR_TUNNEL_ORIGIN',
        `the origin ${target.host}:${target.port} could not be reached: ${why(err)}`,
      ),
    )
    req.on('upgrade', (res: IncomingMessage, socket: Socket, head: Buffer) => {
      this.#stats.count(101)
      socket.on('error', () => stream.close())
      const out = responseHeaders(res)
      out[':status'] = 200
      stream.respond(out)
      if (head.length) stream.write(head)
      socket.pipe(stream)
      stream.pipe(socket)
      socket.once('close', () => stream.close())
    })
    // The origin declined the upgrade: its answer goes back as it is.
    req.on('response', (res: IncomingMessage) => {
      this.#stats.count(res.statusCode ?? 502)
      stream.respond(responseHeaders(res))
      res.pipe(stream)
    })
    req.end()
  }

  attach(l: ListenerContext): void {
    const m = this.#metrics
    const labels = { app: this.name, listener: l.key }
    l.slot = { accepted: m.accepted.series(labels), active: m.active.series(labels) } satisfies Slot
  }

  handle(socket: Socket, l: ListenerContext): void {
    const slot = l.slot as Slot
    if (!this.#server) {
      socket.destroy()
      return
    }
    const server = this.#server
    // Session frames are small and latency-bound: no Nagle delay on them.
    socket.setNoDelay(true)
    const conn: Tracked = {
      destroy: () => socket.destroy(),
      flushBytes: () => {},
      // Finish the requests in flight (GOAWAY), then close.
      drain: () => {
        for (const s of server.sessions) if (!s.closed) s.close()
      },
    }
    track(this, l, slot, conn, socket)
    server.accept(socket)
  }

  /** Sessions as the status JSON shows them. */
  sessions() {
    this.#retired = this.#retired.filter((r) => r.sessions.size > 0)
    const all = [this.#server, ...this.#retired].flatMap((r) => [...(r?.sessions ?? [])])
    const out = all.map((s, index) => ({
      index,
      peer: `${s.socket?.remoteAddress}:${s.socket?.remotePort}`,
      up: !s.closed && !s.destroyed,
      streams: (s.state as { streamCount?: number } | undefined)?.streamCount ?? 0,
    }))
    this.#stats.sessionsUp.value = out.length
    return out
  }

  status(): KindStatus {
    return tunnelStatus('server', this.sessions())
  }

  summary(): Record<string, unknown> {
    return {
      mode: 'server',
      ...(this.spec.target ? { origin: joinHostPort(this.spec.target.host, this.spec.target.port) } : {}),
    }
  }

  /** The sessions gauge is brought up to date by sessions(). */
  scrape(): void {
    this.sessions()
  }

  replacedBy(next: TunnelAppSpec): boolean {
    return next.mode !== this.spec.mode
  }

  refreshFiles(): void {
    this.update(this.spec)
  }

  get watchdogFactor(): number {
    return this.spec.watchdogFactor
  }

  close(): void {
    for (const r of [this.#server, ...this.#retired]) r?.close()
    this.#agent.destroy()
  }
}

/** A session's peer in log fields: its address and the names in its certificate. */
function peerFields(peer: PeerInfo): Record<string, string> {
  return { remote: peer.remote, ...(peer.cn ? { cn: peer.cn } : {}), ...(peer.san ? { san: peer.san } : {}) }
}
