// From a parsed document in sluice's own shape to a typed Config: validate, apply defaults,
// parse addresses, then check what spans fields (unique names, overlapping ports, admin token).
import { isIP } from 'node:net'
import * as v from 'valibot'
import { ConfigError, type ConfigIssue } from '../errors.ts'
import {
  joinHostPort,
  type ListenAddress,
  listenOverlaps,
  parseListen,
  parseListenList,
  parseTarget,
} from './address.ts'
import { CONNECT_TIMEOUT, DRAIN_TIMEOUT, dnsDefaults } from './defaults.ts'
import { issuePath, parseFaults, tlsSpec } from './faultlist.ts'
import { faultKindProblem } from './faults.ts'
import { httpApp } from './http.ts'
import { nativeSchema, type TcpAppOutput, type TuningOutput, tcpAppSchema } from './schema.ts'
import { tunnelApp } from './tunnel.ts'
import type { AdminSpec, AppSpec, Config, FormatName, TargetSpec, TcpAppSpec } from './types.ts'

export { issuePath, parseFaults } from './faultlist.ts'

export const defaultAdmin = '127.0.0.1:8474'

/** Built-in values for every app field a config may leave out. */
export const appDefaults = {
  strategy: 'round-robin',
  connect_timeout: CONNECT_TIMEOUT,
  connect_budget: 10_000,
  max_attempts: 0,
  idle_timeout: 0,
  // On: a long-lived idle connection through a proxy is otherwise dropped silently by NATs and
  // firewalls on the way, and a dead peer is never noticed. `off` saves the setsockopt calls.
  keepalive: 60_000,
  nodelay: true,
  max_connections: 0,
} as const

export const healthDefaults = { interval: 2000, timeout: 1000, rise: 2, fall: 3 }
export const passiveDefaults = { failures: 3, cooldown: 10_000 }

function issuesOf(result: { issues?: readonly v.BaseIssue<unknown>[] }, prefix = ''): ConfigIssue[] {
  return (result.issues ?? []).map((i) => ({ path: issuePath(i.path, prefix), message: i.message }))
}

export interface Normalized {
  config: Config | null
  issues: ConfigIssue[]
}

/** Validate and normalize a document in sluice's own format. */
export function fromNative(
  doc: unknown,
  source: { file: string | null; format: FormatName },
  runDuration: number | null = null,
): Normalized {
  if (doc === null || typeof doc !== 'object' || Array.isArray(doc)) {
    return { config: null, issues: [{ path: '', message: 'must be a mapping with an "apps" list' }] }
  }
  const top = v.safeParse(nativeSchema, doc, { abortEarly: false })
  if (!top.success) return { config: null, issues: issuesOf(top) }
  const root = top.output
  const issues: ConfigIssue[] = []
  const defaults: TuningOutput = root.defaults ?? {}

  const apps: AppSpec[] = []
  root.apps.forEach((raw, i) => {
    const at = `apps[${i}]`
    if (raw === null || typeof raw !== 'object' || Array.isArray(raw)) {
      issues.push({ path: at, message: 'must be a mapping with name, listen and targets' })
      return
    }
    const kind = (raw as { kind?: unknown }).kind ?? 'tcp'
    if (kind === 'http') {
      const app = httpApp(raw, at, issues, { file: source.file, runDuration })
      if (app) apps.push(app)
      return
    }
    if (kind === 'tunnel') {
      const app = tunnelApp(raw, at, issues, source.file)
      if (app) apps.push(app)
      return
    }
    if (kind !== 'tcp') {
      issues.push({
        path: `${at}.kind`,
        message: `unknown kind ${JSON.stringify(kind)}; known kinds: tcp, http, tunnel`,
      })
      return
    }
    const parsed = v.safeParse(tcpAppSchema, raw, { abortEarly: false })
    if (!parsed.success) {
      issues.push(...issuesOf(parsed, at))
      return
    }
    const app = tcpApp(parsed.output, defaults, at, issues, { file: source.file, runDuration })
    if (app) apps.push(app)
  })

  const admin = adminSpec(root.admin, issues)
  const config: Config = {
    apps,
    admin,
    log: { level: root.log?.level ?? 'info', format: root.log?.format ?? 'auto' },
    drainTimeout: root.drain_timeout ?? DRAIN_TIMEOUT,
    dns: {
      ttl: root.dns?.ttl ?? dnsDefaults.ttl,
      minTtl: root.dns?.min_ttl ?? dnsDefaults.minTtl,
      maxTtl: root.dns?.max_ttl ?? dnsDefaults.maxTtl,
      negativeTtl: root.dns?.negative_ttl ?? dnsDefaults.negativeTtl,
      timeout: root.dns?.timeout ?? dnsDefaults.timeout,
    },
    source,
    runDuration,
  }
  if (issues.length === 0) issues.push(...crossCheck(config))
  return issues.length ? { config: null, issues } : { config, issues }
}

/** Faults of a tcp app or of one of its targets: an http_error there has no request to answer. */
function tcpFaults(
  raw: readonly unknown[] | undefined,
  at: string,
  issues: ConfigIssue[],
  runDuration: number | null,
) {
  const faults = parseFaults(raw, at, issues, runDuration)
  faults.forEach((f, i) => {
    const problem = faultKindProblem(f.type, 'tcp')
    if (problem) issues.push({ path: `${at}[${i}].type`, message: problem })
  })
  return faults
}

function tcpApp(
  raw: TcpAppOutput,
  defaults: TuningOutput,
  at: string,
  issues: ConfigIssue[],
  ctx: { file: string | null; runDuration: number | null },
): TcpAppSpec | null {
  const before = issues.length
  const listen = parseListenList(raw.listen, at, issues)
  const targets: TargetSpec[] = []
  raw.targets.forEach((entry, j) => {
    const address = typeof entry === 'string' ? entry : entry.address
    const weight = typeof entry === 'string' ? 1 : entry.weight
    const path = typeof entry === 'string' ? `${at}.targets[${j}]` : `${at}.targets[${j}].address`
    const o = typeof entry === 'string' ? null : entry
    const faults = tcpFaults(o?.faults, `${at}.targets[${j}].faults`, issues, ctx.runDuration)
    const parsed = parseTarget(address)
    if (typeof parsed === 'string') {
      issues.push({ path, message: parsed })
      return
    }
    // A target listed twice is allowed (tcpproxy and Fly configs do it): it gets two rotation slots.
    const key = joinHostPort(parsed.host, parsed.port)
    targets.push({
      host: parsed.host,
      port: parsed.port,
      weight,
      key,
      tls: tlsSpec(o?.tls, ctx.file),
      starttls: o?.starttls ?? null,
      faults,
    })
  })
  const pick = <K extends keyof TuningOutput>(k: K) => raw[k] ?? defaults[k]
  const healthRaw = pick('health')
  const passiveRaw = pick('passive')
  const health = healthRaw
    ? {
        ...healthDefaults,
        ...healthRaw,
        send: healthRaw.send ?? null,
        expect: healthRaw.expect ?? null,
      }
    : null
  if (health && health.timeout > health.interval) {
    issues.push({ path: `${at}.health.timeout`, message: 'must not be longer than health.interval' })
  }
  const faults = tcpFaults(raw.faults, `${at}.faults`, issues, ctx.runDuration)
  if (issues.length > before) return null
  const keepalive = pick('keepalive') ?? appDefaults.keepalive
  return {
    kind: 'tcp',
    name: raw.name,
    listen,
    targets,
    strategy: pick('strategy') ?? appDefaults.strategy,
    connectTimeout: pick('connect_timeout') ?? appDefaults.connect_timeout,
    connectBudget: pick('connect_budget') ?? appDefaults.connect_budget,
    maxAttempts: pick('max_attempts') ?? appDefaults.max_attempts,
    idleTimeout: pick('idle_timeout') ?? appDefaults.idle_timeout,
    keepAlive: keepalive === 0 ? false : keepalive,
    noDelay: pick('nodelay') ?? appDefaults.nodelay,
    maxConnections: pick('max_connections') ?? appDefaults.max_connections,
    health,
    passive: passiveRaw === false ? null : { ...passiveDefaults, ...(passiveRaw ?? {}) },
    faults,
    onNoTarget: raw.on_no_target ?? 'reset',
    enabled: raw.enabled ?? true,
    drainTimeout: null,
    origin: 'config',
    postgresClientSsl: raw.postgres_client_ssl ?? 'pass',
  }
}

function adminSpec(raw: unknown, issues: ConfigIssue[]): AdminSpec | null {
  if (raw === false) return null
  let listen = defaultAdmin
  // The token may come from the environment, so it need not be written in the file.
  let token: string | null = process.env.SLUICE_ADMIN_TOKEN || null
  if (typeof raw === 'string') listen = raw
  else if (raw && typeof raw === 'object') {
    const o = raw as { listen: string; token?: string }
    listen = o.listen
    token = o.token ?? token
  }
  const path = typeof raw === 'object' && raw ? 'admin.listen' : 'admin'
  return parseAdmin(listen, token, path, issues)
}

/** Parse an admin address; a non-loopback address requires a token. */
export function parseAdmin(
  listen: string,
  token: string | null,
  path: string,
  issues: ConfigIssue[],
): AdminSpec | null {
  const parsed = parseListen(listen, true)
  if (typeof parsed === 'string') {
    issues.push({ path, message: parsed })
    return null
  }
  const host = parsed.host ?? '::'
  if (!token && !isLoopback(host)) {
    issues.push({
      path,
      message: `admin on ${parsed.key} is reachable off this machine: set admin.token (or SLUICE_ADMIN_TOKEN)`,
    })
    return null
  }
  return { host, port: parsed.port, token }
}

export function isLoopback(host: string): boolean {
  return host === '::1' || (isIP(host) === 4 && host.startsWith('127.'))
}

/** Checks across apps: unique names, no two listeners on one socket, admin apart from apps. */
export function crossCheck(config: Config): ConfigIssue[] {
  const issues: ConfigIssue[] = []
  const names = new Map<string, number>()
  const seen: { addr: ListenAddress; app: string; path: string }[] = []
  config.apps.forEach((app, i) => {
    const prev = names.get(app.name)
    if (prev !== undefined) {
      issues.push({ path: `apps[${i}].name`, message: `"${app.name}" is already the name of apps[${prev}]` })
    } else names.set(app.name, i)
    if (!app.enabled) return
    app.listen.forEach((addr, j) => {
      const path = `apps[${i}].listen[${j}]`
      const clash = seen.find((s) => listenOverlaps(s.addr, addr))
      if (clash) {
        const same = clash.app === app.name
        issues.push({
          path,
          code: 'ERR_LISTEN',
          message: same
            ? `port ${addr.port} (${addr.key}) is listed twice in app "${app.name}" (also ${clash.path})`
            : `port ${addr.port} (${addr.key}) is used by two apps: "${clash.app}" (${clash.path}) and "${app.name}" (${path})`,
        })
      }
      seen.push({ addr, app: app.name, path })
    })
  })
  if (config.admin && config.admin.port !== 0) {
    const adminAddr = { host: config.admin.host, port: config.admin.port, key: '' }
    const clash = seen.find((s) => listenOverlaps(s.addr, adminAddr))
    if (clash) {
      issues.push({
        path: 'admin',
        code: 'ERR_LISTEN',
        message: `the admin port ${config.admin.port} is also used by app "${clash.app}" (${clash.path})`,
      })
    }
  }
  return issues
}

/** A config given as an object in sluice's own shape (the demo, tests); throws ConfigError. */
export function normalizeConfigObject(
  doc: unknown,
  file = '<inline config>',
  runDuration: number | null = null,
): Config {
  const { config, issues } = fromNative(doc, { file: null, format: 'sluice' }, runDuration)
  if (!config) throw new ConfigError('ERR_CONFIG_INVALID', file, issues)
  return config
}
