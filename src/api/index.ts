// sluice as a library: `import { start } from 'sluice'`. Start an engine from a config object (in
// sluice's own format, as a YAML file would hold it) or a file, change it, add and remove faults,
// read its status and metrics, close it. The same engine `sluice run` starts, without signals,
// file watching or (unless asked) the admin API.
import type * as v from 'valibot'
import { addFault as addFaultTo, removeFault as removeFaultFrom } from '../admin/faults.ts'
import { type FaultSpec, faultDocument } from '../config/faults.ts'
import type { httpAppSchema } from '../config/http.ts'
import { loadConfigFile } from '../config/load.ts'
import { normalizeConfigObject, parseAdmin } from '../config/normalize.ts'
import type { nativeSchema, tcpAppSchema } from '../config/schema.ts'
import type { tunnelAppSchema } from '../config/tunnel.ts'
import type { Config, LogLevel } from '../config/types.ts'
import type { ReloadResult } from '../engine/control.ts'
import { ConfigError, type ConfigIssue, SluiceError } from '../errors.ts'
import { ephemeralPort } from '../net/listen.ts'
import { createLogger } from '../observe/logger.ts'
import { type Running, startEngine } from './engine.ts'

export type { ReloadResult } from '../engine/control.ts'
export { type ErrorCode, SluiceError } from '../errors.ts'

/** One app of a config document: a tcp, http or tunnel app, as a YAML file would hold it. */
export type AppDocument =
  | v.InferInput<typeof tcpAppSchema>
  | v.InferInput<typeof httpAppSchema>
  | v.InferInput<typeof tunnelAppSchema>

/**
 * A config document in sluice's own format. The type comes from the same schema definitions
 * `sluice schema` turns into JSON Schema (and the normaliser validates with), so the two agree.
 */
export type ConfigDocument = Omit<v.InferInput<typeof nativeSchema>, 'apps'> & { apps: AppDocument[] }

export interface StartOptions {
  /** The config, in sluice's format; `listen` ports given as 0 get a free port each (see `port()`). */
  config?: ConfigDocument
  /** Or a config file in any format sluice reads (YAML, JSON, TOML, Fly, tcpproxy, sidecar, ptproxy). */
  file?: string
  /** Log level, to stderr (default: warn). */
  log?: LogLevel
  /** Also serve the admin API (and the Toxiproxy API) on this address, e.g. '127.0.0.1:0'. Default: none. */
  admin?: string
  /** The admin API's bearer token (required for an address off loopback). */
  adminToken?: string
}

export interface Sluice {
  /** The port an app listens on (its `index`-th listen address): the real one when 0 was asked. */
  port(app: string, index?: number): number
  /** Every port each app listens on. */
  ports(): Record<string, number[]>
  /** The admin API's URL, when `admin` was given. */
  readonly adminUrl: string | null
  /** Apply another config (same format as `config`): the plan/apply path of a reload. Throws ConfigError. */
  apply(config: ConfigDocument): Promise<ReloadResult>
  /** Add a fault (a native fault document, as `POST /apps/{app}/faults` takes) to a running app. */
  addFault(app: string, fault: Record<string, unknown>): Promise<Record<string, unknown>>
  /** Remove a fault by name. */
  removeFault(app: string, name: string): Promise<void>
  /** What `GET /status` answers. */
  status(): ReturnType<Running['controller']['status']>
  /** The Prometheus exposition text `GET /metrics` answers. */
  metrics(): Promise<string>
  /** Stop: listeners close, open connections end (up to the drain timeout). */
  close(): Promise<void>
}

/**
 * Replace every listen port 0 with a free port, so the address is fixed before it is planned. A
 * port chosen for an app's listen entry is kept for the same entry in later configs (`apply()`
 * with the same document does not move its listeners).
 */
async function freePorts(doc: ConfigDocument, chosen: Map<string, number>): Promise<ConfigDocument> {
  const apps = Array.isArray(doc.apps) ? doc.apps : []
  // Ports the document names itself: a port chosen earlier is not reused if one of them took it.
  const named = new Set<number>()
  for (const app of apps)
    for (const l of ((app as { listen?: unknown }).listen as unknown[] | undefined) ?? []) {
      const port = typeof l === 'number' ? l : Number(/:(\d+)$/.exec(String(l))?.[1])
      if (port > 0) named.add(port)
    }
  const out = await Promise.all(
    apps.map(async (app) => {
      if (!app || typeof app !== 'object' || !Array.isArray((app as { listen?: unknown }).listen)) return app
      const name = String((app as { name?: unknown }).name)
      const listen = await Promise.all(
        ((app as { listen: unknown[] }).listen as unknown[]).map(async (l, i) => {
          const bare = l === 0 || l === '0'
          const m = typeof l === 'string' ? /^(.*):0$/.exec(l) : null
          if (!bare && !m) return l
          const key = `${name}\u0000${i}\u0000${String(l)}`
          let port = chosen.get(key)
          if (port === undefined || named.has(port)) {
            const host = bare ? '::' : m![1]!.replace(/^\[(.*)\]$/, '$1') || '::'
            port = await ephemeralPort(host === '*' ? '::' : host)
            chosen.set(key, port)
          }
          return bare ? port : `${m![1]}:${port}`
        }),
      )
      return { ...(app as object), listen }
    }),
  )
  return { ...doc, apps: out as AppDocument[] }
}

async function configOf(doc: ConfigDocument, chosen: Map<string, number>): Promise<Config> {
  return normalizeConfigObject({ admin: false, ...(await freePorts(doc, chosen)) })
}

/** Start sluice in this process. Throws a SluiceError (ConfigError naming each field) when it cannot. */
export async function start(options: StartOptions): Promise<Sluice> {
  if (!options.config === !options.file)
    throw new SluiceError('ERR_USAGE', 'start() takes either config or file')
  const chosen = new Map<string, number>()
  const config = options.file ? loadConfigFile(options.file).config : await configOf(options.config!, chosen)
  let adminSpec: Config['admin'] = null
  if (options.admin !== undefined) {
    const issues: ConfigIssue[] = []
    const spec = parseAdmin(options.admin, options.adminToken ?? null, 'admin', issues)
    if (!spec) throw new ConfigError('ERR_CONFIG_INVALID', '<start options>', issues)
    adminSpec = spec.port === 0 ? { ...spec, port: await ephemeralPort(spec.host) } : spec
  }
  const level = options.log ?? 'warn'
  // Kept over every config applied later: the log level and the admin address are the caller's.
  const overrides = (c: Config): Config => ({ ...c, log: { ...c.log, level }, admin: adminSpec })
  const log = createLogger({ level, format: 'json' })
  const running = await startEngine({ config }, { file: options.file ?? null, overrides, log })
  const { controller, admin } = running
  /** Each app's bound ports, in the order of its listen entries. */
  const ports = (): Record<string, number[]> => {
    const out: Record<string, number[]> = {}
    for (const app of controller.config?.apps ?? []) {
      const bound = app.listen.flatMap((l) => {
        const listener = controller.supervisor.listeners.get(l.key)
        return listener ? [listener.port] : []
      })
      if (bound.length) out[app.name] = bound
    }
    return out
  }
  return {
    port(app, index = 0) {
      const p = ports()[app]?.[index]
      if (p === undefined)
        throw new SluiceError('ERR_NOT_FOUND', `app "${app}" has no listen address ${index}`)
      return p
    },
    ports,
    get adminUrl() {
      return admin.address ? `http://${admin.address}` : null
    },
    async apply(doc) {
      return controller.applyConfig(await configOf(doc, chosen))
    },
    async addFault(app, fault) {
      const f: FaultSpec = await addFaultTo(controller, app, fault)
      return faultDocument(f)
    },
    removeFault: (app, name) => removeFaultFrom(controller, app, name),
    status: () => controller.status(),
    metrics: () => controller.metrics.scrape(),
    close: () => running.stop(),
  }
}
