// The faults of one app in the data path: app-wide ones and per-target ones, their schedules, their
// counters, and the live connections they act on. A change (reload, API call) reaches every live
// connection at once; it never waits on data flow.

import type { FaultSpec } from '../config/faults.ts'
import { connectTimeTypes } from '../config/faults.ts'
import { activeAt, nextChange, parseSchedule, resolveSchedule, type Window } from '../config/schedule.ts'
import type { Metrics } from '../observe/metrics.ts'
import type { Series } from '../observe/series.ts'
import type { ActiveFault } from './connection.ts'
import type { Rng } from './random.ts'

interface Entry {
  key: string
  spec: FaultSpec
  target: string
  windows: Window[] | null
  /** When the fault arrived (performance.now()): its schedule counts from here. */
  origin: number
  fired: Series
}

export interface FaultSetSpec {
  app: string
  faults: FaultSpec[]
  targets: { key: string; faults: FaultSpec[] }[]
  /** Total run time, for schedules written in percent (`sluice proxy --duration`); null otherwise. */
  runDuration: number | null
}

export interface FaultStatus {
  name: string
  type: string
  target: string | null
  direction: string
  probability: number
  schedule: string | null
  active: boolean
  fired: number
}

export class FaultSet {
  readonly app: string
  #entries: Entry[] = []
  #byTarget = new Map<string, Entry[]>()
  #appLevel: Entry[] = []
  #timer: NodeJS.Timeout | null = null
  #metrics: Metrics
  /** Called when the faults in force change (update, or a schedule edge): live connections re-sync. */
  #onChange: () => void
  readonly rng: Rng

  constructor(spec: FaultSetSpec, metrics: Metrics, onChange: () => void, rng: Rng = Math.random) {
    this.app = spec.app
    this.#metrics = metrics
    this.#onChange = onChange
    this.rng = rng
    this.update(spec)
  }

  /** No fault anywhere: connections take the plain path. */
  get empty(): boolean {
    return this.#entries.length === 0
  }

  update(spec: FaultSetSpec): void {
    const entries: Entry[] = []
    const old = new Map(this.#entries.map((e) => [e.key, e]))
    const arrived = performance.now()
    const add = (f: FaultSpec, target: string) => {
      const parsed = f.schedule === null ? null : parseSchedule(f.schedule)
      const windows =
        parsed === null || typeof parsed === 'string' ? null : resolveSchedule(parsed, spec.runDuration)
      const key = target ? `${target}/${f.name}` : f.name
      const prev = old.get(key)
      entries.push({
        key,
        spec: f,
        target,
        windows: typeof windows === 'string' ? null : windows,
        origin: prev && prev.spec.schedule === f.schedule ? prev.origin : arrived,
        fired: this.#metrics.faultsApplied.series({ app: this.app, target, fault: f.name, type: f.type }),
      })
    }
    for (const f of spec.faults) add(f, '')
    for (const t of spec.targets) for (const f of t.faults) add(f, t.key)
    // Keep spec objects that did not change, so stages see no update.
    for (const e of entries) {
      const prev = old.get(e.key)
      if (prev && JSON.stringify(prev.spec) === JSON.stringify(e.spec)) e.spec = prev.spec
    }
    this.#entries = entries
    this.#appLevel = entries.filter((e) => e.target === '')
    this.#byTarget = new Map()
    for (const e of entries) {
      if (!e.target) continue
      const list = this.#byTarget.get(e.target) ?? []
      list.push(e)
      this.#byTarget.set(e.target, list)
    }
    this.#schedule()
    this.#onChange()
  }

  #isActive(e: Entry, at = performance.now()): boolean {
    return e.windows === null || activeAt(e.windows, at - e.origin)
  }

  /** Re-arm the timer for the next schedule edge. */
  #schedule(): void {
    if (this.#timer) clearTimeout(this.#timer)
    this.#timer = null
    const t = performance.now()
    let next: number | null = null
    for (const e of this.#entries) {
      if (!e.windows) continue
      const n = nextChange(e.windows, t - e.origin)
      if (n !== null && (next === null || e.origin + n < next)) next = e.origin + n
    }
    if (next === null) return
    this.#timer = setTimeout(
      () => {
        this.#schedule()
        this.#onChange()
      },
      Math.max(0, next - t),
    )
    this.#timer.unref()
  }

  /** The stream faults a connection to `target` gets: the app's, then the target's. */
  streamFaults(target: string): ActiveFault[] {
    const out: ActiveFault[] = []
    const t = performance.now()
    const take = (e: Entry) => {
      if (connectTimeTypes.includes(e.spec.type)) return
      out.push({ key: e.key, spec: e.spec, active: this.#isActive(e, t), fired: e.fired })
    }
    for (const e of this.#appLevel) take(e)
    for (const e of this.#byTarget.get(target) ?? []) take(e)
    return out
  }

  /**
   * The connect-time fault that fires now for a new connection (app-wide when `target` is null,
   * else that target's), after its probability roll; null when none does.
   */
  connectFault(target: string | null): FaultSpec | null {
    const list = target === null ? this.#appLevel : (this.#byTarget.get(target) ?? [])
    for (const e of list) {
      if (!connectTimeTypes.includes(e.spec.type) || !this.#isActive(e)) continue
      if (e.spec.probability >= 1 || this.rng() < e.spec.probability) {
        e.fired.value++
        return e.spec
      }
    }
    return null
  }

  /** Whether `target` has stream faults of its own or the app has any (so a pipe needs a fault manager). */
  hasStreamFaults(target: string): boolean {
    const stream = (e: Entry) => !connectTimeTypes.includes(e.spec.type)
    return this.#appLevel.some(stream) || (this.#byTarget.get(target) ?? []).some(stream)
  }

  status(): FaultStatus[] {
    return this.#entries.map((e) => ({
      name: e.spec.name,
      type: e.spec.type,
      target: e.target || null,
      direction: e.spec.direction,
      probability: e.spec.probability,
      schedule: e.spec.schedule,
      active: this.#isActive(e),
      fired: e.fired.value,
    }))
  }

  /** The app is gone: stop the schedule timer. */
  close(): void {
    if (this.#timer) clearTimeout(this.#timer)
  }
}
