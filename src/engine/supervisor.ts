// The data path's entry point: applies plans (bind, swap, unbind, drain), takes target health from
// the control side, and answers snapshots. It holds no config file, no health checker, no admin:
// only plans and health updates come in, so it could run in worker processes fed the same plans.
import type { Plan } from '../config/plan.ts'
import type { DnsSpec } from '../config/types.ts'
import { SluiceError } from '../errors.ts'
import type { FaultStatus } from '../faults/faultset.ts'
import { DnsCache } from '../net/dns.ts'
import type { Logger } from '../observe/logger.ts'
import type { Metrics } from '../observe/metrics.ts'
import type { KindStatus, Service, ServiceFactory } from './contract.ts'
import { Listener } from './listener.ts'

export type { DestinationSnapshot, TargetSnapshot } from './contract.ts'

export interface ListenerSnapshot {
  address: string
  port: number
  accepting: boolean
  activeConnections: number
}

/** An app in /status: what every app has, then its kind's part. */
export type AppSnapshot = {
  name: string
  enabled: boolean
  origin: 'config' | 'api'
  activeConnections: number
  maxConnections: number
  listeners: ListenerSnapshot[]
  faults: FaultStatus[]
} & KindStatus

export interface DataSnapshot {
  apps: AppSnapshot[]
  draining: (ListenerSnapshot & { app: string })[]
}

/** Holds listeners and services; changes only through `apply(plan)`. */
export class Supervisor {
  readonly listeners = new Map<string, Listener>()
  readonly services = new Map<string, Service>()
  readonly dns: DnsCache
  readonly #draining = new Set<Listener>()
  readonly #metrics: Metrics
  readonly #log: Logger
  readonly #create: ServiceFactory

  constructor(deps: { metrics: Metrics; log: Logger; dns: DnsSpec; create: ServiceFactory }) {
    this.#metrics = deps.metrics
    this.#log = deps.log
    this.#create = deps.create
    this.dns = new DnsCache(deps.dns, {
      stale: (host, err) =>
        this.#log.warn(
          { code: 'ERR_DNS', host, error: err.message },
          'DNS refresh failed; serving the last answer',
        ),
      lookup: (result) => this.#metrics.dnsLookups.series({ result }).value++,
    })
    deps.metrics.onScrape(() => this.#scrape())
  }

  /**
   * Apply a plan. New sockets are bound first; if one cannot be, everything bound so far is closed
   * and the plan is rejected with nothing changed. Then, in one synchronous step, services are
   * updated or created, listeners attached or moved, and removed listeners start draining.
   */
  async apply(plan: Plan): Promise<{ warnings: string[] }> {
    this.dns.configure(plan.dns)
    const deps = { metrics: this.#metrics, dns: this.dns, log: this.#log, runDuration: plan.runDuration }
    const fresh = new Map<string, Service>()
    for (const spec of plan.upsert) {
      const existing = this.services.get(spec.name)
      // A change of kind (or one the service cannot take) replaces the service; its connections
      // drain with their listeners.
      if (!existing || existing.spec.kind !== spec.kind || existing.replacedBy?.(spec))
        fresh.set(spec.name, this.#create(spec, deps))
    }
    const bound: Listener[] = []
    try {
      for (const step of plan.bind) {
        if (step.afterUnbind) continue
        const l = new Listener(step.address, step.app)
        await l.open(this.#listenerError(l))
        bound.push(l)
      }
    } catch (err) {
      for (const l of bound) l.stopAccepting()
      for (const s of fresh.values()) s.close()
      throw new SluiceError('ERR_RELOAD', (err as Error).message, { cause: err })
    }

    // Commit: synchronous, so no connection sees half of it.
    for (const spec of plan.upsert) {
      const replacement = fresh.get(spec.name)
      if (replacement) {
        this.services.get(spec.name)?.close()
        this.services.set(spec.name, replacement)
        for (const l of this.listeners.values()) if (l.app === spec.name) l.attach(replacement, spec.name)
      } else this.services.get(spec.name)!.update(spec, plan.runDuration)
    }
    for (const l of bound) {
      this.listeners.set(l.key, l)
      l.attach(this.services.get(l.app)!, l.app)
    }
    for (const r of plan.reassign) this.listeners.get(r.key)?.attach(this.services.get(r.app)!, r.app)
    for (const { key, drain } of plan.unbind) {
      const l = this.listeners.get(key)
      if (!l) continue
      this.listeners.delete(key)
      l.stopAccepting()
      this.#drain(l, drain)
    }
    for (const name of plan.removed) {
      this.services.get(name)?.close()
      this.services.delete(name)
    }
    const hosts = new Set<string>()
    for (const s of this.services.values()) for (const h of s.hosts?.() ?? []) hosts.add(h)
    this.dns.retain(hosts)
    this.dns.prefetch(hosts)

    // Addresses that overlapped a removed one can be bound now that it is closed.
    const warnings: string[] = []
    for (const step of plan.bind) {
      if (!step.afterUnbind) continue
      const l = new Listener(step.address, step.app)
      try {
        await l.open(this.#listenerError(l))
        this.listeners.set(l.key, l)
        l.attach(this.services.get(l.app)!, l.app)
      } catch (err) {
        warnings.push((err as Error).message)
        this.#log.error(
          { code: 'ERR_LISTEN', app: step.app, listener: step.address.key, error: (err as Error).message },
          'listener not bound',
        )
      }
    }
    return { warnings }
  }

  /** Reports errors of a bound listener (a failed accept) without stopping anything. */
  #listenerError(l: Listener): (err: Error) => void {
    return (err) =>
      this.#log.error(
        { app: l.app, listener: l.key, code: (err as NodeJS.ErrnoException).code, error: err.message },
        'listener error',
      )
  }

  #drain(l: Listener, deadline: number): void {
    if (l.conns.size === 0) return
    this.#draining.add(l)
    this.#log.info(
      { app: l.app, listener: l.key, connections: l.conns.size, deadlineMs: deadline },
      'listener removed; draining its connections',
    )
    l.drain(deadline).then((clean) => {
      this.#draining.delete(l)
      if (!clean)
        this.#log.warn(
          { code: 'ERR_DRAIN_TIMEOUT', app: l.app, listener: l.key },
          'drain deadline reached; remaining connections closed',
        )
    })
  }

  /** Active health result from the control side. */
  setTargetHealth(app: string, target: string, up: boolean): void {
    this.services.get(app)?.setTargetHealth?.(target, up)
  }

  /** Stop accepting everywhere, then wait for connections to end (up to `deadline` ms). */
  async shutdown(deadline: number, closed: () => void = () => {}): Promise<boolean> {
    const all = [...this.listeners.values(), ...this.#draining]
    for (const s of this.services.values()) s.startDraining?.()
    for (const l of this.listeners.values()) l.stopAccepting()
    this.listeners.clear()
    closed()
    // Connections a fault holds forever (blackhole, timeout) would only wait out the deadline.
    for (const l of all) for (const c of l.conns) if (c.holding) c.destroy('shutdown')
    const results = await Promise.all(all.map((l) => l.drain(deadline, 'shutdown')))
    return results.every(Boolean)
  }

  /** Re-read the files apps use but the config does not hold (tunnel certificates): a reload picks up rotated ones. */
  refreshFiles(): void {
    for (const s of this.services.values()) s.refreshFiles?.()
  }

  snapshot(now = Date.now()): DataSnapshot {
    const byApp = new Map<string, Listener[]>()
    for (const l of this.listeners.values()) {
      const list = byApp.get(l.app) ?? []
      list.push(l)
      byApp.set(l.app, list)
    }
    const ls = (l: Listener): ListenerSnapshot => ({
      address: l.key,
      port: l.port,
      accepting: l.accepting,
      activeConnections: l.conns.size,
    })
    return {
      apps: [...this.services.values()].map((s) => ({
        name: s.name,
        enabled: s.spec.enabled,
        origin: s.spec.origin,
        activeConnections: s.active,
        maxConnections: s.spec.maxConnections,
        listeners: (byApp.get(s.name) ?? []).map(ls),
        faults: s.faultStatus?.() ?? [],
        ...s.status(now),
      })),
      draining: [...this.#draining].map((l) => ({ ...ls(l), app: l.app })),
    }
  }

  /** Bring live values (bytes of open connections, each service's own) into the metrics before a scrape. */
  #scrape(): void {
    for (const l of this.listeners.values()) for (const c of l.conns) c.flushBytes()
    for (const l of this.#draining) for (const c of l.conns) c.flushBytes()
    for (const s of this.services.values()) s.scrape?.()
  }
}
