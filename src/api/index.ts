// sluice as a library: `import { start } from 'sluice'`. Start an engine from a config object (in
// sluice's own format, as a YAML file would hold it) or a file, change it, add and remove faults,
// read its status and metrics, close it. The same engine `sluice run` starts, without signals,
// file watching or (unless asked) the admin API.
import type * as v from 'valibot'
import { addFault as addFaultTo, removeFault as removeFaultFrom } from '../admin/faults.ts'
import type { httpAppSchema } from '../config/http.ts'
import { loadConfigFile } from '../config/load.ts'
import { normalizeConfigObject, parseAdmin } from '../config/normalize.ts'
import type { nativeSchema, tcpAppSchema } from '../config/schema.ts'
import type { tunnelAppSchema } from '../config/tunnel.ts'
import type { Config, LogLevel } from '../config/types.ts'
import type { ReloadResult } from '../engine/control.ts'
import { ConfigError, type ConfigIssue, SluiceError } from '../errors.ts'
import { type FaultSpec, faultDocument } from '../faults/model.ts'
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

/** Replace every listen port 0 with a free port, so the address is fixed before it is planned. */
async function freePorts(doc: ConfigDocument): Promise<ConfigDocument> {
  const apps = Array.isArray(doc.apps) ? doc.apps : []
  const out = await Promise.all(
    apps.map(async (app) => {
      if (!app || typeof app !== 'object' || !Array.isArray((app as { listen?: unknown }).listen)) return app
      const listen = await Promise.all(
        ((app as { listen: unknown[] }).listen as unknown[]).map(async (l) => {
          if (l === 0 || l === '0') return ephemeralPort('::')
          if (typeof l !== 'string') return l
          const m = /^(.*):0$/.exec(l)
          if (!m) return l
          const host = m[1]!.replace(/^\[(.*)\]$/, '$1') || '::'
          return `${m[1]}:${await ephemeralPort(host === '*' ? '::' : host)}`
        }),
      )
      return { ...(app as object), listen }
    }),
  )
  return { ...doc, apps: out as AppDocument[] }
}

async function configOf(doc: ConfigDocument): Promise<Config> {
  return normalizeConfigObject({ admin: false, ...(await freePorts(doc)) })
}

/** Start sluice in this process. Throws a SluiceError (ConfigError naming each field) when it cannot. */
export async function start(options: StartOptions): Promise<Sluice> {
  if (!options.config === !options.file)
    throw new SluiceError('ERR_USAGE', 'start() takes either config or file')
  const config = options.file ? loadConfigFile(options.file).config : await configOf(options.config!)
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
  const ports = (): Record<string, number[]> => {
    const out: Record<string, number[]> = {}
    for (const l of controller.supervisor.listeners.values()) (out[l.app] ??= []).push(l.port)
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
      return controller.applyConfig(await configOf(doc))
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
