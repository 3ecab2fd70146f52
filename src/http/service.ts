// The http service: one app's listeners, its compiled dispatch rules, an upstream connection pool
// per destination, its HTTP faults and metrics. Connections (exchange.ts) read everything through
// this object, so a reload's new rules apply to the next request of every open connection.
import type { Socket } from 'node:net'
import type { HttpErrorFault, LatencyFault } from '../config/faults.ts'
import type { Destination, HttpAppSpec } from '../config/types.ts'
import type { KindStatus, Service, ServiceDeps } from '../engine/contract.ts'
import { FaultSet, type FaultSetSpec } from '../faults/faultset.ts'
import { sampleDelay } from '../faults/random.ts'
import { type DialTls, dialTls } from '../net/dial.ts'
import type { DnsCache } from '../net/dns.ts'
import { ConnectionCap, type ListenerContext, track } from '../net/service.ts'
import type { Logger } from '../observe/logger.ts'
import type { Metrics } from '../observe/metrics.ts'
import type { HistogramSeries, Series } from '../observe/series.ts'
import type { HttpContext, HttpSlot } from './context.ts'
import { HttpConnection } from './exchange.ts'
import { Pool } from './pool.ts'
import { type CompiledRule, compileRules } from './rules.ts'

/** Per rule: request counters by status class (1xx..5xx), resolved on first use; the upstream histogram. */
interface RuleSlot {
  codes: (Series | null)[]
  upstream: HistogramSeries
}

export type HttpServiceDeps = ServiceDeps

const ruleScope = (name: string) => `rule:${name}`

export class HttpService implements Service<HttpAppSpec>, HttpContext {
  readonly name: string
  spec: HttpAppSpec
  rules: CompiledRule[] = []
  readonly faults: FaultSet
  readonly log: Logger
  readonly conns = new Set<HttpConnection>()
  readonly pools = new Map<string, Pool>()
  active = 0
  draining = false
  #metrics: Metrics
  #dns: DnsCache
  #runDuration: number | null
  #tls = new Map<string, DialTls>()
  #rejected = new Map<number, Series>()
  #cap = new ConnectionCap()

  constructor(spec: HttpAppSpec, deps: HttpServiceDeps) {
    this.name = spec.name
    this.spec = spec
    this.#metrics = deps.metrics
    this.#dns = deps.dns
    this.#runDuration = deps.runDuration
    this.log = deps.log.child({ app: spec.name })
    this.faults = new FaultSet(this.#faultSpec(spec), deps.metrics, () => {})
    this.update(spec, deps.runDuration)
  }

  #faultSpec(spec: HttpAppSpec): FaultSetSpec {
    return {
      app: spec.name,
      faults: spec.faults,
      targets: spec.rules
        .filter((r) => r.faults.length)
        .map((r) => ({ key: ruleScope(r.name), faults: r.faults })),
      runDuration: this.#runDuration,
    }
  }

  /** New rules apply to the next request on every connection; pools of destinations still in use stay. */
  update(spec: HttpAppSpec, runDuration: number | null = this.#runDuration): void {
    this.spec = spec
    this.#runDuration = runDuration
    const rules = compileRules(spec)
    for (const r of rules) {
      r.slot = {
        codes: [null, null, null, null, null, null],
        upstream: this.#metrics.httpUpstreamSeconds.series({
          app: this.name,
          destination: r.destination.url,
        }),
      } satisfies RuleSlot
    }
    this.rules = rules
    const keep = new Set(rules.map((r) => r.destination.key))
    for (const [key, pool] of this.pools) {
      if (!keep.has(key)) {
        pool.close()
        this.pools.delete(key)
      } else pool.opts = this.#poolOptions(pool.destination)
    }
    this.#tls = new Map()
    this.faults.update(this.#faultSpec(spec))
  }

  #poolOptions(d: Destination) {
    return {
      maxConnections: this.spec.pool.maxConnections,
      maxIdle: this.spec.pool.maxIdle,
      idleTimeout: this.spec.pool.idleTimeout,
      connectTimeout: this.spec.connectTimeout,
      dns: this.#dns,
      tls: this.#tlsFor(d),
    }
  }

  #tlsFor(d: Destination): DialTls | null {
    if (!d.tls) return null
    let t = this.#tls.get(d.key)
    if (!t) {
      const caFile = d.tls.caFile
      t = dialTls(d.tls, d.host, (err) =>
        this.log.error(
          { code: 'ERR_CONFIG_READ', destination: d.url, caFile, error: err.message },
          'cannot read the CA file',
        ),
      )
      this.#tls.set(d.key, t)
    }
    return t
  }

  poolFor(d: Destination): Pool {
    let p = this.pools.get(d.key)
    if (!p) {
      p = new Pool(d, this.#poolOptions(d))
      this.pools.set(d.key, p)
    }
    return p
  }

  /** The faults that act on one request: an error answer, delays before the request and before the response. */
  requestFaults(rule: CompiledRule): { error: HttpErrorFault | null; before: number; after: number } {
    const out = { error: null as HttpErrorFault | null, before: 0, after: 0 }
    const rng = this.faults.rng
    for (const f of this.faults.streamFaults(ruleScope(rule.name))) {
      if (!f.active) continue
      const spec = f.spec
      if (spec.probability < 1 && rng() >= spec.probability) continue
      if (spec.type === 'http_error') {
        if (out.error) continue
        out.error = spec
        f.fired.value++
      } else if (spec.type === 'latency') {
        const d = sampleDelay(spec as LatencyFault, rng)
        if (spec.direction !== 'to-client') out.before += d
        if (spec.direction !== 'to-upstream') out.after += d
        f.fired.value++
      }
    }
    return out
  }

  observeUpstream(rule: CompiledRule, seconds: number): void {
    this.#metrics.httpUpstreamSeconds.observe((rule.slot as RuleSlot).upstream, seconds)
  }

  countRequest(rule: CompiledRule, status: number): void {
    const slot = rule.slot as RuleSlot
    const cls = Math.min(5, Math.floor(status / 100))
    let s = slot.codes[cls]
    if (!s) {
      s = this.#metrics.httpRequests.series({
        app: this.name,
        rule: rule.name,
        destination: rule.destination.url,
        code: `${cls}xx`,
      })
      slot.codes[cls] = s
    }
    s.value++
  }

  countRejected(status: number): void {
    let s = this.#rejected.get(status)
    if (!s) {
      s = this.#metrics.httpRequests.series({
        app: this.name,
        rule: '',
        destination: '',
        code: `${Math.floor(status / 100)}xx`,
      })
      this.#rejected.set(status, s)
    }
    s.value++
  }

  attach(l: ListenerContext): void {
    const m = this.#metrics
    const labels = { app: this.name, listener: l.key }
    const slot: HttpSlot = {
      accepted: m.accepted.series(labels),
      active: m.active.series(labels),
      rejectedMax: m.rejected.series({ ...labels, reason: 'max_connections' }),
      bytesIn: m.bytesIn.series(labels),
      bytesOut: m.bytesOut.series(labels),
      session: m.sessionSeconds.series(labels),
    }
    l.slot = slot
  }

  handle(client: Socket, l: ListenerContext): void {
    const slot = l.slot as HttpSlot
    if (this.#cap.refuse(client, this.active, this.spec.maxConnections, l.key, slot.rejectedMax, this.log))
      return
    client.setNoDelay(true)
    const conn = new HttpConnection(client, this, slot)
    this.conns.add(conn)
    track(this, l, slot, conn, client, () => {
      conn.closed()
      this.conns.delete(conn)
      conn.flushBytes()
      this.#metrics.sessionSeconds.observe(slot.session, (performance.now() - conn.started) / 1000)
    })
  }

  /** Pool gauges, before a scrape. */
  scrape(): void {
    const m = this.#metrics
    for (const p of this.pools.values()) {
      const d = p.destination.url
      m.httpPool.series({ app: this.name, destination: d, state: 'idle' }).value = p.idle.length
      m.httpPool.series({ app: this.name, destination: d, state: 'busy' }).value = p.busy
      m.httpPoolWaiting.series({ app: this.name, destination: d }).value = p.queued
    }
  }

  /** Pools as the status JSON shows them. */
  destinations() {
    return [...this.pools.values()].map((p) => ({
      destination: p.destination.url,
      open: p.open,
      idle: p.idle.length,
      busy: p.busy,
      waiting: p.queued,
    }))
  }

  status(): KindStatus {
    return {
      kind: 'http',
      strategy: 'header',
      health: 'none',
      targets: [],
      destinations: this.destinations(),
    }
  }

  faultStatus() {
    return this.faults.status()
  }

  hosts(): string[] {
    return this.rules.map((r) => r.destination.host)
  }

  summary(): Record<string, unknown> {
    return { destination: this.spec.destination.url, rules: this.spec.rules.map((r) => r.name) }
  }

  startDraining(): void {
    this.draining = true
  }

  close(): void {
    for (const p of this.pools.values()) p.close()
    this.pools.clear()
    this.faults.close()
  }
}
