// A direction's chain of fault stages. It takes the direction's chunks from the pipe, runs them
// through the stages in order and writes what comes out. Admission control keeps memory bounded:
// when the stages and the socket buffer hold more than the high-water mark, the source is paused.
import type { Flow, FlowHook } from '../net/pipe.ts'
import type { Item, Receiver, Stage } from './stages.ts'

/** Bytes a direction may hold in its stages and write buffer before its source pauses. */
export const HIGH_WATER = 4 * 1024 * 1024

/** The last receiver: writes to the destination socket. */
class Sink implements Receiver {
  readonly flow: Flow

  constructor(flow: Flow) {
    this.flow = flow
  }

  push(item: Item): void {
    const to = this.flow.to
    if (to.destroyed) return
    if (item === null) {
      if (!to.writableEnded) to.end()
    } else if (!to.writableEnded) to.write(item)
  }
}

export class Chain implements FlowHook {
  readonly flow: Flow
  readonly names: string[] = []
  readonly stages: Stage[] = []
  readonly #sink: Sink
  #paused = false

  constructor(flow: Flow) {
    this.flow = flow
    this.#sink = new Sink(flow)
  }

  push(item: Item): void {
    const head = this.stages[0]
    if (head) head.push(item)
    else this.#sink.push(item)
    if (!this.#paused && this.#held() > HIGH_WATER) {
      this.#paused = true
      this.flow.from.pause()
    }
  }

  onDrain(): void {
    this.released()
  }

  pendingMs(): number {
    let most = 0
    for (const s of this.stages) {
      const p = s.pendingMs()
      if (p > most) most = p
    }
    return most
  }

  /** A stage passed held bytes on, or the socket drained: resume the source below half the mark. */
  released(): void {
    if (this.#paused && this.#held() < HIGH_WATER / 2) {
      this.#paused = false
      this.flow.from.resume()
    }
  }

  #held(): number {
    let n = this.flow.to.writableLength
    for (const s of this.stages) n += s.held
    return n
  }

  get(name: string): Stage | undefined {
    const i = this.names.indexOf(name)
    return i < 0 ? undefined : this.stages[i]
  }

  /** Put `stage` at `index`; what it emits goes where its predecessor's output went. */
  insert(name: string, stage: Stage, index: number): void {
    const i = Math.min(index, this.stages.length)
    stage.next = this.stages[i] ?? this.#sink
    const prev = this.stages[i - 1]
    if (prev) prev.next = stage
    this.stages.splice(i, 0, stage)
    this.names.splice(i, 0, name)
    if (stage.enabled) stage.activate()
  }

  /** Take a stage out: first what it holds goes on (in order), then later chunks skip it. */
  remove(name: string): void {
    const i = this.names.indexOf(name)
    if (i < 0) return
    const stage = this.stages[i]!
    stage.remove()
    const prev = this.stages[i - 1]
    if (prev) prev.next = stage.next
    this.stages.splice(i, 1)
    this.names.splice(i, 1)
    this.released()
  }

  get empty(): boolean {
    return this.stages.length === 0
  }

  /** The connection ended: stop every stage's timers. */
  destroy(): void {
    for (const s of this.stages) s.destroy()
  }
}
