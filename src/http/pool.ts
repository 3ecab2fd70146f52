// Keep-alive connections to one destination: idle ones reused last-in first-out (the warmest
// socket), a cap on open connections with a queue of waiters, idle ones closed after a timeout.
// A connection belongs to at most one exchange at a time; its socket handlers are set once and
// call whichever exchange owns it.
import type { Socket } from 'node:net'
import type { Destination } from '../config/types.ts'
import { ConnectError } from '../errors.ts'
import { type DialTls, dial } from '../net/dial.ts'
import type { DnsCache } from '../net/dns.ts'

/** What an upstream connection reports to the exchange that owns it. */
export interface UpstreamOwner {
  upstreamData(chunk: Buffer): void
  upstreamEnd(): void
  upstreamClose(err: Error | null): void
  upstreamDrain(): void
  upstreamTimeout(): void
}

export class UpstreamConn {
  readonly socket: Socket
  readonly pool: Pool
  owner: UpstreamOwner | null = null
  /** Requests sent on this connection so far (0 for a fresh one). */
  uses = 0
  #error: Error | null = null

  constructor(socket: Socket, pool: Pool) {
    this.socket = socket
    this.pool = pool
    socket.on('data', (chunk: Buffer) => {
      if (this.owner) this.owner.upstreamData(chunk)
      // Bytes on an idle connection: the server broke framing; never reuse it.
      else socket.destroy()
    })
    socket.on('end', () => {
      if (this.owner) this.owner.upstreamEnd()
      else socket.destroy()
    })
    socket.on('error', (err) => {
      this.#error = err
    })
    socket.on('close', () => {
      const owner = this.owner
      this.owner = null
      this.pool.forget(this)
      owner?.upstreamClose(this.#error)
    })
    socket.on('drain', () => this.owner?.upstreamDrain())
    socket.on('timeout', () => {
      if (this.owner) this.owner.upstreamTimeout()
      else socket.destroy()
    })
  }
}

export interface PoolOptions {
  maxConnections: number
  maxIdle: number
  idleTimeout: number
  connectTimeout: number
  dns: DnsCache
  tls: DialTls | null
}

type Waiter = (err: Error | null, conn: UpstreamConn | null) => void

export class Pool {
  readonly destination: Destination
  readonly idle: UpstreamConn[] = []
  /** Connections open (idle, busy or connecting). */
  open = 0
  #waiters: Waiter[] = []
  opts: PoolOptions
  closed = false

  constructor(destination: Destination, opts: PoolOptions) {
    this.destination = destination
    this.opts = opts
  }

  get busy(): number {
    return this.open - this.idle.length
  }

  get queued(): number {
    return this.#waiters.length
  }

  /** A connection for one exchange: an idle one, a new one, or the next one freed. */
  acquire(cb: Waiter): void {
    while (this.idle.length) {
      const c = this.idle.pop()!
      if (c.socket.destroyed || !c.socket.writable) continue
      c.socket.setTimeout(0)
      cb(null, c)
      return
    }
    if (this.opts.maxConnections > 0 && this.open >= this.opts.maxConnections) {
      this.#waiters.push(cb)
      return
    }
    this.#connect(cb)
  }

  /** Cancel a waiter that no longer wants a connection (its client went away). */
  cancel(cb: Waiter): void {
    const i = this.#waiters.indexOf(cb)
    if (i >= 0) this.#waiters.splice(i, 1)
  }

  #connect(cb: Waiter): void {
    this.open++
    const d = this.destination
    dial(
      { host: d.host, port: d.port, key: d.url },
      { timeout: this.opts.connectTimeout, dns: this.opts.dns, noDelay: true, tls: this.opts.tls },
    ).then(
      (socket) => {
        const c = new UpstreamConn(socket, this)
        if (this.closed) {
          socket.destroy()
          cb(new ConnectError('error', d.url, 'the app was removed'), null)
          return
        }
        cb(null, c)
      },
      (err: Error) => {
        this.open--
        cb(err, null)
        // A slot came free: a waiter may try (and fail or succeed) on its own.
        this.#next()
      },
    )
  }

  /** An exchange is done with `c`: keep it for the next one, or close it. */
  release(c: UpstreamConn, reusable: boolean): void {
    c.owner = null
    if (!reusable || this.closed || c.socket.destroyed) {
      c.socket.destroy()
      return
    }
    c.uses++
    const w = this.#waiters.shift()
    if (w) {
      w(null, c)
      return
    }
    if (this.idle.length >= this.opts.maxIdle) {
      c.socket.destroy()
      return
    }
    if (this.opts.idleTimeout > 0) c.socket.setTimeout(this.opts.idleTimeout)
    this.idle.push(c)
  }

  /** A connection closed: it no longer counts, and a waiter may get a new one. */
  forget(c: UpstreamConn): void {
    this.open--
    const i = this.idle.indexOf(c)
    if (i >= 0) this.idle.splice(i, 1)
    this.#next()
  }

  #next(): void {
    if (!this.#waiters.length) return
    if (this.opts.maxConnections > 0 && this.open >= this.opts.maxConnections) return
    this.#connect(this.#waiters.shift()!)
  }

  /** The app or destination is gone: close idle connections; busy ones close when released. */
  close(): void {
    this.closed = true
    for (const c of this.idle.splice(0)) c.socket.destroy()
    for (const w of this.#waiters.splice(0))
      w(new ConnectError('error', this.destination.url, 'the app was removed'), null)
  }
}
