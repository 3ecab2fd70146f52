// How a tunnel client retries and what it says about it (pure; the clock is passed in). Each
// session slot backs off on its own: connect_interval after the first failure, twice that after
// the next, up to BACKOFF_MAX, and connect_interval again once a session of the slot is up. The
// app as a whole logs state changes only: "unreachable" once when an attempt fails and no session
// is up, then a summary every SUMMARY_EVERY while that lasts; the next session up says how long
// it took. A slot failing while another session is up is said once until that slot is up again.

/** Longest wait between two attempts of one slot (or connect_interval, when that is longer). */
export const BACKOFF_MAX = 30_000
/** How often a tunnel that stays unreachable is reported. */
export const SUMMARY_EVERY = 60_000

/** The wait before each retry of one slot. */
export class Backoff {
  readonly #base: number
  #next: number

  constructor(base: number) {
    this.#base = base
    this.#next = base
  }

  /** The wait before the next attempt after a failure (and the one after it doubles). */
  failed(): number {
    const wait = this.#next
    this.#next = Math.min(this.#next * 2, Math.max(BACKOFF_MAX, this.#base))
    return wait
  }

  /** A session is up: the next failure waits connect_interval again. */
  reset(): void {
    this.#next = this.#base
  }
}

/** One failed attempt: what went wrong, in words and as a short cause (ECONNREFUSED, CERT_HAS_EXPIRED…). */
export interface Failure {
  error: string
  cause: string | null
}

/** What to log for an event; null: nothing. */
export type Report =
  | { kind: 'unreachable'; failure: Failure }
  | { kind: 'still-unreachable'; failure: Failure; attempts: number; forMs: number }
  | { kind: 'slot-failing'; failure: Failure }
  | null

export class PeerReport {
  readonly #now: () => number
  /** When the current unreachable spell began (null: a session is up, or none failed yet). */
  #downSince: number | null = null
  #attempts = 0
  #lastLine = 0
  #last: Failure | null = null
  readonly #slotsSaid = new Set<number>()

  constructor(now: () => number = Date.now) {
    this.#now = now
  }

  /** Failed attempts in the current unreachable spell. */
  get attempts(): number {
    return this.#attempts
  }

  /** An attempt of `slot` failed while `up` sessions are up. */
  failed(slot: number, failure: Failure, up: number): Report {
    const now = this.#now()
    this.#last = failure
    if (up > 0) {
      if (this.#slotsSaid.has(slot)) return null
      this.#slotsSaid.add(slot)
      return { kind: 'slot-failing', failure }
    }
    this.#attempts++
    if (this.#downSince === null) {
      this.#downSince = now
      this.#lastLine = now
      return { kind: 'unreachable', failure }
    }
    if (now - this.#lastLine < SUMMARY_EVERY) return null
    this.#lastLine = now
    return { kind: 'still-unreachable', failure, attempts: this.#attempts, forMs: now - this.#downSince }
  }

  /** A session of `slot` is up; when it ends an unreachable spell, how long that was and how many attempts failed. */
  up(slot: number): { attempts: number; downForMs: number; lastError: string | null } | null {
    this.#slotsSaid.delete(slot)
    if (this.#downSince === null) return null
    const spell = {
      attempts: this.#attempts,
      downForMs: this.#now() - this.#downSince,
      lastError: this.#last?.error ?? null,
    }
    this.#downSince = null
    this.#attempts = 0
    return spell
  }
}
