// The native fault API: list, add, change and remove faults on any app (config apps included),
// in sluice's own fault format. Every change is a plan/apply of the composed config.

import { type FaultSpec, faultDocument, faultKindProblem } from '../config/faults.ts'
import { parseFaults } from '../config/normalize.ts'
import type { Overlay } from '../config/overlay.ts'
import type { AppSpec, Config } from '../config/types.ts'
import type { Controller } from '../engine/control.ts'
import { type ConfigIssue, SluiceError } from '../errors.ts'
import { json, noContent, type Router } from './http.ts'

/** A fault that cannot act on this kind of app is refused (the fault model says which it acts on). */
function checkKind(app: AppSpec, fault: FaultSpec): void {
  const problem = faultKindProblem(fault.type, app.kind)
  if (problem === null) return
  throw new SluiceError(
    'ERR_FAULT_INVALID',
    problem.includes('take no faults') ? problem : `fault.type: ${problem}`,
  )
}

/** The app named `name` in the config in force, or ERR_NOT_FOUND. */
export function findApp(config: Config, name: string, what = 'app'): AppSpec {
  const app = config.apps.find((a) => a.name === name)
  if (!app) throw new SluiceError('ERR_NOT_FOUND', `${what} not found`)
  return app
}

/** Replace an app's faults: API apps in their own spec, config apps in the overlay. */
export function setFaults(overlay: Overlay, app: AppSpec, faults: FaultSpec[]): void {
  const api = overlay.apps.get(app.name)
  if (api) overlay.apps.set(app.name, { ...api, faults })
  else overlay.faults.set(app.name, faults)
}

/** Validate one native fault document; ERR_FAULT_INVALID naming each field (`fault.rate`). */
export function parseFaultOrThrow(doc: unknown, runDuration: number | null): FaultSpec {
  const issues: ConfigIssue[] = []
  const [fault] = parseFaults([doc], 'fault', issues, runDuration, () => 'fault')
  if (issues.length) {
    const e = new SluiceError(
      'ERR_FAULT_INVALID',
      issues.map((i) => `${i.path}: ${i.message}`).join('; '),
    ) as SluiceError & { issues?: ConfigIssue[] }
    e.issues = issues
    throw e
  }
  return fault!
}

function faultStatus(c: Controller, app: string) {
  return c.supervisor.snapshot().apps.find((a) => a.name === app)?.faults ?? []
}

function view(c: Controller, app: AppSpec) {
  const stats = faultStatus(c, app.name).filter((s) => s.target === null)
  const overridden = c.overlay.faults.has(app.name)
  return {
    app: app.name,
    source: app.origin === 'api' ? 'api' : overridden ? "api (replacing the config file's faults)" : 'config',
    faults: app.faults.map((f) => {
      const s = stats.find((x) => x.name === f.name)
      return { ...faultDocument(f), active: s?.active ?? true, fired: s?.fired ?? 0 }
    }),
  }
}

/** Add one fault (a native fault document) to an app, live; ERR_FAULT_INVALID, ERR_CONFLICT, ERR_NOT_FOUND. */
export async function addFault(c: Controller, appName: string, doc: unknown): Promise<FaultSpec> {
  const { value } = await c.change((overlay, config) => {
    const app = findApp(config, appName)
    const fault = parseFaultOrThrow(doc, config.runDuration)
    checkKind(app, fault)
    if (app.faults.some((f) => f.name === fault.name)) {
      throw new SluiceError('ERR_CONFLICT', `app "${app.name}" already has a fault named "${fault.name}"`)
    }
    setFaults(overlay, app, [...app.faults, fault])
    return fault
  })
  return value
}

/** Remove one fault from an app, live; ERR_NOT_FOUND when there is none of that name. */
export async function removeFault(c: Controller, appName: string, name: string): Promise<void> {
  await c.change((overlay, config) => {
    const app = findApp(config, appName)
    if (!app.faults.some((f) => f.name === name)) {
      throw new SluiceError('ERR_NOT_FOUND', `app "${app.name}" has no fault named "${name}"`)
    }
    setFaults(
      overlay,
      app,
      app.faults.filter((f) => f.name !== name),
    )
  })
}

export function registerFaultRoutes(router: Router, c: Controller): void {
  router.add('GET', '/apps/:app/faults', ({ res, params }) => {
    json(res, 200, view(c, findApp(c.config!, params.app!)))
  })

  router.add('POST', '/apps/:app/faults', async ({ res, params, json: body }) => {
    json(res, 201, faultDocument(await addFault(c, params.app!, await body())))
  })

  router.add('PATCH', '/apps/:app/faults/:name', async ({ res, params, json: body }) => {
    const patch = await body()
    if (!patch || typeof patch !== 'object' || Array.isArray(patch)) {
      throw new SluiceError('ERR_BAD_REQUEST', 'bad request body: expected an object of fault fields')
    }
    const { value } = await c.change((overlay, config) => {
      const app = findApp(config, params.app!)
      const i = app.faults.findIndex((f) => f.name === params.name)
      if (i < 0)
        throw new SluiceError('ERR_NOT_FOUND', `app "${app.name}" has no fault named "${params.name}"`)
      const merged = { ...faultDocument(app.faults[i]!), ...(patch as object), name: params.name }
      const fault = parseFaultOrThrow(merged, config.runDuration)
      checkKind(app, fault)
      const faults = [...app.faults]
      faults[i] = fault
      setFaults(overlay, app, faults)
      return fault
    })
    json(res, 200, faultDocument(value))
  })

  router.add('DELETE', '/apps/:app/faults/:name', async ({ res, params }) => {
    await removeFault(c, params.app!, params.name!)
    noContent(res)
  })

  // Back to the config file's faults (config apps), or none (API apps).
  router.add('DELETE', '/apps/:app/faults', async ({ res, params }) => {
    await c.change((overlay, config) => {
      const app = findApp(config, params.app!)
      if (overlay.apps.has(app.name)) setFaults(overlay, app, [])
      else overlay.faults.delete(app.name)
    })
    noContent(res)
  })
}
