// plan(current, next): a pure diff of two configs, per app and per listener. The data path applies
// it; apps that did not change are not touched. Plans are plain data (JSON-serialisable).
import { type ListenAddress, listenOverlaps } from './address.ts'
import type { AppSpec, Config, DnsSpec } from './types.ts'

export interface BindStep {
  address: ListenAddress
  app: string
  /** The address overlaps one being unbound: bind it only after that one is closed. */
  afterUnbind: boolean
}

export interface Plan {
  /** New or changed apps, with their full new spec. */
  upsert: AppSpec[]
  added: string[]
  changed: string[]
  removed: string[]
  unchanged: string[]
  bind: BindStep[]
  /** Listeners to close; their connections drain up to `drain` ms (0: closed at once). */
  unbind: { key: string; drain: number }[]
  /** Listeners kept open but now serving another app. */
  reassign: { key: string; app: string }[]
  drainTimeout: number
  dns: DnsSpec
  runDuration: number | null
  /** Control-side changes: the admin address, the log settings. */
  adminChanged: boolean
  logChanged: boolean
}

const same = (a: unknown, b: unknown) => JSON.stringify(a) === JSON.stringify(b)

/** The steps that turn `current` (null at start-up) into `next`. */
export function plan(current: Config | null, next: Config): Plan {
  const prevApps = new Map((current?.apps ?? []).map((a) => [a.name, a]))
  const nextApps = new Map(next.apps.map((a) => [a.name, a]))
  const p: Plan = {
    upsert: [],
    added: [],
    changed: [],
    removed: [],
    unchanged: [],
    bind: [],
    unbind: [],
    reassign: [],
    drainTimeout: next.drainTimeout,
    dns: next.dns,
    runDuration: next.runDuration,
    adminChanged: !current || !same(current.admin, next.admin),
    logChanged: !current || !same(current.log, next.log),
  }
  for (const [name, app] of nextApps) {
    const prev = prevApps.get(name)
    if (!prev) {
      p.added.push(name)
      p.upsert.push(app)
    } else if (!same(prev, app)) {
      p.changed.push(name)
      p.upsert.push(app)
    } else p.unchanged.push(name)
  }
  for (const name of prevApps.keys()) if (!nextApps.has(name)) p.removed.push(name)

  const prevListeners = listenerMap(current?.apps ?? [])
  const nextListeners = listenerMap(next.apps)
  const unbound: ListenAddress[] = []
  for (const [key, { address, app }] of prevListeners) {
    if (!nextListeners.has(key)) {
      const drain = prevApps.get(app)?.drainTimeout ?? next.drainTimeout
      p.unbind.push({ key, drain })
      unbound.push(address)
    }
  }
  for (const [key, { address, app }] of nextListeners) {
    const prev = prevListeners.get(key)
    if (!prev) {
      p.bind.push({ address, app, afterUnbind: unbound.some((u) => listenOverlaps(u, address)) })
    } else if (prev.app !== app) p.reassign.push({ key, app })
  }
  return p
}

function listenerMap(apps: AppSpec[]): Map<string, { address: ListenAddress; app: string }> {
  const m = new Map<string, { address: ListenAddress; app: string }>()
  for (const app of apps) {
    if (!app.enabled) continue
    for (const address of app.listen) m.set(address.key, { address, app: app.name })
  }
  return m
}

/** Whether applying the plan changes nothing in the data path. */
export function isEmpty(p: Plan): boolean {
  return p.upsert.length === 0 && p.removed.length === 0 && p.bind.length === 0 && p.unbind.length === 0
}

/** One line per step, for logs and `sluice check`. */
export function describePlan(p: Plan): string[] {
  const lines: string[] = []
  for (const name of p.added) lines.push(`add app ${name}`)
  for (const name of p.changed) lines.push(`update app ${name}`)
  for (const name of p.removed) lines.push(`remove app ${name}`)
  for (const b of p.bind)
    lines.push(`bind ${b.address.key} for ${b.app}${b.afterUnbind ? ' (after unbinding)' : ''}`)
  for (const r of p.reassign) lines.push(`move ${r.key} to ${r.app}`)
  for (const u of p.unbind)
    lines.push(`unbind ${u.key} (${u.drain ? `drain up to ${u.drain}ms` : 'close its connections'})`)
  if (lines.length === 0) lines.push('no change')
  return lines
}
