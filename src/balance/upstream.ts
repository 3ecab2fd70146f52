// An app's set of targets: their state across reloads (open connections, health, ejection), the
// strategy's rotation, and the try order for a new connection. Lives in the data path.
import type { PassiveSpec, Strategy, TargetSpec } from '../config/types.ts'
import { type ConnectReason, reasonCode } from '../errors.ts'
import type { Logger } from '../observe/logger.ts'
import type { Metrics } from '../observe/metrics.ts'
import type { HistogramSeries, Series } from '../observe/series.ts'
import { type Candidate, order, type RotationState } from './strategies.ts'

/** One target and everything sluice knows about it. Identity is `key` (host:port). */
export class Target {
  spec: TargetSpec
  key: string
  weight: number
  active = 0
  /** Result of active health checks (true until a check says otherwise). */
  checkedUp = true
  ejectedUntil = 0
  failures = 0
  ejections = 0
  probation = false
  total = 0
  lastError: string | null = null
  lastErrorAt = 0
  readonly m: {
    connects: Series
    connectSeconds: HistogramSeries
    failures: Partial<Record<ConnectReason, Series>>
  }

  constructor(spec: TargetSpec, app: string, metrics: Metrics) {
    this.spec = spec
    this.key = spec.key
    this.weight = spec.weight
    const labels = { app, target: spec.key }
    this.m = {
      connects: metrics.connects.series(labels),
      connectSeconds: metrics.connectSeconds.series(labels),
      failures: {},
    }
  }

  /** In rotation: healthy by active checks and not ejected by passive health. */
  isUp(now: number): boolean {
    return this.checkedUp && this.ejectedUntil <= now
  }
}

/** One entry of the app's target list: a place in the rotation. A target listed twice has two
 * slots (twice the round-robin share) but one Target, whose state both share. */
class Slot implements Candidate {
  readonly key: string
  readonly weight: number
  current = 0
  readonly target: Target

  constructor(target: Target, occurrence: number, weight: number) {
    this.target = target
    this.key = occurrence === 1 ? target.key : `${target.key}#${occurrence}`
    this.weight = weight
  }

  get active(): number {
    return this.target.active
  }
}

export interface UpstreamSpec {
  name: string
  targets: TargetSpec[]
  strategy: Strategy
  maxAttempts: number
  passive: PassiveSpec | null
}

/** Targets of one app, with strategy state shared by all the app's listeners. */
export class Upstream {
  readonly app: string
  /** One per distinct host:port, in first-listed order. */
  targets: Target[] = []
  #slots: Slot[] = []
  #strategy: Strategy = 'round-robin'
  #maxAttempts = 0
  #passive: PassiveSpec | null = null
  #rotation: RotationState = { next: 0 }
  #metrics: Metrics
  /** The app's logger: its lines already carry `app`. */
  #log: Logger

  constructor(spec: UpstreamSpec, metrics: Metrics, log: Logger) {
    this.app = spec.name
    this.#metrics = metrics
    this.#log = log
    this.update(spec)
  }

  /** Take a new spec; targets that stay keep their state (connections, health, ejection). */
  update(spec: UpstreamSpec): void {
    const old = new Map(this.targets.map((t) => [t.key, t]))
    const byKey = new Map<string, Target>()
    const seen = new Map<string, number>()
    const slots: Slot[] = []
    for (const ts of spec.targets) {
      let t = byKey.get(ts.key)
      if (!t) {
        t = old.get(ts.key) ?? new Target(ts, this.app, this.#metrics)
        t.spec = ts
        t.weight = ts.weight
        old.delete(ts.key)
        byKey.set(ts.key, t)
      }
      const n = (seen.get(ts.key) ?? 0) + 1
      seen.set(ts.key, n)
      slots.push(new Slot(t, n, ts.weight))
    }
    const keepRotation = spec.strategy === this.#strategy
    if (keepRotation) {
      // Keep smooth-WRR running weights of slots that stay, so a reload does not reset the interleave.
      const prev = new Map(this.#slots.map((s) => [s.key, s.current]))
      for (const s of slots) s.current = prev.get(s.key) ?? 0
    }
    this.targets = [...byKey.values()]
    this.#slots = slots
    for (const gone of old.values()) this.#forget(gone)
    this.#strategy = spec.strategy
    this.#maxAttempts = spec.maxAttempts
    this.#passive = spec.passive
    if (!spec.passive) for (const t of this.targets) t.ejectedUntil = 0
  }

  /**
   * Targets to try for a new connection, in order: those in rotation as the strategy orders them,
   * then (as a last resort) those that are down. Each target at most once.
   */
  order(clientKey: string | (() => string), now: number): Target[] {
    const slots = this.#slots
    let candidates: Slot[] = slots
    let anyDown = false
    for (let i = 0; i < slots.length; i++) {
      if (!slots[i]!.target.isUp(now)) {
        anyDown = true
        break
      }
    }
    if (anyDown) {
      const up = slots.filter((s) => s.target.isUp(now))
      // When every target is down, try them all anyway rather than refuse blindly.
      if (up.length) candidates = up
    }
    const idx = order(this.#strategy, candidates, this.#rotation, clientKey)
    const out: Target[] = []
    for (const i of idx) {
      const t = candidates[i]!.target
      if (!out.includes(t)) out.push(t)
    }
    if (anyDown) for (const t of this.targets) if (!out.includes(t)) out.push(t)
    return this.#maxAttempts > 0 && out.length > this.#maxAttempts ? out.slice(0, this.#maxAttempts) : out
  }

  /** A connect to `t` worked: end its failure streak and any probation. */
  succeeded(t: Target, connectMs: number): void {
    t.m.connects.value++
    this.#metrics.connectSeconds.observe(t.m.connectSeconds, connectMs / 1000)
    t.total++
    if (t.failures || t.probation) {
      if (t.probation) this.#log.info({ target: t.key }, 'target back in rotation: connect succeeded')
      t.failures = 0
      t.probation = false
      t.ejections = 0
    }
  }

  /** A connect to `t` failed: count it, and eject the target after `passive.failures` in a row. */
  failed(t: Target, reason: ConnectReason, detail: string, now: number): void {
    let child = t.m.failures[reason]
    if (!child)
      child = t.m.failures[reason] = this.#metrics.connectFailures.series({
        app: this.app,
        target: t.key,
        reason,
      })
    child.value++
    t.lastError = detail
    t.lastErrorAt = now
    const p = this.#passive
    if (!p || t.ejectedUntil > now) return
    t.failures++
    if (t.failures >= p.failures || t.probation) {
      const cooldown = p.cooldown * 2 ** Math.min(t.ejections, 5)
      t.ejectedUntil = now + cooldown
      t.ejections++
      t.failures = 0
      t.probation = true
      this.#metrics.ejections.series({ app: this.app, target: t.key }).value++
      this.#log.warn(
        {
          code: 'ERR_TARGET_EJECTED',
          target: t.key,
          reason,
          cause: reasonCode(reason),
          cooldownMs: cooldown,
        },
        `target ejected after ${t.ejections > 1 ? 'failing again on probation' : `${p.failures} consecutive connect failures`}`,
      )
    }
  }

  /** Active health result for a target; an up result also ends a passive ejection. */
  setChecked(key: string, up: boolean): void {
    const t = this.targets.find((x) => x.key === key)
    if (!t) return
    t.checkedUp = up
    if (up) {
      t.ejectedUntil = 0
      t.failures = 0
      t.probation = false
      t.ejections = 0
    }
  }

  /** Drop the metric series of targets no longer in the config. */
  #forget(t: Target): void {
    const labels = { app: this.app, target: t.key }
    this.#metrics.targetUp.remove(labels)
    this.#metrics.targetActive.remove(labels)
  }

  /** Remove every series of this upstream (the app was removed). */
  close(): void {
    for (const t of this.targets) this.#forget(t)
  }
}
