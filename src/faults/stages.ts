// Fault stages: one object per fault per direction per connection. A stage receives chunks (null =
// end of stream) and passes them to `next`, now or later, in order. Removing a stage flushes what
// it holds into `next` synchronously, so faults come and go on live connections without losing,
// duplicating or reordering a byte, and without the caller waiting on data.

import type {
  BandwidthFault,
  FaultSpec,
  JitterFault,
  LatencyFault,
  LimitDataFault,
  PacketLossFault,
  ResetFault,
  ResetPeerFault,
  SlicerFault,
  SlowCloseFault,
  TimeoutFault,
} from '../config/faults.ts'
import type { Series } from '../observe/series.ts'
import { type Rng, sampleDelay } from './random.ts'

export type Item = Buffer | null

export interface Receiver {
  push(item: Item): void
}

/** What a stage may do to its connection, and where it reports. */
export interface StageContext {
  /** Close both sides gracefully; this stage has passed its end of stream on already. */
  close(): void
  /** Reset both sides (RST). */
  reset(): void
  /** Held bytes went down: the chain may resume its source. */
  released(): void
  rng: Rng
}

const now = () => performance.now()

/** Base of every stage. While disabled (probability roll lost, or outside its schedule) it passes through. */
export abstract class Stage implements Receiver {
  next!: Receiver
  spec: FaultSpec
  readonly ctx: StageContext
  readonly fired: Series
  enabled: boolean
  /** Bytes held (not yet passed on). */
  held = 0

  constructor(spec: FaultSpec, ctx: StageContext, fired: Series, enabled: boolean) {
    this.spec = spec
    this.ctx = ctx
    this.fired = fired
    this.enabled = enabled
  }

  abstract push(item: Item): void

  /** New parameters for the same fault (same name and type). */
  update(spec: FaultSpec): void {
    this.spec = spec
  }

  /** Turn the fault on or off for this connection; turning it off releases what it holds. */
  setEnabled(on: boolean): void {
    if (on === this.enabled) return
    this.enabled = on
    if (on) this.activate()
    else this.release()
  }

  /** Called when the stage starts acting (created enabled, or enabled later). */
  activate(): void {}

  /** Pass everything held to `next` now and stop any timer. */
  abstract release(): void

  /** The stage is removed: release by default (timeout overrides: removing it closes). */
  remove(): void {
    this.release()
  }

  /** The connection is gone: stop timers, drop what is held. */
  destroy(): void {}

  /** How long (ms) until the last item this stage holds is due to go on (0: nothing, or held until released). */
  pendingMs(): number {
    return 0
  }
}

/** A stage that passes items on, unchanged and at once, unless a subclass says otherwise. */
abstract class TimedQueue extends Stage {
  #items: Item[] = []
  #due: number[] = []
  #timer: NodeJS.Timeout | null = null
  /** When the last queued item is due: later items never overtake it. */
  lastDue = 0

  /** Queue `item` for `due` (ms, performance.now clock), no earlier than the item before it. */
  protected enqueue(item: Item, due: number): void {
    const d = due > this.lastDue ? due : this.lastDue
    this.lastDue = d
    if (this.#items.length === 0 && d <= now()) {
      this.next.push(item)
      return
    }
    this.#items.push(item)
    this.#due.push(d)
    if (item) this.held += item.length
    if (this.#items.length === 1) this.#arm()
  }

  #arm(): void {
    if (this.#timer) clearTimeout(this.#timer)
    this.#timer = null
    // Held until released (blackhole): no timer. (setTimeout(Infinity) would fire after 1 ms.)
    if (!Number.isFinite(this.#due[0]!)) return
    // A timer waits at most 2^31-1 ms (a longer one fires after 1 ms); #flush re-arms for the rest.
    const wait = Math.min(this.#due[0]! - now(), 2 ** 31 - 1)
    this.#timer = setTimeout(this.#flush, wait > 0 ? wait : 0)
  }

  readonly #flush = (): void => {
    this.#timer = null
    // Anything due within half a millisecond goes now: timers fire late, never early enough to matter.
    const t = now() + 0.5
    let n = 0
    while (n < this.#items.length && this.#due[n]! <= t) n++
    const out = this.#items.splice(0, n)
    this.#due.splice(0, n)
    for (const item of out) {
      if (item) this.held -= item.length
      this.next.push(item)
    }
    if (this.#items.length) this.#arm()
    if (n) this.ctx.released()
  }

  get queued(): number {
    return this.#items.length
  }

  override pendingMs(): number {
    // Held until released (blackhole) is not a delay: the grace period alone applies.
    const wait = this.lastDue - now()
    return Number.isFinite(wait) && wait > 0 ? wait : 0
  }

  release(): void {
    if (this.#timer) clearTimeout(this.#timer)
    this.#timer = null
    const out = this.#items
    this.#items = []
    this.#due = []
    this.held = 0
    this.lastDue = 0
    for (const item of out) this.next.push(item)
    if (out.length) this.ctx.released()
  }

  override destroy(): void {
    if (this.#timer) clearTimeout(this.#timer)
    this.#timer = null
    this.#items = []
    this.#due = []
    this.held = 0
  }
}

/** latency: each chunk delayed by a sampled delay, pipelined (throughput kept); or only the first bytes (once). */
export class LatencyStage extends TimedQueue {
  #first = true

  push(item: Item): void {
    const s = this.spec as LatencyFault
    const t = now()
    if (!this.enabled || item === null || (s.mode === 'once' && !this.#first)) {
      this.enqueue(item, t)
      return
    }
    this.#first = false
    this.fired.value++
    this.enqueue(item, t + sampleDelay(s, this.ctx.rng))
  }
}

/**
 * jitter, as fault's: a chunk is delayed uniformly in [0, amplitude] when a draw is below
 * `frequency` (≥ 1: every chunk). With `perSecond`: at most that many chunks a second are delayed.
 */
export class JitterStage extends TimedQueue {
  #last = Number.NEGATIVE_INFINITY

  push(item: Item): void {
    const s = this.spec as JitterFault
    const t = now()
    if (this.enabled && item !== null && this.#applies(s, t)) {
      this.fired.value++
      this.enqueue(item, t + this.ctx.rng() * s.amplitude)
    } else this.enqueue(item, t)
  }

  #applies(s: JitterFault, t: number): boolean {
    if (s.perSecond === null) return s.frequency >= 1 || this.ctx.rng() < s.frequency
    if (s.perSecond <= 0 || t - this.#last < 1000 / s.perSecond) return false
    this.#last = t
    return true
  }
}

/** packet_loss: a "lost" chunk stalls for a retransmission delay (doubling while losses continue); no byte is dropped. */
export class PacketLossStage extends TimedQueue {
  #bad = false
  #streak = 0

  push(item: Item): void {
    const s = this.spec as PacketLossFault
    const t = now()
    if (!this.enabled || item === null) {
      this.enqueue(item, t)
      return
    }
    // Gilbert-Elliott with a loss-free good state and an always-losing bad state: mean loss = rate,
    // and lag-1 correlation of the loss process = correlation.
    const p = (1 - s.correlation) * s.rate
    const r = (1 - s.correlation) * (1 - s.rate)
    this.#bad = this.#bad ? this.ctx.rng() >= r : this.ctx.rng() < p
    if (!this.#bad) {
      this.#streak = 0
      this.enqueue(item, t)
      return
    }
    this.fired.value++
    const stall = Math.min(s.maxRetransmit, s.retransmit * 2 ** this.#streak)
    this.#streak++
    // The stall starts when the chunk would have left (after those queued before it): losses add up,
    // as retransmissions do, instead of overlapping for chunks that arrived together.
    this.enqueue(item, Math.max(t, this.lastDue) + stall)
  }
}

/** bandwidth: bytes leave at `rate` per second, in pieces of ~10 ms worth, on a clock that does not drift. */
export class BandwidthStage extends TimedQueue {
  #free = 0

  push(item: Item): void {
    const s = this.spec as BandwidthFault
    const t = now()
    // Rate 0 (possible through the Toxiproxy API) means no limit, as in Toxiproxy.
    if (!this.enabled || item === null || s.rate <= 0) {
      this.enqueue(item, t)
      return
    }
    this.fired.value++
    if (this.#free < t) this.#free = t
    const quantum = Math.max(1, Math.floor(s.rate / 100))
    for (let off = 0; off < item.length; off += quantum) {
      const piece = item.subarray(off, off + quantum)
      this.#free += (piece.length / s.rate) * 1000
      this.enqueue(piece, this.#free)
    }
  }

  override update(spec: FaultSpec): void {
    super.update(spec)
    // A new rate applies from now, not to the time already booked.
    this.#free = Math.min(this.#free, now())
  }
}

/**
 * slicer, as Toxiproxy's SlicerToxic: a chunk larger than average_size + size_variation is cut in
 * two near its middle (± size_variation), and each half the same way, so pieces come out even
 * (no short tail). After every piece it waits `delay`, so the next chunk and the end wait too.
 */
export class SlicerStage extends TimedQueue {
  push(item: Item): void {
    const s = this.spec as SlicerFault
    const t = now()
    if (!this.enabled || item === null) {
      this.enqueue(item, t)
      return
    }
    this.fired.value++
    let due = Math.max(t, this.lastDue)
    let off = 0
    for (const end of this.#cuts(item.length, s)) {
      this.enqueue(item.subarray(off, end), due)
      off = end
      due += s.delay
    }
    this.lastDue = due
  }

  /** The end offset of each piece of a chunk of `length` bytes, in order. */
  #cuts(length: number, s: SlicerFault): number[] {
    const ends: number[] = []
    // Ranges still to cut, the next one last (a stack, so no recursion however the cuts fall).
    const todo: [number, number][] = [[0, length]]
    while (todo.length) {
      const [a, b] = todo.pop()!
      if (b - a - s.averageSize <= s.sizeVariation) {
        ends.push(b)
        continue
      }
      let mid = a + Math.floor((b - a) / 2)
      if (s.sizeVariation > 0) mid += Math.floor(this.ctx.rng() * 2 * s.sizeVariation) - s.sizeVariation
      // Never an empty piece, so every cut makes progress (Toxiproxy can emit empty ones).
      mid = Math.min(b - 1, Math.max(a + 1, mid))
      todo.push([mid, b], [a, mid])
    }
    return ends
  }
}

/** slow_close: data passes; the end of stream is held back for `delay`. */
export class SlowCloseStage extends TimedQueue {
  push(item: Item): void {
    const s = this.spec as SlowCloseFault
    if (item === null && this.enabled) {
      this.fired.value++
      this.enqueue(null, now() + s.delay)
    } else this.enqueue(item, now())
  }
}

/** blackhole: holds everything until removed (or disabled), then lets it through in order. */
export class BlackholeStage extends TimedQueue {
  push(item: Item): void {
    if (!this.enabled) {
      this.enqueue(item, now())
      return
    }
    if (item) this.fired.value++
    this.enqueue(item, Number.POSITIVE_INFINITY)
  }
}

/** limit_data: lets `bytes` through, then closes the connection. */
export class LimitDataStage extends Stage {
  passed = 0
  #done = false

  push(item: Item): void {
    if (this.#done) return
    if (!this.enabled || item === null) {
      this.next.push(item)
      return
    }
    const s = this.spec as LimitDataFault
    const left = s.bytes - this.passed
    if (item.length < left) {
      this.passed += item.length
      this.next.push(item)
      return
    }
    if (left > 0) this.next.push(item.subarray(0, left))
    this.passed += left
    this.#done = true
    this.fired.value++
    this.next.push(null)
    this.ctx.close()
  }

  release(): void {}
}

/**
 * timeout, as Toxiproxy's TimeoutToxic: drops data; closes the connection once `timeout` passes
 * without a chunk (each dropped chunk starts the count again; 0: never), and at once when its
 * source ends. Removing it closes too.
 */
export class TimeoutStage extends Stage {
  #timer: NodeJS.Timeout | null = null
  #closed = false

  override activate(): void {
    const s = this.spec as TimeoutFault
    this.fired.value++
    if (this.#timer) clearTimeout(this.#timer)
    this.#timer = null
    if (s.timeout > 0) {
      this.#timer = setTimeout(() => this.#close(), s.timeout)
      this.#timer.unref()
    }
  }

  #close(): void {
    this.release()
    if (this.#closed) return
    this.#closed = true
    this.next.push(null)
    this.ctx.close()
  }

  push(item: Item): void {
    if (!this.enabled) this.next.push(item)
    // While active, data is dropped; an end of stream closes the connection (Toxiproxy closes the
    // link when its input ends, whatever the timeout).
    else if (item === null) this.#close()
    // Toxiproxy waits on a fresh timer each time round its loop, so every chunk restarts the count.
    else this.#timer?.refresh()
  }

  override update(spec: FaultSpec): void {
    const before = (this.spec as TimeoutFault).timeout
    super.update(spec)
    if (this.enabled && (spec as TimeoutFault).timeout !== before) this.activate()
  }

  release(): void {
    if (this.#timer) clearTimeout(this.#timer)
    this.#timer = null
  }

  override remove(): void {
    const was = this.enabled
    this.release()
    if (was) this.#close()
  }

  override destroy(): void {
    this.release()
  }
}

/**
 * reset_peer, as Toxiproxy's ResetToxic: the first data (or end of stream) that reaches it while it
 * acts is taken and not passed on; `timeout` later the connection is reset (RST). Nothing after
 * that first chunk passes either. An idle connection is never reset. Once the chunk is taken the
 * reset is certain: removed or turned off meanwhile, the stage resets at once (Toxiproxy's toxic
 * cannot be interrupted while it waits, so the reset comes anyway and the API call waits for it).
 */
export class ResetPeerStage extends Stage {
  #timer: NodeJS.Timeout | null = null

  push(item: Item): void {
    if (!this.enabled) {
      this.next.push(item)
      return
    }
    if (this.#timer) return
    this.#timer = setTimeout(() => this.#reset(), (this.spec as ResetPeerFault).timeout)
    this.#timer.unref()
  }

  #reset(): void {
    this.#timer = null
    this.fired.value++
    this.ctx.reset()
  }

  release(): void {
    if (!this.#timer) return
    clearTimeout(this.#timer)
    this.#reset()
  }

  override destroy(): void {
    if (this.#timer) clearTimeout(this.#timer)
    this.#timer = null
  }
}

/** reset: each chunk resets the connection with probability `rate`. */
export class ResetStage extends Stage {
  push(item: Item): void {
    if (this.enabled && item !== null && this.ctx.rng() < (this.spec as ResetFault).rate) {
      this.fired.value++
      this.ctx.reset()
      return
    }
    this.next.push(item)
  }

  release(): void {}
}

/** The stage class for a fault type (connect-time types have none). */
export function stageFor(spec: FaultSpec, ctx: StageContext, fired: Series, enabled: boolean): Stage | null {
  switch (spec.type) {
    case 'latency':
      return new LatencyStage(spec, ctx, fired, enabled)
    case 'jitter':
      return new JitterStage(spec, ctx, fired, enabled)
    case 'packet_loss':
      return new PacketLossStage(spec, ctx, fired, enabled)
    case 'bandwidth':
      return new BandwidthStage(spec, ctx, fired, enabled)
    case 'slicer':
      return new SlicerStage(spec, ctx, fired, enabled)
    case 'slow_close':
      return new SlowCloseStage(spec, ctx, fired, enabled)
    case 'blackhole':
      return new BlackholeStage(spec, ctx, fired, enabled)
    case 'limit_data':
      return new LimitDataStage(spec, ctx, fired, enabled)
    case 'timeout':
      return new TimeoutStage(spec, ctx, fired, enabled)
    case 'reset_peer':
      return new ResetPeerStage(spec, ctx, fired, enabled)
    case 'reset':
      return new ResetStage(spec, ctx, fired, enabled)
    case 'refuse':
    case 'close':
    case 'http_error':
      return null
  }
}
