// Metric families whose labelled series are plain objects: the data path resolves a series once
// (per listener, per target) and then does `series.value++`, with no label hashing per update.
// prom-client's labelled children hash their labels on every inc(), which showed in the
// new-connection profile. The families plug into a prom-client Registry for exposition.
import type { Registry } from 'prom-client'

type Labels<L extends string> = Record<L, string>

/** One labelled series of a counter or gauge. */
export interface Series {
  value: number
}

/** One labelled series of a histogram: per-bucket counts (not cumulative), sum and count. */
export interface HistogramSeries {
  readonly counts: number[]
  sum: number
  count: number
}

interface Value {
  labels: Record<string, string>
  value: number
  metricName?: string
}

abstract class Family<L extends string, S> {
  readonly name: string
  readonly help: string
  readonly labelNames: readonly L[]
  abstract readonly type: 'counter' | 'gauge' | 'histogram'
  readonly aggregator = 'sum'
  protected readonly all = new Map<string, { labels: Labels<L>; series: S }>()

  constructor(registry: Registry, name: string, help: string, labelNames: readonly L[]) {
    this.name = name
    this.help = help
    this.labelNames = labelNames
    registry.registerMetric(this as never)
  }

  protected abstract create(): S

  /** The series for these labels, created on first use. Resolve once; keep the object. */
  series(labels: Labels<L>): S {
    const key = this.#key(labels)
    let entry = this.all.get(key)
    if (!entry) {
      entry = { labels: { ...labels }, series: this.create() }
      this.all.set(key, entry)
    }
    return entry.series
  }

  /** Drop a series (its app or target is gone). */
  remove(labels: Labels<L>): void {
    this.all.delete(this.#key(labels))
  }

  #key(labels: Labels<L>): string {
    let k = ''
    for (const n of this.labelNames) k += `${labels[n]}\u0000`
    return k
  }
}

/** Counters and gauges: one number per series; they differ only in their declared type. */
class ValueFamily<L extends string> extends Family<L, Series> {
  readonly type: 'counter' | 'gauge'

  constructor(
    type: 'counter' | 'gauge',
    registry: Registry,
    name: string,
    help: string,
    labelNames: readonly L[],
  ) {
    super(registry, name, help, labelNames)
    this.type = type
  }

  protected create(): Series {
    return { value: 0 }
  }

  get() {
    const values: Value[] = [...this.all.values()].map((e) => ({ labels: e.labels, value: e.series.value }))
    return { name: this.name, help: this.help, type: this.type, values, aggregator: this.aggregator }
  }
}

export class CounterFamily<L extends string> extends ValueFamily<L> {
  constructor(registry: Registry, name: string, help: string, labelNames: readonly L[]) {
    super('counter', registry, name, help, labelNames)
  }
}

export class GaugeFamily<L extends string> extends ValueFamily<L> {
  constructor(registry: Registry, name: string, help: string, labelNames: readonly L[]) {
    super('gauge', registry, name, help, labelNames)
  }
}

export class HistogramFamily<L extends string> extends Family<L, HistogramSeries> {
  readonly type = 'histogram'
  readonly buckets: readonly number[]

  constructor(
    registry: Registry,
    name: string,
    help: string,
    labelNames: readonly L[],
    buckets: readonly number[],
  ) {
    super(registry, name, help, labelNames)
    this.buckets = buckets
  }

  protected create(): HistogramSeries {
    return { counts: new Array(this.buckets.length + 1).fill(0), sum: 0, count: 0 }
  }

  /** Record one observation in a series of this histogram. */
  observe(s: HistogramSeries, v: number): void {
    const b = this.buckets
    let i = 0
    while (i < b.length && v > b[i]!) i++
    s.counts[i]!++
    s.sum += v
    s.count++
  }

  get() {
    const values: Value[] = []
    for (const { labels, series } of this.all.values()) {
      let cumulative = 0
      for (let i = 0; i < this.buckets.length; i++) {
        cumulative += series.counts[i]!
        values.push({
          labels: { le: String(this.buckets[i]), ...labels },
          value: cumulative,
          metricName: `${this.name}_bucket`,
        })
      }
      values.push({
        labels: { le: '+Inf', ...labels },
        value: series.count,
        metricName: `${this.name}_bucket`,
      })
      values.push({ labels, value: series.sum, metricName: `${this.name}_sum` })
      values.push({ labels, value: series.count, metricName: `${this.name}_count` })
    }
    return { name: this.name, help: this.help, type: this.type, values, aggregator: this.aggregator }
  }
}
