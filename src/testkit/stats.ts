// Latency statistics (perf_hooks histograms, nanosecond resolution) and a TTY progress bar.
import { createHistogram, type RecordableHistogram } from 'node:perf_hooks'

/** Records durations in milliseconds; reports percentiles in milliseconds. */
export class Latency {
  readonly h: RecordableHistogram = createHistogram()

  record(ms: number): void {
    this.h.record(Math.max(1, Math.round(ms * 1e6)))
  }

  get count(): number {
    return this.h.count
  }

  percentile(p: number): number {
    return this.h.count ? this.h.percentile(p) / 1e6 : 0
  }

  summary(): {
    count: number
    min: number
    p50: number
    p90: number
    p99: number
    max: number
    mean: number
  } {
    const c = this.h.count
    return {
      count: c,
      min: c ? this.h.min / 1e6 : 0,
      p50: this.percentile(50),
      p90: this.percentile(90),
      p99: this.percentile(99),
      max: c ? this.h.max / 1e6 : 0,
      mean: c ? this.h.mean / 1e6 : 0,
    }
  }
}

export const ms = (n: number) => `${n < 10 ? n.toFixed(3) : n < 100 ? n.toFixed(2) : n.toFixed(1)}ms`

/** A one-line progress bar, redrawn at most 10 times a second; silent when `out` is not a TTY. */
export class Progress {
  #out: NodeJS.WriteStream
  #total: number
  #last = 0
  #enabled: boolean

  constructor(total: number, out: NodeJS.WriteStream = process.stderr) {
    this.#out = out
    this.#total = total
    this.#enabled = Boolean(out.isTTY)
  }

  update(done: number, extra = ''): void {
    if (!this.#enabled) return
    const now = Date.now()
    if (now - this.#last < 100 && done < this.#total) return
    this.#last = now
    const width = 30
    const frac = this.#total ? Math.min(1, done / this.#total) : 0
    const filled = Math.round(frac * width)
    const bar = `${'█'.repeat(filled)}${'░'.repeat(width - filled)}`
    this.#out.write(
      `\r${bar} ${String(Math.round(frac * 100)).padStart(3)}% ${done}/${this.#total} ${extra}\x1b[K`,
    )
  }

  done(): void {
    if (this.#enabled) this.#out.write('\r\x1b[K')
  }
}
