// Join a client socket and an upstream socket: bytes both ways with backpressure, half-close
// propagated (a FIN from one side becomes a FIN to the other), resets propagated, optional idle
// timeout. Per chunk, a plain direction does one write and one branch: no allocation, no closure,
// no await. A direction can be handed to a hook (the fault chain) while the connection is live.
import type { Socket } from 'node:net'
import { resetSocket } from './dial.ts'

export type CloseCause =
  | 'done'
  | 'client-reset'
  | 'upstream-reset'
  | 'client-error'
  | 'upstream-error'
  | 'idle'
  | 'killed'
  | 'fault-close'
  | 'fault-reset'

export interface PipeOptions {
  /** Destroy both sockets after this long with no traffic on either (ms, 0 = never). */
  idleTimeout: number
  onClose(pipe: Pipe): void
}

/** Takes over a direction's chunks (null = end of stream) instead of writing them straight through. */
export interface FlowHook {
  push(chunk: Buffer | null): void
  /** The destination drained its write buffer. */
  onDrain(): void
  /** How long (ms) until what the hook holds, its end of stream included, is due to be written. */
  pendingMs?(): number
}

/** After a fault closed the connection: whatever still arrives is dropped. */
const discard: FlowHook = { push() {}, onDrain() {} }

/** One direction of a pipe: bytes read from `from` are written to `to`. */
export class Flow {
  readonly from: Socket
  readonly to: Socket
  hook: FlowHook | null = null
  /** The source's end of stream was seen (and handed on). */
  ended = false
  /** A fault closed the connection while a hook (fault chain) held this direction: it ends `to` when it lets go. */
  draining = false

  constructor(from: Socket, to: Socket) {
    this.from = from
    this.to = to
  }

  readonly onData = (chunk: Buffer): void => {
    const h = this.hook
    if (h !== null) h.push(chunk)
    else if (!this.to.write(chunk)) this.from.pause()
  }

  readonly onEnd = (): void => {
    this.ended = true
    const h = this.hook
    if (h !== null) h.push(null)
    else if (!this.to.destroyed) this.to.end()
  }

  readonly onDrain = (): void => {
    const h = this.hook
    if (h !== null) h.onDrain()
    else this.from.resume()
  }

  /** Hand this direction to `hook` (or back to plain with null). */
  setHook(hook: FlowHook | null): void {
    if (this.hook === discard) return
    this.hook = hook
    if (hook === null && this.from.isPaused()) this.from.resume()
  }

  /** Whether a fault closed this direction (everything from now on is dropped). */
  get closed(): boolean {
    return this.hook === discard
  }
}

/** A proxied connection's byte stream. Sockets must be created with allowHalfOpen. */
export class Pipe {
  readonly client: Socket
  readonly upstream: Socket
  /** client → upstream */
  readonly up: Flow
  /** upstream → client */
  readonly down: Flow
  cause: CloseCause | null = null
  error: Error | null = null
  #open = 2
  #onClose: (pipe: Pipe) => void
  #grace: NodeJS.Timeout | null = null

  constructor(client: Socket, upstream: Socket, opts: PipeOptions) {
    this.client = client
    this.upstream = upstream
    this.#onClose = opts.onClose
    this.up = new Flow(client, upstream)
    this.down = new Flow(upstream, client)
    attach(this.up)
    attach(this.down)
    client.on('error', (err) => this.#failed(err, 'client'))
    upstream.on('error', (err) => this.#failed(err, 'upstream'))
    // When one socket closes, `into` is the flow that writes to the other one.
    client.on('close', () => this.#closed(upstream, this.up))
    upstream.on('close', () => this.#closed(client, this.down))
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

  /** Reset both sides (RST), as a fault does. */
  reset(): void {
    this.cause ??= 'fault-reset'
    resetSocket(this.client)
    resetSocket(this.upstream)
  }

  /**
   * Close both sides gracefully, as a fault does: `from` has already passed its end of stream
   * along (through its chain); the other direction ends now, after what its chain holds (as
   * Toxiproxy's link flushes its toxics before it closes). Later data is dropped; sockets that do
   * not close within `graceMs` of the chains' last due write are destroyed.
   */
  closeGracefully(from: Flow, graceMs = 2000): void {
    this.cause ??= 'fault-close'
    const other = from === this.up ? this.down : this.up
    if (other.closed) return
    if (other.hook) other.hook.push(null)
    else if (!other.to.destroyed) other.to.end()
    let pending = 0
    for (const f of [this.up, this.down]) {
      const p = f.hook?.pendingMs?.() ?? 0
      if (p > pending) pending = p
      f.draining = f.hook !== null
      f.hook = discard
      // Keep reading, so the kernel is not left with unread data (which would turn the close into a reset).
      f.from.resume()
    }
    if (!this.#grace) {
      this.#grace = setTimeout(() => this.destroy('fault-close'), graceMs + pending)
      this.#grace.unref()
    }
  }

  #failed(err: Error, side: 'client' | 'upstream'): void {
    const code = (err as NodeJS.ErrnoException).code
    const reset = code === 'ECONNRESET' || code === 'EPIPE'
    this.cause ??= reset ? `${side}-reset` : `${side}-error`
    this.error ??= err
    // Pass a reset on as a reset, so the peer learns the connection broke rather than ended.
    const other = side === 'client' ? this.upstream : this.client
    if (reset) resetSocket(other)
    else other.destroy()
  }

  /** One socket closed; `into` is the flow that writes to the other one. */
  #closed(other: Socket, into: Flow): void {
    // A socket that closed without error ended both ways: the other side finishes on its own,
    // unless it never got its FIN (destroyed locally), in which case it goes too. A fault chain
    // may still hold data and the end of stream for it: then the chain ends it when it lets go.
    if (!other.destroyed && !other.writableEnded && (into.hook === null || (into.closed && !into.draining)))
      other.destroy()
    if (--this.#open === 0) {
      if (this.#grace) clearTimeout(this.#grace)
      this.cause ??= 'done'
      this.#onClose(this)
    }
  }
}

function attach(f: Flow): void {
  f.to.on('drain', f.onDrain)
  f.from.on('data', f.onData)
  // A FIN that came while nothing was reading (the upstream was being dialed) has already
  // emitted 'end' when the stream held no data: pass it on now.
  if (f.from.readableEnded) f.onEnd()
  else f.from.on('end', f.onEnd)
}
