// What services share below the engine: the listener as they see it, the connections it tracks,
// byte counting, and the max_connections cap. The service contract itself is engine/contract.ts.
import type { Socket } from 'node:net'
import type { Logger } from '../observe/logger.ts'
import type { Series } from '../observe/series.ts'

/** A live connection a listener tracks, so it can drain or end it and count its bytes. */
export interface Tracked {
  /** End the connection now (drain deadline passed, shutdown, app removed). */
  destroy(cause: 'drain' | 'shutdown'): void
  /** Report bytes moved since the last call to the metrics (called on scrape and on close). */
  flushBytes(): void
  /** A fault holds the connection's data indefinitely (blackhole, timeout): shutdown ends it at once. */
  readonly holding?: boolean
  /** Finish what is in flight, then close (an HTTP keep-alive connection between requests closes at once). */
  drain?(): void
}

/** The listener as a service sees it: its address key, its live connections, and a slot the
 * service fills when attached (labelled metric children, resolved once per listener). */
export interface ListenerContext {
  readonly key: string
  readonly conns: Set<Tracked>
  slot: unknown
}

/** A client socket's bytes since the last flush, added to the listener's counters. */
export class ByteCount {
  #in = 0
  #out = 0

  flush(socket: Socket, into: { bytesIn: Series; bytesOut: Series }): void {
    const read = socket.bytesRead
    const written = socket.bytesWritten
    into.bytesIn.value += read - this.#in
    into.bytesOut.value += written - this.#out
    this.#in = read
    this.#out = written
  }
}

/** Count and track an accepted connection until its socket closes (then `onClose`). */
export function track(
  owner: { active: number },
  l: ListenerContext,
  slot: { accepted: Series; active: Series },
  conn: Tracked,
  socket: Socket,
  onClose?: () => void,
): void {
  owner.active++
  slot.accepted.value++
  slot.active.value++
  l.conns.add(conn)
  socket.once('close', () => {
    owner.active--
    slot.active.value--
    onClose?.()
    l.conns.delete(conn)
  })
}

/** max_connections: a connection over the cap is reset and counted; the warning is logged at most once a second. */
export class ConnectionCap {
  #lastWarning = 0

  /** Whether `client` was refused: `active` connections already, `max` of them allowed (0: no cap). */
  refuse(
    client: Socket,
    active: number,
    max: number,
    listener: string,
    rejected: Series,
    log: Logger,
  ): boolean {
    if (max <= 0 || active < max) return false
    rejected.value++
    client.on('error', () => {})
    client.resetAndDestroy()
    const now = Date.now()
    if (now - this.#lastWarning > 1000) {
      this.#lastWarning = now
      log.warn({ code: 'ERR_MAX_CONNECTIONS', listener, max }, 'connection reset: max_connections reached')
    }
    return true
  }
}
