// Runtime changes made through the admin APIs, kept apart from the file: apps created through the
// API (Toxiproxy proxies), and fault lists that replace a config app's own. The effective config is
// compose(file, overlay); a reload of the file keeps the overlay.
import type { ConfigIssue } from '../errors.ts'
import type { FaultSpec } from './faults.ts'
import { crossCheck } from './normalize.ts'
import type { AppSpec, Config } from './types.ts'

export interface Overlay {
  /** Apps created through an API, in creation order. */
  apps: Map<string, AppSpec>
  /** For config apps: faults set through an API, in force instead of the file's until removed. */
  faults: Map<string, FaultSpec[]>
  /** Config apps disabled through an API (they keep their config but listen nowhere). */
  disabled: Set<string>
}

export function emptyOverlay(): Overlay {
  return { apps: new Map(), faults: new Map(), disabled: new Set() }
}

/** A copy that can be changed and thrown away if the change is rejected. */
export function cloneOverlay(o: Overlay): Overlay {
  return { apps: new Map(o.apps), faults: new Map(o.faults), disabled: new Set(o.disabled) }
}

/** The effective config: the file's apps (with API faults in force), then the API's apps. */
export function compose(base: Config, overlay: Overlay): { config: Config; issues: ConfigIssue[] } {
  const issues: ConfigIssue[] = []
  const apps: AppSpec[] = base.apps.map((a) => {
    const faults = overlay.faults.get(a.name)
    const disabled = overlay.disabled.has(a.name)
    if (!faults && !disabled) return a
    return { ...a, ...(faults ? { faults } : {}), ...(disabled ? { enabled: false, drainTimeout: 0 } : {}) }
  })
  for (const [name, app] of overlay.apps) {
    if (base.apps.some((a) => a.name === name)) {
      issues.push({
        path: `apps (api)`,
        message: `the config file now defines an app "${name}", which was created through the API; delete one of them`,
      })
      continue
    }
    apps.push(app)
  }
  const config: Config = { ...base, apps }
  issues.push(...crossCheck(config))
  return { config, issues }
}
