// One client connection of the http service: read a request head, pick the rule, send the edited
// head and the body bytes (unchanged, framing tracked) to a pooled upstream connection, pass the
// response back the same way, then the next request. Bodies stream with backpressure both ways;
// only small Content-Length request bodies are read whole first (so a short body never reaches an
// origin). Upgrades (WebSocket) become a plain byte pipe after the 101.
import { STATUS_CODES } from 'node:http'
import type { Socket } from 'node:net'
import type { HttpErrorFault } from '../config/faults.ts'
import type { ErrorCode } from '../errors.ts'
import { Pipe } from '../net/pipe.ts'
import { ByteCount, type Tracked } from '../net/service.ts'
import { type Framing, framing } from './body.ts'
import type { HttpContext, HttpSlot } from './context.ts'
import {
  bareLf,
  canStartRequest,
  getField,
  HeadError,
  headEnd,
  parseRequest,
  parseResponse,
  type RequestHead,
  type ResponseHead,
  tooLarge,
} from './head.ts'
import type { Pool, UpstreamConn, UpstreamOwner } from './pool.ts'
import { type CompiledRule, clientHead, pick, upstreamHead } from './rules.ts'

const IDEMPOTENT = new Set(['GET', 'HEAD', 'OPTIONS', 'PUT', 'DELETE', 'TRACE'])

/** The code in the log line of each answer sluice refuses a request with. */
const REFUSAL: Record<number, ErrorCode> = {
  400: 'ERR_HTTP_BAD_REQUEST',
  405: 'ERR_HTTP_METHOD',
  408: 'ERR_HTTP_CLIENT_TIMEOUT',
  414: 'ERR_HTTP_HEAD_TOO_LARGE',
  431: 'ERR_HTTP_HEAD_TOO_LARGE',
  501: 'ERR_HTTP_NOT_IMPLEMENTED',
}

const IDLE = 0
const HEAD = 1
const BODY = 2
const WAIT = 3
const UPGRADED = 4
const CLOSED = 5

const R_HEAD = 0
const R_BODY = 1
const R_DONE = 2

let nextId = 1

/** The plain-text answers sluice itself gives (errors and faults). */
/** sluice's own answers end their text with a newline; an injected fault's body is sent exactly as given. */
export function synthetic(status: number, body: string, close: boolean, exact = false): Buffer {
  const text = exact || body.endsWith('\n') || body === '' ? body : `${body}\n`
  const len = Buffer.byteLength(text)
  return Buffer.from(
    `HTTP/1.1 ${status} ${STATUS_CODES[status] ?? 'Error'}\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Length: ${len}\r\nServer: sluice\r\n${close ? 'Connection: close\r\n' : ''}\r\n${text}`,
  )
}

export class HttpConnection implements Tracked, UpstreamOwner {
  readonly id = nextId++
  readonly client: Socket
  readonly ctx: HttpContext
  readonly slot: HttpSlot
  readonly started = performance.now()
  state = IDLE
  /** Client bytes not consumed yet (a head being read, or a pipelined request). */
  #buf: Buffer | null = null
  #searched = 0
  /** When the head being read began (its deadline is timeouts.header later). */
  #headStart = 0
  /** Requests begun on this connection. */
  #served = 0
  #clientIp: string | null = null
  // The exchange in progress.
  #req: RequestHead | null = null
  #rule: CompiledRule | null = null
  #reqFraming: Framing | null = null
  #reqDone = false
  /** Small bodies read whole before dispatch; also what a retry replays. */
  #body: Buffer[] | null = null
  /** Streamed body bytes that came before the upstream connection was ready. */
  #pending: Buffer[] | null = null
  #head = ''
  #replayable = false
  /** Body bytes of this request went to the upstream connection (a retry could not replay them). */
  #bodySent = false
  #retried = false
  #up: UpstreamConn | null = null
  /** The pool asked for a connection (to take the request out of its queue if the client leaves). */
  #pool: Pool | null = null
  #waiting = false
  /** The request sent `Expect: 100-continue` and no `100 Continue` reached the client yet. */
  #expecting = false
  /** A final response came while the client was still waiting for 100 Continue: its body is not sent. */
  #skipBody = false
  #res: ResponseHead | null = null
  #resState = R_HEAD
  #resBuf: Buffer | null = null
  #resFraming: Framing | null = null
  #resStarted = false
  #closeAfter = false
  #sentAt = 0
  #delayAfter = 0
  /** A to-upstream fault delay for a buffered body, applied when its last byte arrives. */
  #bufferedDelay = 0
  #timer: NodeJS.Timeout | null = null
  #pipe: Pipe | null = null
  readonly #bytes = new ByteCount()

  constructor(client: Socket, ctx: HttpContext, slot: HttpSlot) {
    this.client = client
    this.ctx = ctx
    this.slot = slot
    client.on('data', this.#onData)
    client.on('end', this.#onEnd)
    client.on('drain', this.#onDrain)
    client.on('timeout', this.#onTimeout)
    client.on('error', () => {})
    client.setTimeout(ctx.spec.headerTimeout)
  }

  // -- Tracked -------------------------------------------------------------------------------

  destroy(_cause: 'drain' | 'shutdown'): void {
    if (this.#pipe) this.#pipe.destroy('killed')
    else {
      this.#up?.socket.destroy()
      this.client.destroy()
    }
  }

  /** Shutdown began: finish the exchange in flight, then close; close at once when idle. */
  drain(): void {
    this.#closeAfter = true
    if (this.state === IDLE) this.#close()
  }

  flushBytes(): void {
    this.#bytes.flush(this.client, this.slot)
  }

  // -- client side ---------------------------------------------------------------------------

  readonly #onData = (chunk: Buffer): void => {
    const s = this.state
    if (s === BODY) {
      this.#feedBody(chunk, 0)
      return
    }
    if (s === CLOSED) return
    this.#buf = this.#buf === null ? chunk : Buffer.concat([this.#buf, chunk])
    if (s === IDLE) this.#startHead()
    else if (s === HEAD) this.#tryHead()
    else if (s === WAIT && this.#buf.length > this.ctx.spec.maxHeaderSize) this.client.pause()
  }

  #startHead(): void {
    this.state = HEAD
    // timeouts.header is a deadline for the whole head (counted from the accept for the first
    // request, from its first byte for later ones), not an idle timer a byte a second would reset.
    this.#headStart = this.#served === 0 ? this.started : performance.now()
    this.#served++
    this.#searched = 0
    this.#tryHead()
  }

  #tryHead(): void {
    let buf = this.#buf!
    // Empty lines before a request line are allowed (RFC 9112 2.2).
    let skip = 0
    while (skip < buf.length && (buf[skip] === 13 || buf[skip] === 10)) skip++
    if (skip) {
      buf = buf.subarray(skip)
      this.#buf = buf.length ? buf : null
      // Empty lines count against the head's deadline too (else CRLFs would hold it open).
      if (!buf.length) {
        this.#armHeadDeadline()
        return
      }
    }
    const end = headEnd(buf, this.#searched)
    const spec = this.ctx.spec
    if (end < 0) {
      // A complete head with a bare LF fails parseRequest; one that uses only LFs never completes:
      // refuse it now rather than at the header timeout.
      if (bareLf(buf, this.#searched > 0 ? this.#searched - 1 : 0) >= 0) {
        this.#reject(400, 'a line of the request head ends in a bare LF (CRLF required)')
        return
      }
      if (buf.length > spec.maxHeaderSize) {
        const e = tooLarge(buf, spec.maxHeaderSize)
        this.#reject(e.status, e.message)
        return
      }
      this.#searched = buf.length
      this.#armHeadDeadline()
      return
    }
    let req: RequestHead
    try {
      req = parseRequest(buf, end, spec)
    } catch (err) {
      if (err instanceof HeadError) this.#reject(err.status, err.message)
      else throw err
      return
    }
    const rest = end < buf.length ? buf.subarray(end) : null
    this.#buf = null
    this.#begin(req, rest)
  }

  /** The head is not complete: the timer gets what is left of timeouts.header, or it is over (408). */
  #armHeadDeadline(): void {
    const limit = this.ctx.spec.headerTimeout
    const left = limit - (performance.now() - this.#headStart)
    if (left <= 0) this.#reject(408, `no complete request head within ${limit}ms`)
    else this.client.setTimeout(Math.ceil(left))
  }

  /** A request head arrived: decide where it goes, then read or stream its body. */
  #begin(req: RequestHead, rest: Buffer | null): void {
    const ctx = this.ctx
    if (req.method === 'CONNECT') {
      this.#reject(405, 'CONNECT is not supported: sluice forwards requests, it is not a forward proxy')
      return
    }
    this.#req = req
    const rule = pick(ctx.rules, req.fields)
    this.#rule = rule
    this.#reqDone = req.body === 'none'
    this.#reqFraming = req.body === 'none' ? null : framing(req.body, req.length)
    this.#closeAfter = this.#closeAfter || !req.keepAlive || ctx.draining
    this.#retried = false
    this.#resStarted = false
    this.#resState = R_HEAD
    this.#res = null
    this.#resBuf = null
    this.#delayAfter = 0
    this.#head = upstreamHead(req, rule, {
      clientIp: this.#ip(),
      forwarded: ctx.spec.forwarded,
      preserveHost: ctx.spec.preserveHost,
    })
    // A client that sent Expect: 100-continue waits for the origin's 100 before its body: the
    // head goes at once, the body streams after.
    this.#expecting =
      !this.#reqDone && req.minor === 1 && getField(req.fields, 'expect')?.toLowerCase() === '100-continue'
    this.#skipBody = false
    // Read small bodies whole first: an incomplete one then never reaches an origin.
    const buffer =
      req.body === 'length' &&
      req.length <= ctx.spec.requestBuffer &&
      req.upgrade === null &&
      !this.#expecting
    this.#body = buffer ? [] : null
    this.#pending = null
    this.#replayable = this.#reqDone || buffer
    this.#bodySent = false
    let delayBefore = 0
    if (!ctx.faults.empty) {
      const f = ctx.requestFaults(rule)
      if (f.error) {
        this.#faultAnswer(f.error, f.before)
        if (rest) this.#buf = rest
        return
      }
      delayBefore = f.before
      this.#delayAfter = f.after
    }
    this.state = this.#reqDone ? WAIT : BODY
    this.client.setTimeout(this.#reqDone ? 0 : ctx.spec.bodyTimeout)
    // A buffered body is dispatched when its last byte arrives (#feedBody).
    this.#bufferedDelay = delayBefore
    if (!buffer) this.#dispatchAfter(delayBefore)
    if (rest) {
      if (this.state === BODY) this.#feedBody(rest, 0)
      else this.#pipelined(rest)
    }
  }

  /** Bytes after a complete request: the next request (kept for later), or garbage (refused now). */
  #pipelined(rest: Buffer): boolean {
    if (!canStartRequest(rest)) {
      const n = this.#req?.body === 'length' ? ` (Content-Length ${this.#req.length})` : ''
      if (this.#up === null && !this.#waiting && this.#body !== null) {
        this.#reject(400, `more bytes than the request declares${n}`)
        return false
      }
      // Part of the request already went upstream: answer it, then close.
      this.#closeAfter = true
      this.ctx.log.warn(
        { conn: this.id, code: 'ERR_HTTP_BAD_REQUEST' },
        `bytes after the request are not a request${n}; closing after the response`,
      )
      return true
    }
    this.#buf = rest
    return true
  }

  #feedBody(chunk: Buffer, from: number): void {
    const fr = this.#reqFraming!
    const n = fr.take(chunk, from)
    if (n < 0) {
      this.#requestFailed(400, `malformed chunked body: ${fr.error}`)
      return
    }
    if (n > 0 && !this.#skipBody) {
      const part = from === 0 && n === chunk.length ? chunk : chunk.subarray(from, from + n)
      if (this.#body !== null) this.#body.push(part)
      else this.#sendUp(part)
    }
    if (!fr.done) return
    this.#reqDone = true
    this.state = WAIT
    this.client.setTimeout(0)
    const restAt = from + n
    if (restAt < chunk.length && !this.#pipelined(chunk.subarray(restAt))) return
    if (this.#body !== null && this.#up === null && !this.#waiting) this.#dispatchAfter(this.#bufferedDelay)
  }

  /** Body bytes for the upstream: written now, or kept until the connection is ready. */
  #sendUp(part: Buffer): void {
    const up = this.#up
    if (up === null) {
      if (this.#pending === null) this.#pending = []
      this.#pending.push(part)
      this.client.pause()
      return
    }
    this.#bodySent = true
    if (!up.socket.write(part)) this.client.pause()
  }

  readonly #onDrain = (): void => {
    this.#up?.socket.resume()
  }

  readonly #onEnd = (): void => {
    const s = this.state
    if (s === IDLE || (s === HEAD && this.#buf === null)) {
      this.#close()
      return
    }
    if (s === HEAD) {
      this.#reject(400, 'the client closed before the request head was complete')
      return
    }
    if (s === BODY) {
      const req = this.#req!
      const got = req.body === 'length' ? `, Content-Length ${req.length}` : ''
      this.#requestFailed(400, `the client closed before the request body was complete${got}`)
      return
    }
    // WAIT: the request is complete. A client that closed has left (as nginx and Envoy take it):
    // the upstream exchange stops now. With abort_on_close off, a half-closed client is answered.
    if (this.ctx.spec.abortOnClose) {
      this.#clientLeft('closed')
      this.#abort()
      return
    }
    this.#closeAfter = true
  }

  /** The client went away with its request in flight: say so, and free what it held. */
  #clientLeft(how: 'closed' | 'reset'): void {
    if (this.#req === null || (this.#up === null && !this.#waiting)) return
    this.ctx.log.info(
      {
        conn: this.id,
        code: 'ERR_HTTP_CLIENT_ABORTED',
        rule: this.#rule?.name,
        destination: this.#rule?.destination.url,
      },
      `client ${how} its connection with a request in flight; upstream exchange aborted`,
    )
    if (this.#waiting) this.#pool?.cancel(this.#onConn)
    this.#waiting = false
  }

  readonly #onTimeout = (): void => {
    const s = this.state
    if (s === IDLE || s === CLOSED) this.client.destroy()
    else if (s === HEAD) this.#reject(408, `no complete request head within ${this.ctx.spec.headerTimeout}ms`)
    else if (s === BODY)
      this.#requestFailed(408, `the request body stalled for ${this.ctx.spec.bodyTimeout}ms`)
  }

  /** The client's address, read once per connection (it costs a system call). */
  #ip(): string {
    if (this.#clientIp === null) {
      const a = this.client.remoteAddress ?? ''
      this.#clientIp = a.startsWith('::ffff:') ? a.slice(7) : a
    }
    return this.#clientIp
  }

  // -- upstream side -------------------------------------------------------------------------

  #dispatchAfter(delay: number): void {
    if (delay > 0) {
      this.#waiting = true
      this.#timer = setTimeout(() => {
        this.#timer = null
        this.#waiting = false
        this.#dispatch()
      }, delay)
      return
    }
    this.#dispatch()
  }

  #dispatch(): void {
    if (this.state === CLOSED) return
    this.#waiting = true
    const pool = this.ctx.poolFor(this.#rule!.destination)
    this.#pool = pool
    pool.acquire(this.#onConn)
  }

  readonly #onConn = (err: Error | null, up: UpstreamConn | null): void => {
    this.#waiting = false
    if (this.state === CLOSED) {
      if (up) up.pool.release(up, true)
      return
    }
    if (err || !up) {
      const dest = this.#rule!.destination.url
      const why = err?.message ?? 'no connection'
      this.ctx.log.warn(
        {
          conn: this.id,
          code: 'ERR_HTTP_UPSTREAM_CONNECT',
          rule: this.#rule!.name,
          destination: dest,
          error: why,
          cause: (err as { code?: string } | null)?.code,
        },
        'destination unreachable: 502',
      )
      this.#synthetic(502, `sluice: cannot reach destination ${dest}: ${why}`)
      return
    }
    this.#up = up
    up.owner = this
    const s = up.socket
    s.setTimeout(this.#rule!.timeout)
    this.#sentAt = performance.now()
    if (this.#body?.length) {
      // One writev for the head and the buffered body.
      s.cork()
      s.write(this.#head, 'latin1')
      for (const b of this.#body) s.write(b)
      s.uncork()
    } else s.write(this.#head, 'latin1')
    const pending = this.#pending
    if (pending !== null) {
      this.#pending = null
      let ok = true
      this.#bodySent = true
      for (const b of pending) ok = s.write(b)
      if (ok) this.client.resume()
    }
  }

  upstreamData(chunk: Buffer): void {
    if (this.#resState === R_BODY) {
      this.#feedResponse(chunk, 0)
      return
    }
    if (this.#resState === R_DONE) return
    this.#resBuf = this.#resBuf === null ? chunk : Buffer.concat([this.#resBuf, chunk])
    this.#responseHead()
  }

  #responseHead(): void {
    const spec = this.ctx.spec
    for (;;) {
      const buf = this.#resBuf!
      const end = headEnd(buf)
      if (end < 0) {
        if (buf.length > spec.maxHeaderSize)
          this.#upstreamFailed(`response head larger than ${spec.maxHeaderSize} bytes`)
        return
      }
      let res: ResponseHead
      try {
        res = parseResponse(buf, end, this.#req!.method, spec)
      } catch (err) {
        if (err instanceof HeadError) this.#upstreamFailed(err.message)
        else throw err
        return
      }
      this.#resStarted = true
      if (res.status === 101) {
        if (this.#req!.upgrade === null) {
          this.#upstreamFailed('101 Switching Protocols to a request that asked for no upgrade')
          return
        }
        this.#upgrade(buf, end, res)
        return
      }
      if (res.status < 200) {
        // Interim responses (100 Continue, 103 Early Hints) go to HTTP/1.1 clients as they are.
        if (this.#req!.minor === 1) this.client.write(buf.subarray(0, end))
        if (res.status === 100) this.#expecting = false
        this.#resBuf = end < buf.length ? buf.subarray(end) : null
        if (this.#resBuf === null) return
        continue
      }
      this.#res = res
      this.#resBuf = null
      if (this.#expecting && !this.#reqDone) {
        // A final answer (417, 401, …) before 100 Continue: the client will not send its body
        // (RFC 9110 10.1.1), and what it still sends is not passed on; the connection closes after.
        this.#skipBody = true
        this.#pending = null
        this.#closeAfter = true
      }
      const rest = end < buf.length ? buf.subarray(end) : null
      if (this.#delayAfter > 0) {
        const delay = this.#delayAfter
        this.#delayAfter = 0
        const up = this.#up!
        up.socket.pause()
        this.#timer = setTimeout(() => {
          this.#timer = null
          if (this.state === CLOSED) return
          up.socket.resume()
          this.#startResponse(buf, end, res, rest)
        }, delay)
        return
      }
      this.#startResponse(buf, end, res, rest)
      return
    }
  }

  #startResponse(buf: Buffer, end: number, res: ResponseHead, rest: Buffer | null): void {
    const ctx = this.ctx
    const rule = this.#rule!
    ctx.observeUpstream(rule, (performance.now() - this.#sentAt) / 1000)
    if (res.body === 'close' || !this.#reqDone) this.#closeAfter = true
    this.#resFraming = res.body === 'none' ? null : framing(res.body, res.length)
    this.#up?.socket.setTimeout(rule.timeout)
    // Head and the body bytes that came with it leave in one writev: on a small response the
    // write system call is most of the cost, and two of them cost twice.
    const client = this.client
    if (rest !== null) client.cork()
    client.write(clientHead(buf, end, res.fields, this.#closeAfter, false))
    ctx.countRequest(rule, res.status)
    if (this.#resFraming === null) this.#finish(rest === null)
    else {
      this.#resState = R_BODY
      if (rest) this.#feedResponse(rest, 0)
    }
    if (rest !== null) client.uncork()
  }

  #feedResponse(chunk: Buffer, from: number): void {
    const fr = this.#resFraming!
    const n = fr.take(chunk, from)
    if (n < 0) {
      this.ctx.log.warn(
        {
          conn: this.id,
          code: 'ERR_HTTP_RESPONSE_ABORTED',
          destination: this.#rule!.destination.url,
          error: fr.error,
        },
        'malformed response body',
      )
      this.#abort()
      return
    }
    if (n > 0) {
      const part = from === 0 && n === chunk.length ? chunk : chunk.subarray(from, from + n)
      if (!this.client.write(part)) this.#up?.socket.pause()
    }
    // Bytes past the end of the response: the origin broke framing; do not reuse its connection.
    if (fr.done) this.#finish(from + n === chunk.length)
  }

  upstreamEnd(): void {
    if (this.#resState === R_BODY && this.#res?.body === 'close') {
      this.#finish(false)
      return
    }
    this.#upstreamGone(null)
  }

  upstreamClose(err: Error | null): void {
    if (this.state === CLOSED || this.#resState === R_DONE) {
      this.#up = null
      return
    }
    this.#upstreamGone(err)
  }

  #upstreamGone(err: Error | null): void {
    if (this.#resState === R_DONE) return
    const up = this.#up
    if (!this.#resStarted && up !== null) {
      // A kept-alive connection the origin closed just as it was reused: try once on a fresh one.
      // A streamed body none of which went yet (Expect: 100-continue) can be sent on the new one.
      const replayable = this.#replayable || !this.#bodySent
      if (up.uses > 0 && !this.#retried && replayable && IDEMPOTENT.has(this.#req!.method)) {
        this.#retried = true
        up.owner = null
        up.socket.destroy()
        this.#up = null
        this.#dispatch()
        return
      }
    }
    if (!this.#resStarted) {
      this.#upstreamFailed(
        err ? `connection failed: ${err.message}` : 'closed the connection without a response',
      )
      return
    }
    // Part of the response went to the client: it can only learn of the failure by the close.
    this.ctx.log.warn(
      {
        conn: this.id,
        code: 'ERR_HTTP_RESPONSE_ABORTED',
        destination: this.#rule!.destination.url,
        error: err?.message ?? 'closed early',
      },
      'response cut short by the destination',
    )
    this.#abort()
  }

  upstreamDrain(): void {
    if (this.state === BODY) this.client.resume()
  }

  upstreamTimeout(): void {
    const rule = this.#rule!
    if (!this.#resStarted) {
      this.ctx.log.warn(
        {
          conn: this.id,
          code: 'ERR_HTTP_UPSTREAM_TIMEOUT',
          rule: rule.name,
          destination: rule.destination.url,
          timeoutMs: rule.timeout,
        },
        'destination timed out: 504',
      )
      this.#dropUpstream()
      this.#synthetic(
        504,
        `sluice: destination ${rule.destination.url} did not answer within ${rule.timeout}ms`,
      )
      return
    }
    this.ctx.log.warn(
      { conn: this.id, code: 'ERR_HTTP_RESPONSE_ABORTED', destination: rule.destination.url },
      'response stalled; closing',
    )
    this.#abort()
  }

  #upstreamFailed(why: string): void {
    const rule = this.#rule!
    this.ctx.log.warn(
      {
        conn: this.id,
        code: 'ERR_HTTP_UPSTREAM_BAD_RESPONSE',
        rule: rule.name,
        destination: rule.destination.url,
        error: why,
      },
      'bad upstream response: 502',
    )
    this.#dropUpstream()
    this.#synthetic(502, `sluice: destination ${rule.destination.url} failed: ${why}`)
  }

  #dropUpstream(): void {
    const up = this.#up
    this.#up = null
    if (up) {
      up.owner = null
      up.socket.destroy()
    }
  }

  // -- ends of exchanges ---------------------------------------------------------------------

  /** The response is complete. */
  #finish(upstreamClean: boolean): void {
    this.#resState = R_DONE
    const up = this.#up
    this.#up = null
    const req = this.#req!
    const res = this.#res!
    if (up) {
      up.socket.setTimeout(0)
      up.socket.resume()
      const reusable =
        upstreamClean && this.#reqDone && res.keepAlive && res.body !== 'close' && req.minor === 1
      up.pool.release(up, reusable)
    }
    this.#next()
  }

  /** After an exchange (or a synthetic answer): close, or wait for the next request. */
  #next(): void {
    this.#req = null
    this.#rule = null
    this.#body = null
    this.#pending = null
    this.#reqFraming = null
    this.#pool = null
    this.#expecting = false
    if (this.#closeAfter || !this.#reqDone) {
      this.#close()
      return
    }
    this.state = IDLE
    this.client.setTimeout(this.ctx.spec.idleTimeout)
    this.client.resume()
    if (this.#buf !== null) this.#startHead()
  }

  /** Answer the current request with a text response; the connection stays if HTTP allows. */
  #synthetic(status: number, text: string, exact = false): void {
    if (!this.#reqDone) this.#closeAfter = true
    this.#resState = R_DONE
    this.client.write(synthetic(status, text, this.#closeAfter, exact))
    if (this.#rule) this.ctx.countRequest(this.#rule, status)
    this.#next()
  }

  #faultAnswer(f: HttpErrorFault, delay: number): void {
    const answer = () => {
      this.#timer = null
      if (this.state === CLOSED) return
      this.#synthetic(f.status, f.body, true)
    }
    // A body is not read: the connection cannot carry another request after the answer.
    if (!this.#reqDone) this.#closeAfter = true
    this.state = WAIT
    if (delay > 0) this.#timer = setTimeout(answer, delay)
    else answer()
  }

  /** The request is bad (or stalled) after its head: answer if nothing was answered yet, then close. */
  #requestFailed(status: number, why: string): void {
    this.#dropUpstream()
    if (this.#resStarted) {
      this.#abort()
      return
    }
    this.#reject(status, why)
  }

  /** Refuse a request: a short text answer, then the connection closes. */
  #reject(status: number, why: string): void {
    this.ctx.log.warn(
      {
        conn: this.id,
        code: REFUSAL[status] ?? 'ERR_HTTP_BAD_REQUEST',
        client: this.#ip(),
        status,
        error: why,
      },
      'request refused',
    )
    this.ctx.countRejected(status)
    this.#dropUpstream()
    this.state = CLOSED
    this.client.removeListener('data', this.#onData)
    this.client.end(synthetic(status, `sluice: ${why}`, true))
    // Keep reading (and dropping) what the client still sends, so the close is not a reset.
    this.client.resume()
    this.client.setTimeout(2000)
    this.#clearTimer()
  }

  /** Something broke mid-response: both sides go. */
  #abort(): void {
    this.state = CLOSED
    this.#clearTimer()
    this.#dropUpstream()
    this.client.destroy()
  }

  #close(): void {
    this.state = CLOSED
    this.#clearTimer()
    this.#dropUpstream()
    this.client.end()
    this.client.setTimeout(2000)
  }

  #clearTimer(): void {
    if (this.#timer) clearTimeout(this.#timer)
    this.#timer = null
  }

  /** The client connection is gone. */
  closed(): void {
    if (this.state !== CLOSED && this.state !== UPGRADED) this.#clientLeft('reset')
    this.state = CLOSED
    this.#clearTimer()
    this.#dropUpstream()
  }

  // -- upgrades ------------------------------------------------------------------------------

  #upgrade(buf: Buffer, end: number, res: ResponseHead): void {
    const up = this.#up!
    const s = up.socket
    this.ctx.countRequest(this.#rule!, 101)
    this.state = UPGRADED
    this.#resState = R_DONE
    up.owner = null
    for (const ev of ['data', 'end', 'drain', 'timeout'] as const) s.removeAllListeners(ev)
    const c = this.client
    c.removeListener('data', this.#onData)
    c.removeListener('end', this.#onEnd)
    c.removeListener('drain', this.#onDrain)
    c.removeListener('timeout', this.#onTimeout)
    s.setTimeout(0)
    this.client.setTimeout(0)
    this.client.write(clientHead(buf, end, res.fields, false, true))
    if (end < buf.length) this.client.write(buf.subarray(end))
    const early = this.#buf
    this.#buf = null
    if (early) s.write(early)
    this.#up = null
    this.#pipe = new Pipe(this.client, s, { idleTimeout: 0, onClose: () => {} })
  }
}
