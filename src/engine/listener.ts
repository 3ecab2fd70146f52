// A Listener owns one bound socket for as long as its address stays in the config. The service
// behind it is swapped atomically on reload; its live connections are tracked for draining.
import type { Server, Socket } from 'node:net'
import type { ListenAddress } from '../config/address.ts'
import { listen } from '../net/listen.ts'
import type { ListenerContext, Tracked } from '../net/service.ts'
import type { Service } from './contract.ts'

/** A Set that says when it becomes empty. */
export class ConnectionSet extends Set<Tracked> {
  onEmpty: (() => void) | null = null

  override delete(value: Tracked): boolean {
    const had = super.delete(value)
    if (had && this.size === 0) this.onEmpty?.()
    return had
  }
}

export class Listener implements ListenerContext {
  readonly key: string
  readonly address: ListenAddress
  readonly conns = new ConnectionSet()
  app: string
  slot: unknown = null
  server: Server | null = null
  service: Service | null = null
  accepting = false
  /** Sockets accepted before a service was attached (between bind and commit of a plan). */
  #queue: Socket[] = []

  constructor(address: ListenAddress, app: string) {
    this.key = address.key
    this.address = address
    this.app = app
  }

  /** Bind the socket. Connections wait in a queue until `attach`. */
  async open(onError?: (err: Error) => void): Promise<void> {
    this.server = await listen(this.address, (socket) => this.#accept(socket), { onError })
    this.accepting = true
  }

  /** The port actually bound (differs from the config when it says 0). */
  get port(): number {
    const a = this.server?.address()
    return a && typeof a === 'object' ? a.port : this.address.port
  }

  /** Serve `service` from now on; queued connections go to it. */
  attach(service: Service, app: string): void {
    this.app = app
    service.attach(this)
    this.service = service
    const queued = this.#queue
    this.#queue = []
    for (const s of queued) if (!s.destroyed) service.handle(s, this)
  }

  #accept(socket: Socket): void {
    if (this.service) this.service.handle(socket, this)
    else {
      socket.on('error', () => {})
      this.#queue.push(socket)
    }
  }

  /** Stop accepting; the bound port is released at once, live connections stay. */
  stopAccepting(): void {
    this.accepting = false
    this.server?.close()
    for (const s of this.#queue) s.resetAndDestroy()
    this.#queue = []
  }

  /** Wait for live connections to end, ending those left after `deadlineMs`. Resolves true if all ended by themselves. */
  drain(deadlineMs: number, cause: 'drain' | 'shutdown' = 'drain'): Promise<boolean> {
    if (this.conns.size === 0) return Promise.resolve(true)
    for (const c of [...this.conns]) c.drain?.()
    if (this.conns.size === 0) return Promise.resolve(true)
    return new Promise((resolve) => {
      const timer = setTimeout(() => {
        this.conns.onEmpty = null
        for (const c of [...this.conns]) c.destroy(cause)
        resolve(false)
      }, deadlineMs)
      this.conns.onEmpty = () => {
        clearTimeout(timer)
        this.conns.onEmpty = null
        resolve(true)
      }
    })
  }
}
