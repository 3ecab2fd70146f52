// Join a client socket and an upstream socket: bytes both ways with backpressure, half-close
// propagated (a FIN from one side becomes a FIN to the other), resets propagated, optional idle
// timeout. Per chunk it does one write and one branch: no allocation, no closure, no await.
import type { Socket } from 'node:net'

export type CloseCause =
  | 'done'
  | 'client-reset'
  | 'upstream-reset'
  | 'client-error'
  | 'upstream-error'
  | 'idle'
  | 'killed'

export interface PipeOptions {
  /** Destroy both sockets after this long with no traffic on either (ms, 0 = never). */
  idleTimeout: number
  onClose(pipe: Pipe): void
}

/** A proxied connection's byte stream. Sockets must be created with allowHalfOpen. */
export class Pipe {
  readonly client: Socket
  readonly upstream: Socket
  cause: CloseCause | null = null
  error: Error | null = null
  #open = 2
  #onClose: (pipe: Pipe) => void

  constructor(client: Socket, upstream: Socket, opts: PipeOptions) {
    this.client = client
    this.upstream = upstream
    this.#onClose = opts.onClose
    forward(client, upstream)
    forward(upstream, client)
    client.on('error', (err) => this.#failed(err, 'client'))
    upstream.on('error', (err) => this.#failed(err, 'upstream'))
    client.on('close', () => this.#closed(upstream))
    upstream.on('close', () => this.#closed(client))
    if (opts.idleTimeout > 0) {
      const idle = () => this.destroy('idle')
      client.setTimeout(opts.idleTimeout, idle)
      upstream.setTimeout(opts.idleTimeout, idle)
    }
    // Data the client sent while the upstream was being dialed is already buffered; this starts it.
    client.resume()
  }

  /** Tear down both sides now (drain deadline, idle timeout, shutdown). */
  destroy(cause: CloseCause = 'killed'): void {
    this.cause ??= cause
    this.client.destroy()
    this.upstream.destroy()
  }

  #failed(err: Error, side: 'client' | 'upstream'): void {
    const code = (err as NodeJS.ErrnoException).code
    const reset = code === 'ECONNRESET' || code === 'EPIPE'
    this.cause ??= reset ? `${side}-reset` : `${side}-error`
    this.error ??= err
    // Pass a reset on as a reset, so the peer learns the connection broke rather than ended.
    const other = side === 'client' ? this.upstream : this.client
    if (reset && !other.destroyed) other.resetAndDestroy()
    else other.destroy()
  }

  #closed(other: Socket): void {
    // A socket that closed without error ended both ways: the other side finishes on its own,
    // unless it never got its FIN (destroyed locally), in which case it goes too.
    if (!other.destroyed && !other.writableEnded) other.destroy()
    if (--this.#open === 0) {
      this.cause ??= 'done'
      this.#onClose(this)
    }
  }
}

/** Copy `from` to `to`, pausing `from` while `to` is full, ending `to` when `from` ends. */
function forward(from: Socket, to: Socket): void {
  const onDrain = () => from.resume()
  to.on('drain', onDrain)
  from.on('data', (chunk: Buffer) => {
    if (!to.write(chunk)) from.pause()
  })
  // A FIN that came while nothing was reading (the upstream was being dialed) has already
  // emitted 'end' when the stream held no data: pass it on now.
  if (from.readableEnded) to.end()
  else
    from.on('end', () => {
      if (!to.destroyed) to.end()
    })
}
