// The faults of one live connection: a chain per direction, created when the first fault arrives
// and dropped when the last one goes, kept in line with the app's faults as they change.

import { type FaultSpec, flowsOf } from '../config/faults.ts'
import type { Flow, Pipe } from '../net/pipe.ts'
import type { Series } from '../observe/series.ts'
import { Chain } from './chain.ts'
import type { Rng } from './random.ts'
import { type StageContext, stageFor } from './stages.ts'

/** A fault as the connection must apply it now. */
export interface ActiveFault {
  /** Unique within the connection (target faults are prefixed with the target). */
  key: string
  spec: FaultSpec
  /** Inside its schedule. */
  active: boolean
  fired: Series
}

interface Roll {
  probability: number
  won: boolean
}

export class ConnectionFaults {
  readonly #pipe: Pipe
  readonly #rng: Rng
  #chains = new Map<Flow, Chain>()
  #rolls = new Map<string, Roll>()
  #contexts = new Map<Flow, StageContext>()

  constructor(pipe: Pipe, rng: Rng) {
    this.#pipe = pipe
    this.#rng = rng
  }

  /** Whether the probability roll for this fault applies it to this connection (re-rolled when the probability changes). */
  #won(f: ActiveFault): boolean {
    const prev = this.#rolls.get(f.key)
    if (prev && prev.probability === f.spec.probability) return prev.won
    const won = f.spec.probability >= 1 || this.#rng() < f.spec.probability
    this.#rolls.set(f.key, { probability: f.spec.probability, won })
    return won
  }

  #context(flow: Flow): StageContext {
    let ctx = this.#contexts.get(flow)
    if (!ctx) {
      ctx = {
        close: () => this.#pipe.closeGracefully(flow),
        reset: () => this.#pipe.reset(),
        released: () => this.#chains.get(flow)?.released(),
        rng: this.#rng,
      }
      this.#contexts.set(flow, ctx)
    }
    return ctx
  }

  /** Make the connection's stages match `faults` (in order); creates and drops chains as needed. */
  sync(faults: ActiveFault[]): void {
    const keys = new Set(faults.map((f) => f.key))
    for (const k of this.#rolls.keys()) if (!keys.has(k)) this.#rolls.delete(k)
    for (const [flow, direction] of [
      [this.#pipe.up, 'to-upstream'],
      [this.#pipe.down, 'to-client'],
    ] as const) {
      if (flow.closed) continue
      const wanted = faults.filter((f) => flowsOf(f.spec).includes(direction))
      let chain = this.#chains.get(flow)
      if (!chain) {
        if (wanted.length === 0) continue
        chain = new Chain(flow)
        this.#chains.set(flow, chain)
        flow.setHook(chain)
      }
      const wantedKeys = new Set(wanted.map((f) => f.key))
      for (const name of [...chain.names]) if (!wantedKeys.has(name)) chain.remove(name)
      wanted.forEach((f, i) => {
        const enabled = f.active && this.#won(f)
        const existing = chain!.get(f.key)
        if (existing && existing.spec.type === f.spec.type && chain!.names.indexOf(f.key) === i) {
          if (existing.spec !== f.spec) existing.update(f.spec)
          existing.setEnabled(enabled)
          return
        }
        if (existing) chain!.remove(f.key)
        const stage = stageFor(f.spec, this.#context(flow), f.fired, enabled)
        if (stage) chain!.insert(f.key, stage, i)
      })
      if (chain.empty) {
        chain.destroy()
        this.#chains.delete(flow)
        flow.setHook(null)
      }
    }
  }

  /** Whether a stage that holds data indefinitely (blackhole, timeout) is active: shutdown ends such connections at once. */
  get holding(): boolean {
    for (const chain of this.#chains.values()) {
      for (const s of chain.stages) {
        if (s.enabled && (s.spec.type === 'blackhole' || s.spec.type === 'timeout')) return true
      }
    }
    return false
  }

  /** Remove every fault (held data is released in order). */
  clear(): void {
    this.sync([])
  }

  destroy(): void {
    for (const c of this.#chains.values()) c.destroy()
    this.#chains.clear()
  }
}
