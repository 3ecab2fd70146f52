// The tunnel's client side: plain HTTP/1.1 from service A (node:http, fed by sluice's listeners),
// each request carried as one stream over N persistent sessions to the server instance. Sessions
// are opened at start, kept alive with PINGs, replaced every connect_interval when one drops, and
// count as up only after a first exchange (a PING answered: with TLS 1.3 a refused client
// certificate shows only after the handshake). A request goes to the least-loaded session that is up.
// Failed attempts back off and are logged by state change (reconnect.ts), not one line each.
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http'
import type { ClientHttp2Stream, IncomingHttpHeaders, OutgoingHttpHeaders } from 'node:http2'
import type { Socket } from 'node:net'
import { joinHostPort } from '../config/address.ts'
import type { TunnelAppSpec } from '../config/types.ts'
import type { KindStatus, Service } from '../engine/contract.ts'
import type { ErrorCode } from '../errors.ts'
import type { ListenerContext, Tracked } from '../net/service.ts'
import { ByteCount, track } from '../net/service.ts'
import type { Logger } from '../observe/logger.ts'
import type { Metrics } from '../observe/metrics.ts'
import { notify } from '../observe/notify.ts'
import type { Series } from '../observe/series.ts'
import {
  appendForwarded,
  CHUNKED_MARK,
  endToEnd,
  forwardedElement,
  supportedTransferEncoding,
} from './headers.ts'
import { BACKOFF_MAX, Backoff, type Failure, PeerReport } from './reconnect.ts'
import { reportIgnored, TunnelStats, tunnelStatus } from './stats.ts'
import { type ClientSession, connectSession, loadTls, sameTls, type TransportTls } from './transport.ts'

const SERVER = 'sluice-tunnel-client'

interface Slot {
  accepted: Series
  active: Series
  bytesIn: Series
  bytesOut: Series
}

/** One of the N session slots: the session when up, and what happened last. */
interface SessionSlot {
  index: number
  session: ClientSession | null
  up: boolean
  since: number
  rtt: number | null
  lastAck: number
  lastError: string | null
  attempts: number
  timer: NodeJS.Timeout | null
  backoff: Backoff
}

/** An HTTP/1.1 connection from A, tracked by its listener. */
class Conn implements Tracked {
  inFlight = 0
  draining = false
  readonly #bytes = new ByteCount()
  readonly socket: Socket
  readonly slot: Slot
  constructor(socket: Socket, slot: Slot) {
    this.socket = socket
    this.slot = slot
  }
  destroy(): void {
    this.socket.destroy()
  }
  flushBytes(): void {
    this.#bytes.flush(this.socket, this.slot)
  }
  drain(): void {
    this.draining = true
    if (this.inFlight === 0) this.socket.end()
  }
}

/** A synthetic answer from this side: its code (also in `sluice-error`), then short text saying what failed. */
function answer(res: ServerResponse, status: number, code: ErrorCode, text: string): void {
  if (res.headersSent) {
    res.destroy()
    return
  }
  const body = `${code}: ${text}\n`
  res.writeHead(status, {
    server: SERVER,
    'sluice-error': code,
    'content-type': 'text/plain; charset=utf-8',
    'content-length': Buffer.byteLength(body),
  })
  res.end(body)
}

/** The same, written on a raw socket (CONNECT, upgrades, unparsable requests), which is then closed. */
function rawAnswer(
  socket: Socket,
  status: number,
  reason: string,
  code: ErrorCode,
  text: string,
  extra = '',
): void {
  const body = `${code}: ${text}\n`
  socket.end(
    `HTTP/1.1 ${status} ${reason}\r\nServer: ${SERVER}\r\nSluice-Error: ${code}\r\n${extra}Content-Type: text/plain; charset=utf-8\r\nContent-Length: ${Buffer.byteLength(body)}\r\nConnection: close\r\n\r\n${body}`,
  )
}

/** How often node:http looks for heads past their deadline: a tenth of it, between 50 ms and 1 s. */
function checkEvery(headerTimeout: number): number {
  return Math.max(50, Math.min(1000, Math.round(headerTimeout / 10)))
}

/** h2 response headers → a flat HTTP/1.1 raw list (duplicates as separate fields). */
function responseFields(h: IncomingHttpHeaders): string[] {
  const out: string[] = []
  for (const [name, value] of Object.entries(h)) {
    if (name.startsWith(':') || value === undefined) continue
    if (Array.isArray(value)) for (const x of value) out.push(name, x)
    else out.push(name, String(value))
  }
  const raw: string[] = []
  for (const [n, v] of endToEnd(out)) raw.push(n, v)
  return raw
}

export class TunnelClientService implements Service<TunnelAppSpec> {
  readonly name: string
  spec: TunnelAppSpec
  readonly log: Logger
  active = 0
  readonly slots: SessionSlot[] = []
  /** Resolves when every slot's first connection attempt has ended (systemd READY). */
  readonly firstAttempt: Promise<void>
  #firstDone: () => void = () => {}
  #pendingFirst: number
  #http: Server
  #tls: TransportTls | null = null
  #metrics: Metrics
  #closed = false
  #ping: NodeJS.Timeout | null = null
  #stats: TunnelStats
  #lastStatus = ''
  #report = new PeerReport()

  constructor(spec: TunnelAppSpec, deps: { metrics: Metrics; log: Logger }) {
    this.name = spec.name
    this.spec = spec
    this.log = deps.log.child({ app: spec.name })
    this.#metrics = deps.metrics
    this.#stats = new TunnelStats(spec.name, deps.metrics)
    this.#pendingFirst = spec.sessions
    this.firstAttempt = new Promise((r) => {
      this.#firstDone = r
    })
    this.#http = createServer({
      requireHostHeader: false,
      keepAliveTimeout: spec.clientIdleTimeout,
      // A deadline per request head, from its first byte (node:http's parser keeps the time);
      // the body streams with no overall limit.
      headersTimeout: spec.headerTimeout,
      requestTimeout: 0,
      connectionsCheckingInterval: checkEvery(spec.headerTimeout),
    })
    // Sockets come from sluice's listeners, so this server never listens: node:http starts the
    // checker that enforces headersTimeout on 'listening', so that is emitted here.
    this.#http.emit('listening')
    // A client that half-closes after its request (printf … | socat) still wants the response:
    // node:http otherwise aborts the in-flight request on the client's FIN. With this flag it
    // answers, then ends the socket (the response is marked last).
    ;(this.#http as Server & { httpAllowHalfOpen: boolean }).httpAllowHalfOpen = true
    this.#http.on('request', (req: IncomingMessage, res: ServerResponse) => this.#forward(req, res))
    // CONNECT has no meaning across the tunnel.
    this.#http.on('connect', (req: IncomingMessage, socket: Socket) => {
      const text = 'CONNECT is not supported by the tunnel'
      this.#stats.count(405)
      this.log.warn(
        { status: 405, code: 'ERR_TUNNEL_UNSUPPORTED', method: 'CONNECT', url: req.url?.slice(0, 200) },
        text,
      )
      rawAnswer(
        socket,
        405,
        'Method Not Allowed',
        'ERR_TUNNEL_UNSUPPORTED',
        text,
        'Allow: GET, HEAD, POST, PUT, PATCH, DELETE, OPTIONS\r\n',
      )
    })
    // WebSocket rides on an extended CONNECT stream (RFC 8441); other upgrades are not carried.
    this.#http.on('upgrade', (req: IncomingMessage, socket: Socket, head: Buffer) =>
      this.#upgrade(req, socket, head),
    )
    this.#http.on('clientError', (err: NodeJS.ErrnoException, socket: Socket) => {
      // The parser fails again on every later chunk: answer once, drop the rest while the client
      // is still sending (a close with unread bytes would be a reset), then close.
      const s = socket as Socket & { sluiceAnswered?: boolean }
      if (s.sluiceAnswered) return
      s.sluiceAnswered = true
      if (!socket.writable) return socket.destroy()
      // A connection that never sent a byte (a browser's preconnect) is closed quietly, as the http
      // app closes an idle one: there is no request to answer.
      if (err.code === 'ERR_HTTP_REQUEST_TIMEOUT' && socket.bytesRead === 0) return socket.destroy()
      const [status, reason, code, text] =
        err.code === 'ERR_HTTP_REQUEST_TIMEOUT'
          ? ([
              408,
              'Request Timeout',
              'ERR_TUNNEL_CLIENT_TIMEOUT',
              `no complete request head within ${this.spec.headerTimeout}ms`,
            ] as const)
          : err.code === 'HPE_HEADER_OVERFLOW'
            ? ([
                431,
                'Request Header Fields Too Large',
                'ERR_TUNNEL_HEAD_TOO_LARGE',
                'request head too large',
              ] as const)
            : ([
                400,
                'Bad Request',
                'ERR_TUNNEL_BAD_REQUEST',
                `malformed request: ${err.code ?? err.message}`,
              ] as const)
      this.#stats.count(status)
      this.log.warn({ status, code, remote: socket.remoteAddress }, text)
      rawAnswer(socket, status, reason, code, text)
      socket.on('error', () => {})
      socket.resume()
      setTimeout(() => socket.destroy(), 2000).unref()
    })
    reportIgnored(spec, this.log)
    // A disabled app listens nowhere and opens no session to its peer.
    if (spec.enabled) this.#start()
    else this.#firstDone()
  }

  /** The certificate files, or null (logged unless `quiet`) when one cannot be read. */
  #readTls(spec: TunnelAppSpec, quiet = false): TransportTls | null {
    try {
      return loadTls(spec)
    } catch (err) {
      if (!quiet)
        this.log.error(
          { code: 'ERR_TUNNEL_CERT', error: (err as Error).message },
          'cannot read the TLS files; the tunnel stays down',
        )
      return null
    }
  }

  #start(tls: TransportTls | null = this.#readTls(this.spec)): void {
    this.#tls = tls
    for (let i = 0; i < this.spec.sessions; i++) {
      const slot: SessionSlot = {
        index: i,
        session: null,
        up: false,
        since: 0,
        rtt: null,
        lastAck: 0,
        lastError: null,
        attempts: 0,
        timer: null,
        backoff: new Backoff(this.spec.connectInterval),
      }
      this.slots.push(slot)
      this.#connect(slot)
    }
    this.#ping = setInterval(() => this.#keepalive(), this.spec.keepaliveInterval)
    this.#ping.unref()
  }

  /** The configuration changed: sessions are re-opened only when what they depend on changed. */
  /**
   * The configuration changed (or a reload asked): sessions are re-opened only when what they depend
   * on changed, certificate files included (a rotated certificate is picked up by a reload).
   */
  update(spec: TunnelAppSpec): void {
    const old = this.spec
    this.spec = spec
    this.#http.headersTimeout = spec.headerTimeout
    this.#http.keepAliveTimeout = spec.clientIdleTimeout
    const key = (x: TunnelAppSpec) =>
      JSON.stringify([
        x.peer,
        x.sessions,
        x.localAddress,
        x.streamWindow,
        x.sessionWindow,
        x.maxConcurrentStreams,
      ])
    // Files that cannot be read now (a rotation half done) leave the sessions on the ones in use.
    const tls = this.#readTls(spec, this.#tls !== null) ?? this.#tls
    if (tls === this.#tls && this.#tls !== null)
      this.log.error(
        { code: 'ERR_TUNNEL_CERT', error: tlsFilesFailure(spec).error },
        'cannot read the TLS files; the sessions keep the certificates in use',
      )
    if (!spec.enabled) {
      if (old.enabled) {
        this.#stopSessions(false, 'app disabled')
        this.slots.length = 0
      }
      return
    }
    if (old.enabled && key(old) === key(spec) && sameTls(tls, this.#tls)) return
    this.log.info(
      'tunnel settings or certificates changed: opening new sessions; requests in flight finish on the old ones',
    )
    this.#stopSessions(false, 'new settings or certificates')
    this.slots.length = 0
    this.#closed = false
    this.#report = new PeerReport()
    this.#start(tls)
  }

  /** An attempt of `slot` failed: counted, logged if that changes the tunnel's state, retried later. */
  #fail(slot: SessionSlot, failure: Failure): void {
    slot.lastError = failure.error
    this.#metrics.tunnelReconnects.series({ app: this.name, result: 'failed' }).value++
    const wait = slot.backoff.failed()
    const fields = {
      session: slot.index,
      peer: this.#peer(),
      code: 'ERR_TUNNEL_SESSION',
      error: failure.error,
      ...(failure.cause ? { cause: failure.cause } : {}),
    }
    this.log.debug({ ...fields, attempt: slot.attempts, retryInMs: wait }, 'tunnel session attempt failed')
    const r = this.#report.failed(slot.index, failure, this.slots.filter((x) => x.up).length)
    if (r?.kind === 'unreachable')
      this.log.warn(
        { ...fields, retryInMs: wait },
        `tunnel peer unreachable: ${failure.error}; retrying, backing off up to ${Math.max(BACKOFF_MAX, this.spec.connectInterval) / 1000}s`,
      )
    else if (r?.kind === 'still-unreachable')
      this.log.warn(
        { ...fields, attempts: r.attempts, unreachableForS: Math.round(r.forMs / 1000) },
        `tunnel peer still unreachable: ${r.attempts} attempts in ${Math.round(r.forMs / 1000)}s, last error ${failure.cause ?? 'ERR_TUNNEL_SESSION'}: ${failure.error}`,
      )
    else if (r?.kind === 'slot-failing')
      this.log.warn(fields, `tunnel session cannot be re-opened: ${failure.error}; retrying`)
    this.#status()
    this.#retry(slot, wait)
  }

  #peer(): string {
    const p = this.spec.peer!
    return p.host.includes(':') ? `[${p.host}]:${p.port}` : `${p.host}:${p.port}`
  }

  #firstAttemptEnded(slot: SessionSlot): void {
    if (slot.attempts !== 1) return
    if (--this.#pendingFirst === 0) this.#firstDone()
  }

  async #connect(slot: SessionSlot): Promise<void> {
    slot.timer = null
    if (this.#closed) return
    slot.attempts++
    const spec = this.spec
    // Files that could not be read are tried again at each attempt.
    this.#tls ??= this.#readTls(spec, true)
    if (!this.#tls) {
      this.#fail(slot, tlsFilesFailure(spec))
      this.#firstAttemptEnded(slot)
      return
    }
    let session: ClientSession | null = null
    let gaveUp = false
    let timer: NodeJS.Timeout | undefined
    const timeout = new Promise<never>((_, reject) => {
      timer = setTimeout(() => {
        gaveUp = true
        reject(new Error(`no session within connect_timeout (${spec.connectTimeout}ms)`))
      }, spec.connectTimeout)
    })
    timeout.catch(() => {})
    try {
      const pending = connectSession(
        { host: spec.peer!.host, port: spec.peer!.port, localAddress: spec.localAddress, noDelay: true },
        this.#tls,
        spec,
      )
      pending.then(
        (s) => gaveUp && s.destroy(),
        () => {},
      )
      session = await Promise.race([pending, timeout])
      // The first exchange: only an answered PING proves the peer accepted our certificate.
      const rtt = await Promise.race([session.ping(), timeout])
      clearTimeout(timer)
      if (this.#closed || session.closed) {
        session.destroy()
        throw new Error('the session closed during set-up')
      }
      slot.session = session
      slot.up = true
      slot.since = Date.now()
      slot.rtt = rtt
      slot.lastAck = performance.now()
      slot.lastError = null
      slot.backoff.reset()
      this.#metrics.tunnelReconnects.series({ app: this.name, result: 'up' }).value++
      const spell = this.#report.up(slot.index)
      this.log.info(
        {
          session: slot.index,
          peer: session.peer,
          ...certFields(session.cert),
          rttMs: Number(rtt.toFixed(3)),
          ...(spell
            ? { failedAttempts: spell.attempts, unreachableForS: Math.round(spell.downForMs / 1000) }
            : {}),
        },
        spell
          ? `tunnel session established, after ${spell.attempts} failed attempts in ${Math.round(spell.downForMs / 1000)}s`
          : 'tunnel session established',
      )
      const s = session
      session.onClose((err) => {
        if (slot.session !== s) return
        slot.session = null
        slot.up = false
        if (this.#closed) return
        const why = err ? describe(err) : { error: 'the session closed', cause: null }
        slot.lastError = why.error
        this.log.warn(
          {
            session: slot.index,
            peer: s.peer,
            ...certFields(s.cert),
            durationS: Number(((Date.now() - slot.since) / 1000).toFixed(1)),
            code: 'ERR_TUNNEL_SESSION',
            error: why.error,
            ...(why.cause ? { cause: why.cause } : {}),
            retryInMs: this.spec.connectInterval,
          },
          'tunnel session closed',
        )
        this.#status()
        this.#retry(slot, this.spec.connectInterval)
      })
      this.#status()
      this.#firstAttemptEnded(slot)
    } catch (err) {
      clearTimeout(timer)
      session?.destroy()
      this.#fail(slot, describe(err as Error))
      this.#firstAttemptEnded(slot)
    }
  }

  #retry(slot: SessionSlot, wait: number): void {
    if (this.#closed || slot.timer) return
    slot.timer = setTimeout(() => this.#connect(slot), wait)
  }

  /** PING every session; one whose answers stop for idle_timeout is dropped (its requests fail with 502). */
  #keepalive(): void {
    const now = performance.now()
    for (const slot of this.slots) {
      const s = slot.session
      if (!s || !slot.up) continue
      if (now - slot.lastAck > this.spec.idleTimeout) {
        s.destroy(new Error(`no answer to PING for ${this.spec.idleTimeout}ms`))
        continue
      }
      s.ping().then(
        (rtt) => {
          slot.rtt = rtt
          slot.lastAck = performance.now()
        },
        () => {},
      )
    }
  }

  #status(): void {
    const up = this.slots.filter((s) => s.up).length
    const line =
      up > 0
        ? `tunnel established (${up}/${this.slots.length} sessions to ${this.#peer()})`
        : `connection failed: ${this.slots.find((s) => s.lastError)?.lastError ?? 'not connected yet'}`
    this.#stats.sessionsUp.value = up
    if (line !== this.#lastStatus) {
      this.#lastStatus = line
      notify([`STATUS=${line}`])
    }
  }

  /** The least-loaded session that is up, or null. */
  #pick(): ClientSession | null {
    let best: ClientSession | null = null
    for (const slot of this.slots) {
      const s = slot.session
      if (!slot.up || !s || s.closed) continue
      if (best === null || s.streams < best.streams) best = s
    }
    return best
  }

  #forward(req: IncomingMessage, res: ServerResponse): void {
    const conn = (req.socket as Socket & { sluice?: Conn }).sluice
    if (conn) {
      conn.inFlight++
      if (conn.draining) res.shouldKeepAlive = false
      res.once('close', () => {
        conn.inFlight--
        if (conn.draining && conn.inFlight === 0) conn.socket.end()
      })
    }
    const fail = (status: number, code: ErrorCode, text: string) => {
      this.#stats.count(status)
      answer(res, status, code, text)
      this.log.warn({ status, code, method: req.method, url: req.url?.slice(0, 200) }, text)
    }
    const refusal = refuseRequest(req)
    if (refusal) {
      req.resume()
      res.shouldKeepAlive = false
      fail(400, 'ERR_TUNNEL_BAD_REQUEST', refusal)
      return
    }
    const session = this.#pick()
    if (!session) {
      req.resume()
      const why = this.slots.find((s) => s.lastError)?.lastError ?? 'no session yet'
      fail(503, 'ERR_TUNNEL_DOWN', `the tunnel to ${this.#peer()} is not established (${why})`)
      return
    }
    const started = performance.now()
    const chunked = req.headers['transfer-encoding'] !== undefined
    const hasBody = chunked || Number(req.headers['content-length'] ?? 0) > 0
    let fields = endToEnd(req.rawHeaders)
    if (this.spec.addForwarded) fields = appendForwarded(fields, forwardedElement(req.socket, 'http'))
    const headers: OutgoingHttpHeaders = { ':method': req.method, ':path': req.url, ':scheme': 'http' }
    if (req.headers.host !== undefined) headers[':authority'] = req.headers.host
    for (const [n, v] of fields) {
      const prev = headers[n]
      headers[n] = prev === undefined ? v : Array.isArray(prev) ? [...prev, v] : [String(prev), v]
    }
    if (chunked) headers[CHUNKED_MARK] = '1'
    let stream: ClientHttp2Stream
    try {
      stream = session.request(headers, !hasBody)
    } catch (err) {
      req.resume()
      fail(502, 'ERR_TUNNEL_STREAM', `the tunnel could not send the request: ${(err as Error).message}`)
      return
    }
    this.#stats.opened()
    let up = 0
    let down = 0
    let gone = false
    if (hasBody) {
      req.on('data', (d: Buffer) => (up += d.length))
      req.pipe(stream)
    }
    // Set once a failure was answered or A's connection cut: later events of the stream say nothing more.
    let failed = false
    stream.setTimeout(this.spec.requestTimeout, () => {
      failed = true
      if (!res.headersSent)
        fail(504, 'ERR_TUNNEL_TIMEOUT', `no response through the tunnel within ${this.spec.requestTimeout}ms`)
      stream.close()
    })
    stream.once('response', (h) => {
      stream.setTimeout(0)
      const status = Number(h[':status'])
      this.#stats.responded(started)
      this.#stats.count(status)
      if (status < 200) return
      res.writeHead(status, responseFields(h))
      stream.on('data', (d: Buffer) => (down += d.length))
      stream.pipe(res)
    })
    // A failure after the response head began: A's connection is cut (a truncated body must not look whole).
    const cut = (why: Record<string, unknown>, text: string) => {
      this.log.warn(
        { code: 'ERR_TUNNEL_STREAM', method: req.method, url: req.url?.slice(0, 200), ...why },
        text,
      )
      res.destroy()
    }
    stream.on('error', (err) => {
      if (failed || gone) return
      failed = true
      if (!res.headersSent)
        fail(502, 'ERR_TUNNEL_STREAM', `the tunnel failed while sending: ${describe(err).error}`)
      else
        cut(
          { error: describe(err).error },
          'the tunnel stream failed after the response began: the connection to A is cut',
        )
    })
    stream.once('close', () => {
      this.#stats.closed(up, down)
      // A's connection went first: nobody to answer, nothing to report.
      if (gone || failed) return
      if (!res.headersSent)
        fail(502, 'ERR_TUNNEL_STREAM', `the tunnel stream ended without a response (code ${stream.rstCode})`)
      else if (!res.writableFinished && stream.rstCode)
        cut(
          { rstCode: stream.rstCode },
          'the tunnel stream was reset after the response began: the connection to A is cut',
        )
    })
    res.once('close', () => {
      if (!res.writableFinished) gone = true
      if (!stream.closed) stream.close()
    })
  }

  /** A WebSocket handshake from A: carried as an extended CONNECT stream, then bytes both ways. */
  #upgrade(req: IncomingMessage, socket: Socket, head: Buffer): void {
    socket.on('error', () => {})
    const raw = (status: number, reason: string, code: ErrorCode, text: string) => {
      this.#stats.count(status)
      this.log.warn({ status, code, method: req.method, url: req.url?.slice(0, 200) }, text)
      rawAnswer(socket, status, reason, code, text)
    }
    const proto = String(req.headers.upgrade ?? '').toLowerCase()
    if (proto !== 'websocket') {
      raw(
        501,
        'Not Implemented',
        'ERR_TUNNEL_UNSUPPORTED',
        `upgrades to ${JSON.stringify(proto.slice(0, 40))} are not carried by the tunnel (WebSocket is)`,
      )
      return
    }
    const session = this.#pick()
    if (!session) {
      raw(503, 'Service Unavailable', 'ERR_TUNNEL_DOWN', `the tunnel to ${this.#peer()} is not established`)
      return
    }
    let fields = endToEnd(req.rawHeaders)
    if (this.spec.addForwarded) fields = appendForwarded(fields, forwardedElement(req.socket, 'http'))
    const headers: OutgoingHttpHeaders = {
      ':method': 'CONNECT',
      ':protocol': 'websocket',
      ':scheme': 'http',
      ':path': req.url,
      ':authority': req.headers.host ?? this.spec.peerHostname,
    }
    for (const [n, v] of fields) {
      const prev = headers[n]
      headers[n] = prev === undefined ? v : Array.isArray(prev) ? [...prev, v] : [String(prev), v]
    }
    let stream: ClientHttp2Stream
    try {
      stream = session.request(headers, false)
    } catch (err) {
      raw(
        502,
        'Bad Gateway',
        'ERR_TUNNEL_STREAM',
        `the tunnel could not carry the WebSocket: ${(err as Error).message}`,
      )
      return
    }
    this.#stats.opened()
    stream.once('close', () => {
      this.#stats.closed(0, 0)
      socket.destroy()
    })
    stream.on('error', () => socket.destroy())
    socket.once('close', () => stream.close())
    stream.once('response', (h) => {
      const status = Number(h[':status'])
      this.#stats.count(status === 200 ? 101 : status)
      const lines = responseFields(h)
      let text =
        status === 200
          ? 'HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n'
          : `HTTP/1.1 ${status} Refused\r\nConnection: close\r\n`
      for (let i = 0; i < lines.length; i += 2) text += `${lines[i]}: ${lines[i + 1]}\r\n`
      socket.write(`${text}\r\n`)
      if (status !== 200) {
        stream.pipe(socket)
        return
      }
      if (head.length) stream.write(head)
      socket.pipe(stream)
      stream.pipe(socket)
    })
  }

  attach(l: ListenerContext): void {
    const m = this.#metrics
    const labels = { app: this.name, listener: l.key }
    l.slot = {
      accepted: m.accepted.series(labels),
      active: m.active.series(labels),
      bytesIn: m.bytesIn.series(labels),
      bytesOut: m.bytesOut.series(labels),
    } satisfies Slot
  }

  handle(socket: Socket, l: ListenerContext): void {
    const slot = l.slot as Slot
    socket.setNoDelay(this.spec.noDelay)
    const conn = new Conn(socket, slot)
    ;(socket as Socket & { sluice?: Conn }).sluice = conn
    track(this, l, slot, conn, socket, () => conn.flushBytes())
    this.#http.emit('connection', socket)
  }

  /** Sessions as the status JSON shows them. */
  sessions() {
    return this.slots.map((s) => ({
      index: s.index,
      peer: s.session?.peer ?? this.#peer(),
      up: s.up,
      ageSeconds: s.up ? Math.round((Date.now() - s.since) / 1000) : 0,
      rttMs: s.rtt === null ? null : Number(s.rtt.toFixed(3)),
      streams: s.session?.streams ?? 0,
      attempts: s.attempts,
      lastError: s.lastError,
    }))
  }

  /** Close every session (`now`: without waiting for requests in flight); each says so when it is gone. */
  #stopSessions(now: boolean, by: string): void {
    this.#closed = true
    if (this.#ping) clearInterval(this.#ping)
    for (const slot of this.slots) {
      if (slot.timer) clearTimeout(slot.timer)
      const s = slot.session
      slot.session = null
      slot.up = false
      if (!s) continue
      const since = slot.since
      s.onClose(() =>
        this.log.info(
          {
            session: slot.index,
            peer: s.peer,
            ...certFields(s.cert),
            durationS: Number(((Date.now() - since) / 1000).toFixed(1)),
            by,
          },
          'tunnel session closed',
        ),
      )
      if (now) s.destroy()
      else s.close()
    }
    this.#stats.sessionsUp.value = 0
  }

  status(): KindStatus {
    return tunnelStatus('client', this.sessions())
  }

  summary(): Record<string, unknown> {
    return {
      mode: 'client',
      ...(this.spec.peer ? { peer: joinHostPort(this.spec.peer.host, this.spec.peer.port) } : {}),
    }
  }

  replacedBy(next: TunnelAppSpec): boolean {
    return next.mode !== this.spec.mode
  }

  refreshFiles(): void {
    this.update(this.spec)
  }

  /** With wait_for_first_attempt, READY=1 waits for the first attempts to end, successful or not. */
  ready(): Promise<void> {
    return this.spec.waitForFirstAttempt ? this.firstAttempt : Promise.resolve()
  }

  /** It sets STATUS= itself (sessions up or why not). */
  readonly reportsStatus = true

  get watchdogFactor(): number {
    return this.spec.watchdogFactor
  }

  close(): void {
    this.#stopSessions(false, 'sluice closed it')
    this.#firstDone()
    // Stops the header-timeout checker (the server never listened; its sockets drain on their own).
    this.#http.close(() => {})
  }
}

/** Node's TLS and socket errors, said plainly, with Node's or OpenSSL's code as the cause. */
function describe(err: Error): Failure {
  const code = (err as NodeJS.ErrnoException).code ?? null
  if (code === 'ECONNREFUSED')
    return { error: `connection refused (${err.message.replace(/^connect ECONNREFUSED /, '')})`, cause: code }
  if (code === 'ERR_HTTP2_PING_CANCEL' || code === 'ERR_HTTP2_GOAWAY_SESSION')
    return { error: 'the peer closed the session (certificate refused, or shutting down)', cause: code }
  if (code === 'ECONNRESET')
    return { error: 'the peer reset the connection (certificate refused?)', cause: code }
  return { error: err.message.split('\n')[0]!, cause: code }
}

/** Why the certificate files of `spec` cannot be used (read again to say it). */
function tlsFilesFailure(spec: TunnelAppSpec): Failure {
  try {
    loadTls(spec)
    return { error: 'the TLS files could not be read', cause: null }
  } catch (err) {
    return { error: `the TLS files could not be read: ${(err as Error).message}`, cause: null }
  }
}

/**
 * Why a request cannot cross the tunnel as it is, or null. HTTP/1.1 requires Host, and sluice never
 * invents one; an absolute-form target is a forward-proxy request, which the tunnel is not (ptproxy
 * refuses them too); only chunked is a request Transfer-Encoding the tunnel carries.
 */
function refuseRequest(req: IncomingMessage): string | null {
  if (req.headers.host === undefined) return 'the request has no Host header (HTTP/1.1 requires one)'
  const url = req.url ?? ''
  if (!url.startsWith('/') && !(url === '*' && req.method === 'OPTIONS'))
    return `the request target "${url.slice(0, 200)}" is not origin-form: absolute-form (proxy) requests are not accepted`
  if (!supportedTransferEncoding(req.headers['transfer-encoding']))
    return `Transfer-Encoding "${req.headers['transfer-encoding']}" is not supported (only chunked)`
  return null
}

/** The server certificate's names in log fields. */
function certFields(cert: ClientSession['cert']): Record<string, string> {
  return { ...(cert.cn ? { cn: cert.cn } : {}), ...(cert.san ? { san: cert.san } : {}) }
}
