// The Toxiproxy-compatible API: /proxies, /proxies/{proxy}/toxics, /populate, /reset, /version,
// with Toxiproxy's status codes, JSON shapes, default toxic names and messages, so its clients work
// unchanged. Proxies are apps of the engine; toxics are faults. Config apps show up as proxies too,
// and take toxics; their listen and upstream belong to the config file.
import { joinHostPort, type ListenAddress, parseListen, parseTarget } from '../config/address.ts'
import type { FaultDirection, FaultSpec } from '../config/faults.ts'
import type { AppSpec, Config, TcpAppSpec } from '../config/types.ts'
import { maxDuration } from '../config/units.ts'
import type { Controller } from '../engine/control.ts'
import { ConfigError, SluiceError } from '../errors.ts'
import { ephemeralPort } from '../net/listen.ts'
import { findApp, setFaults } from './faults.ts'

/** Toxiproxy sees tcp apps only: an http app is not a proxy. */
function findProxy(config: Config, name: string, what: string): TcpAppSpec {
  const app = findApp(config, name, what)
  if (app.kind !== 'tcp') throw new SluiceError('ERR_NOT_FOUND', `${what} not found`)
  return app
}

import { json, noContent, type Router } from './http.ts'

/** The Toxiproxy API version this API follows (build metadata says it is sluice). */
export const TOXIPROXY_API_VERSION = '2.12.0'

const bad = (message: string) => new SluiceError('ERR_BAD_REQUEST', message)

/** A body's `enabled`: omitted or null keeps `fallback` (Go's decoder leaves the field as it was). */
function enabledOf(value: unknown, fallback: boolean, where = ''): boolean {
  if (value === undefined || value === null) return fallback
  if (typeof value !== 'boolean') throw bad(`bad request body: enabled${where} must be true or false`)
  return value
}
const missing = (field: string) => bad(`missing required field: ${field}`)

type Toxic = {
  name: string
  type: string
  stream: string
  toxicity: number
  attributes: Record<string, unknown>
}

/** Toxic types that are aliases of a native fault type (the node client lists `down`). */
const aliases = new Map<string, string>()
const aliasKey = (app: string, name: string) => `${app}\u0000${name}`

function streamOf(f: FaultSpec): string {
  return f.direction === 'to-upstream' ? 'upstream' : f.direction === 'to-client' ? 'downstream' : 'both'
}

/** A toxic's stream as a direction; case does not matter (Toxiproxy's ParseDirection lower-cases). */
function directionOf(stream: string): FaultDirection | null {
  const s = stream.toLowerCase()
  if (s === 'upstream') return 'to-upstream'
  if (s === 'downstream') return 'to-client'
  return null
}

/** A toxic's `toxicity`: omitted or null keeps `fallback` (Go's decoder leaves the field as it was). */
function toxicityOf(value: unknown, fallback: number): number {
  if (value === undefined || value === null) return fallback
  if (typeof value !== 'number' || !(value >= 0 && value <= 1))
    throw bad('bad request body: toxicity must be a number between 0 and 1')
  return value
}

/** A toxic's `attributes`: an object, or omitted or null (none given). */
function attributesOf(value: unknown): Record<string, unknown> {
  if (value === undefined || value === null) return {}
  if (typeof value !== 'object' || Array.isArray(value))
    throw bad('bad request body: attributes must be an object')
  return value as Record<string, unknown>
}

/** A fault as a Toxiproxy toxic. */
export function toxicOf(app: string, f: FaultSpec): Toxic {
  const t: Toxic = {
    name: f.name,
    type: aliases.get(aliasKey(app, f.name)) ?? f.type,
    stream: streamOf(f),
    toxicity: f.probability,
    attributes: {},
  }
  switch (f.type) {
    case 'latency':
      t.attributes =
        f.distribution === 'fixed' && f.mode === 'per-chunk'
          ? { latency: f.latency, jitter: f.jitter }
          : {
              latency: f.latency,
              jitter: f.jitter,
              distribution: f.distribution,
              stddev: f.stddev,
              min: f.min,
              max: f.max,
              shape: f.shape,
              scale: f.scale,
              mode: f.mode,
            }
      break
    case 'bandwidth':
      t.attributes = { rate: f.rate / 1000 }
      break
    case 'slow_close':
      t.attributes = { delay: f.delay }
      break
    case 'timeout':
    case 'reset_peer':
      t.attributes = { timeout: f.timeout }
      break
    case 'slicer':
      t.attributes = {
        average_size: f.averageSize,
        size_variation: f.sizeVariation,
        delay: Math.round(f.delay * 1000),
      }
      break
    case 'limit_data':
      t.attributes = { bytes: f.bytes }
      break
    case 'jitter':
      t.attributes = {
        amplitude: f.amplitude,
        frequency: f.frequency,
        ...(f.perSecond !== null ? { per_second: f.perSecond } : {}),
      }
      break
    case 'packet_loss':
      t.attributes = {
        rate: f.rate,
        correlation: f.correlation,
        retransmit: f.retransmit,
        max_retransmit: f.maxRetransmit,
      }
      break
    case 'reset':
      t.attributes = { rate: f.rate }
      break
    case 'blackhole':
    case 'refuse':
    case 'close':
      break
  }
  return t
}

function attr(
  attrs: Record<string, unknown>,
  key: string,
  def: number,
  max = Number.POSITIVE_INFINITY,
): number {
  const v = attrs[key]
  if (v === undefined || v === null) return def
  if (typeof v !== 'number' || !Number.isFinite(v) || v < 0 || v > max) {
    throw new SluiceError(
      'ERR_FAULT_INVALID',
      `bad request body: attribute ${key} must be a number${max < Number.POSITIVE_INFINITY ? ` between 0 and ${max}` : ' ≥ 0'}`,
    )
  }
  return v
}

/** A time attribute in milliseconds: at most what a timer waits (a longer one would fire after 1 ms). */
function ms(attrs: Record<string, unknown>, key: string, def: number): number {
  return attr(attrs, key, def, maxDuration)
}

/**
 * The attributes each toxic type takes. Toxiproxy ignores any other key, so a misspelt one (latncy)
 * silently does nothing; sluice refuses it, naming the key and the ones the type takes.
 */
const toxicAttributes: Record<string, readonly string[]> = {
  latency: ['latency', 'jitter', 'distribution', 'stddev', 'min', 'max', 'shape', 'scale', 'mode'],
  bandwidth: ['rate'],
  slow_close: ['delay'],
  timeout: ['timeout'],
  reset_peer: ['timeout'],
  slicer: ['average_size', 'size_variation', 'delay'],
  limit_data: ['bytes'],
  jitter: ['amplitude', 'frequency', 'per_second'],
  packet_loss: ['rate', 'correlation', 'retransmit', 'max_retransmit'],
  reset: ['rate'],
  blackhole: [],
  refuse: [],
  down: [],
  close: [],
}

/** Attributes a toxic must be given: without them it would do nothing at all. */
const requiredAttributes: Record<string, readonly string[]> = { packet_loss: ['rate'] }

/** Refuse unknown and missing attributes of a toxic type (ERR_FAULT_INVALID, HTTP 400). */
function checkAttributes(type: string, attrs: Record<string, unknown>): void {
  const known = toxicAttributes[type]
  if (!known) throw bad('invalid toxic type')
  for (const key of Object.keys(attrs)) {
    if (!known.includes(key)) {
      const takes = known.length ? `takes: ${known.join(', ')}` : 'takes none'
      throw new SluiceError(
        'ERR_FAULT_INVALID',
        `bad request body: unknown attribute ${key} (${type} ${takes})`,
      )
    }
  }
  for (const key of requiredAttributes[type] ?? []) {
    if (attrs[key] === undefined || attrs[key] === null)
      throw new SluiceError('ERR_FAULT_INVALID', `bad request body: attribute ${key} is required for ${type}`)
  }
}

/** A toxic (type, attributes) as a fault; Toxiproxy's units (ms, KB/s, µs) turned into sluice's. */
function faultOf(
  name: string,
  type: string,
  direction: FaultDirection,
  toxicity: number,
  attrs: Record<string, unknown>,
): FaultSpec {
  checkAttributes(type, attrs)
  const base = { name, direction, probability: toxicity, schedule: null }
  switch (type) {
    case 'latency':
      return {
        ...base,
        type: 'latency',
        distribution:
          (['fixed', 'uniform', 'normal', 'pareto', 'pareto-normal'] as const).find(
            (d) => d === attrs.distribution,
          ) ?? 'fixed',
        latency: ms(attrs, 'latency', 0),
        jitter: ms(attrs, 'jitter', 0),
        stddev: ms(attrs, 'stddev', 0),
        min: ms(attrs, 'min', 0),
        max: ms(attrs, 'max', ms(attrs, 'min', 0)),
        shape: attr(attrs, 'shape', 2),
        scale: ms(attrs, 'scale', 1),
        mode: attrs.mode === 'once' ? 'once' : 'per-chunk',
      }
    case 'bandwidth':
      // Toxiproxy reads rate 0 as "no limit".
      return { ...base, type: 'bandwidth', rate: attr(attrs, 'rate', 0) * 1000 }
    case 'slow_close':
      return { ...base, type: 'slow_close', delay: ms(attrs, 'delay', 0) }
    case 'timeout':
      return { ...base, type: 'timeout', timeout: ms(attrs, 'timeout', 0) }
    case 'reset_peer':
      return { ...base, type: 'reset_peer', timeout: ms(attrs, 'timeout', 0) }
    case 'slicer':
      return {
        ...base,
        type: 'slicer',
        averageSize: Math.max(1, attr(attrs, 'average_size', 1)),
        sizeVariation: attr(attrs, 'size_variation', 0),
        // Microseconds in Toxiproxy.
        delay: attr(attrs, 'delay', 0, maxDuration * 1000) / 1000,
      }
    case 'limit_data':
      return { ...base, type: 'limit_data', bytes: attr(attrs, 'bytes', 0) }
    case 'jitter':
      return {
        ...base,
        type: 'jitter',
        amplitude: ms(attrs, 'amplitude', 20),
        frequency: attr(attrs, 'frequency', 1),
        perSecond: attrs.per_second == null ? null : attr(attrs, 'per_second', 0),
      }
    case 'packet_loss':
      return {
        ...base,
        type: 'packet_loss',
        rate: attr(attrs, 'rate', 0, 1),
        correlation: attr(attrs, 'correlation', 0, 1),
        retransmit: Math.max(1, ms(attrs, 'retransmit', 200)),
        maxRetransmit: Math.max(1, ms(attrs, 'max_retransmit', 3000)),
      }
    case 'reset':
      return { ...base, type: 'reset', rate: attr(attrs, 'rate', 1, 1) }
    case 'blackhole':
      return { ...base, type: 'blackhole' }
    case 'refuse':
    case 'down':
      return { ...base, type: 'refuse' }
    case 'close':
      return { ...base, type: 'close' }
    default:
      throw bad('invalid toxic type')
  }
}

/** The address a listener really has ("127.0.0.1:34567", "[::]:8080"). */
function listenOf(c: Controller, app: AppSpec): string {
  const addr = app.listen[0]
  if (!addr) return ''
  const port = c.supervisor.listeners.get(addr.key)?.port ?? addr.port
  return joinHostPort(addr.host ?? '::', port)
}

function proxyOf(c: Controller, app: TcpAppSpec) {
  return {
    name: app.name,
    listen: listenOf(c, app),
    upstream: app.targets[0]?.key ?? '',
    enabled: app.enabled,
    toxics: app.faults.map((f) => toxicOf(app.name, f)),
  }
}

/** An app created through the Toxiproxy API: Toxiproxy's behaviour (no target: accept then close). */
function apiApp(
  name: string,
  listen: ListenAddress,
  upstream: string,
  enabled: boolean,
  faults: FaultSpec[],
): AppSpec {
  const t = parseTarget(upstream)
  if (typeof t === 'string') throw bad(`bad request body: upstream: ${t}`)
  const key = joinHostPort(t.host, t.port)
  return {
    kind: 'tcp',
    name,
    listen: [listen],
    targets: [{ host: t.host, port: t.port, weight: 1, key, tls: null, starttls: null, faults: [] }],
    strategy: 'round-robin',
    connectTimeout: 10_000,
    connectBudget: 10_000,
    maxAttempts: 0,
    idleTimeout: 0,
    keepAlive: false,
    noDelay: true,
    maxConnections: 0,
    health: null,
    passive: null,
    faults,
    onNoTarget: 'close',
    enabled,
    drainTimeout: 0,
    origin: 'api',
    postgresClientSsl: 'pass',
  }
}

/** Parse a Toxiproxy listen address; port 0 becomes a free port now, so the address stays fixed. */
async function listenFor(text: unknown): Promise<ListenAddress> {
  const raw = typeof text === 'string' && text ? text : '127.0.0.1:0'
  const parsed = parseListen(raw, true)
  if (typeof parsed === 'string') throw new SluiceError('ERR_LISTEN', `listen tcp: address ${raw}: ${parsed}`)
  if (parsed.port !== 0) return parsed
  const host = parsed.host ?? '::'
  const port = await ephemeralPort(host)
  const fixed = parseListen(`${host.includes(':') ? `[${host}]` : host}:${port}`)
  return fixed as ListenAddress
}

/** A listen address another app already uses is a bind error in Toxiproxy's terms (500). */
async function binding<T>(p: Promise<T>): Promise<T> {
  try {
    return await p
  } catch (err) {
    if (err instanceof ConfigError && err.issues.some((i) => i.code === 'ERR_LISTEN')) {
      throw new SluiceError('ERR_LISTEN', `listen tcp: ${err.issues.map((i) => i.message).join('; ')}`, {
        cause: err,
      })
    }
    throw err
  }
}

function requireObject(body: unknown): Record<string, unknown> {
  if (!body || typeof body !== 'object' || Array.isArray(body))
    throw bad('bad request body: expected a JSON object')
  return body as Record<string, unknown>
}

function configOwned(app: AppSpec): SluiceError {
  return new SluiceError(
    'ERR_CONFLICT',
    `proxy ${app.name} is defined in the config file; change its listen and upstream there`,
  )
}

export function registerToxiproxyRoutes(router: Router, c: Controller): void {
  const t = { toxiproxy: true }
  const config = (): Config => c.config!

  router.add(
    'GET',
    '/version',
    ({ res }) => {
      res.setHeader('content-type', 'application/json;charset=utf-8')
      res.end(`{"version": "${TOXIPROXY_API_VERSION}"}\n`)
    },
    t,
  )

  router.add(
    'GET',
    '/proxies',
    ({ res }) => {
      const out: Record<string, unknown> = {}
      for (const app of config().apps) if (app.kind === 'tcp') out[app.name] = proxyOf(c, app)
      json(res, 200, out)
    },
    t,
  )

  router.add(
    'POST',
    '/proxies',
    async ({ res, json: body }) => {
      const b = requireObject(await body())
      const name = typeof b.name === 'string' ? b.name : ''
      const upstream = typeof b.upstream === 'string' ? b.upstream : ''
      if (!name) throw missing('name')
      if (!upstream) throw missing('upstream')
      if (config().apps.some((a) => a.name === name))
        throw new SluiceError('ERR_CONFLICT', 'proxy already exists')
      const listen = await listenFor(b.listen)
      const enabled = enabledOf(b.enabled, true)
      await binding(
        c.change((overlay, current) => {
          if (current.apps.some((a) => a.name === name))
            throw new SluiceError('ERR_CONFLICT', 'proxy already exists')
          overlay.apps.set(name, apiApp(name, listen, upstream, enabled, []))
        }),
      )
      json(res, 201, proxyOf(c, findProxy(config(), name, 'proxy')))
    },
    t,
  )

  router.add(
    'POST',
    '/populate',
    async ({ res, json: body }) => {
      const list = await body()
      if (!Array.isArray(list)) throw bad('bad request body: expected a JSON array of proxies')
      // First check every entry, so a missing field creates nothing.
      list.forEach((entry, i) => {
        const e = requireObject(entry)
        if (typeof e.name !== 'string' || !e.name) throw missing(`name at proxy ${i + 1}`)
        if (typeof e.upstream !== 'string' || !e.upstream) throw missing(`upstream at proxy ${i + 1}`)
        enabledOf(e.enabled, true, ` at proxy ${i + 1}`)
      })
      const done: unknown[] = []
      for (const entry of list as Record<string, unknown>[]) {
        const name = entry.name as string
        const upstream = entry.upstream as string
        const enabled = enabledOf(entry.enabled, true)
        try {
          const existing = config().apps.find((a) => a.name === name) as TcpAppSpec | undefined
          if (existing && existing.origin === 'config') throw configOwned(existing)
          const requested = typeof entry.listen === 'string' ? parseListen(entry.listen, true) : null
          const same =
            existing &&
            requested !== null &&
            typeof requested !== 'string' &&
            requested.key === existing.listen[0]?.key &&
            existing.targets[0]?.key === upstream.replace(/^localhost:/, '127.0.0.1:')
          if (!same) {
            const listen = await listenFor(entry.listen)
            await binding(
              c.change((overlay) => {
                overlay.apps.set(name, apiApp(name, listen, upstream, enabled, []))
              }),
            )
          }
          done.push(proxyOf(c, findProxy(config(), name, 'proxy')))
        } catch (err) {
          const status =
            (err as SluiceError).code === 'ERR_BAD_REQUEST'
              ? 400
              : (err as SluiceError).code === 'ERR_CONFLICT'
                ? 409
                : 500
          json(res, status, { error: (err as Error).message, status, proxies: done })
          return
        }
      }
      json(res, 201, { proxies: done })
    },
    t,
  )

  router.add(
    'POST',
    '/reset',
    async ({ res }) => {
      await c.change((overlay) => {
        overlay.faults.clear()
        overlay.disabled.clear()
        for (const [name, app] of overlay.apps) overlay.apps.set(name, { ...app, faults: [], enabled: true })
      })
      aliases.clear()
      noContent(res)
    },
    t,
  )

  router.add(
    'GET',
    '/proxies/:proxy',
    ({ res, params }) => json(res, 200, proxyOf(c, findProxy(config(), params.proxy!, 'proxy'))),
    t,
  )

  const updateProxy = async ({ res, params, json: body }: Parameters<Parameters<Router['add']>[2]>[0]) => {
    const b = requireObject((await body()) ?? {})
    const app = findProxy(config(), params.proxy!, 'proxy')
    const wantsListen = typeof b.listen === 'string' && b.listen !== listenOf(c, app)
    const wantsUpstream = typeof b.upstream === 'string' && b.upstream !== app.targets[0]?.key
    if (app.origin === 'config' && (wantsListen || wantsUpstream)) throw configOwned(app)
    const listen = wantsListen ? await listenFor(b.listen) : null
    await binding(
      c.change((overlay, current) => {
        const a = findProxy(current, app.name, 'proxy')
        const enabled = enabledOf(b.enabled, a.enabled)
        if (a.origin === 'config') {
          if (enabled) overlay.disabled.delete(a.name)
          else overlay.disabled.add(a.name)
          return
        }
        const spec = apiApp(
          a.name,
          listen ?? a.listen[0]!,
          wantsUpstream ? (b.upstream as string) : a.targets[0]!.key,
          enabled,
          a.faults,
        )
        overlay.apps.set(a.name, spec)
      }),
    )
    json(res, 200, proxyOf(c, findProxy(config(), app.name, 'proxy')))
  }
  router.add('PATCH', '/proxies/:proxy', updateProxy, t)
  router.add('POST', '/proxies/:proxy', updateProxy, t)

  router.add(
    'DELETE',
    '/proxies/:proxy',
    async ({ res, params }) => {
      const app = findProxy(config(), params.proxy!, 'proxy')
      if (app.origin === 'config') {
        throw new SluiceError(
          'ERR_CONFLICT',
          `proxy ${app.name} is defined in the config file; remove it there`,
        )
      }
      await c.change((overlay) => {
        overlay.apps.delete(app.name)
      })
      for (const k of [...aliases.keys()]) if (k.startsWith(`${app.name}\u0000`)) aliases.delete(k)
      noContent(res)
    },
    t,
  )

  router.add(
    'GET',
    '/proxies/:proxy/toxics',
    ({ res, params }) => {
      const app = findProxy(config(), params.proxy!, 'proxy')
      json(
        res,
        200,
        app.faults.map((f) => toxicOf(app.name, f)),
      )
    },
    t,
  )

  router.add(
    'POST',
    '/proxies/:proxy/toxics',
    async ({ res, params, json: body }) => {
      const b = requireObject(await body())
      findProxy(config(), params.proxy!, 'proxy')
      const stream = b.stream === undefined || b.stream === null ? 'downstream' : String(b.stream)
      const direction = directionOf(stream)
      if (!direction) throw bad('stream was invalid, can be either upstream or downstream')
      const type = typeof b.type === 'string' ? b.type : ''
      // Toxiproxy names it with the stream as sent (`latency_UpStream`).
      const name = typeof b.name === 'string' && b.name ? b.name : `${type}_${stream}`
      const toxicity = toxicityOf(b.toxicity, 1)
      const attrs = attributesOf(b.attributes)
      const fault = faultOf(name, type, direction, toxicity, attrs)
      const { value } = await c.change((overlay, current) => {
        const app = findProxy(current, params.proxy!, 'proxy')
        if (app.faults.some((f) => f.name === name))
          throw new SluiceError('ERR_CONFLICT', 'toxic already exists')
        setFaults(overlay, app, [...app.faults, fault])
        return app.name
      })
      if (type === 'down') aliases.set(aliasKey(value, name), 'down')
      json(res, 200, toxicOf(value, fault))
    },
    t,
  )

  router.add(
    'GET',
    '/proxies/:proxy/toxics/:toxic',
    ({ res, params }) => {
      const app = findProxy(config(), params.proxy!, 'proxy')
      const f = app.faults.find((x) => x.name === params.toxic)
      if (!f) throw new SluiceError('ERR_NOT_FOUND', 'toxic not found')
      json(res, 200, toxicOf(app.name, f))
    },
    t,
  )

  const updateToxic = async ({ res, params, json: body }: Parameters<Parameters<Router['add']>[2]>[0]) => {
    const b = requireObject((await body()) ?? {})
    const { value } = await c.change((overlay, current) => {
      const app = findProxy(current, params.proxy!, 'proxy')
      const i = app.faults.findIndex((x) => x.name === params.toxic)
      if (i < 0) throw new SluiceError('ERR_NOT_FOUND', 'toxic not found')
      const old = app.faults[i]!
      const before = toxicOf(app.name, old)
      // A null attribute keeps its value, as Go decoding into the existing toxic does.
      const given = Object.entries(attributesOf(b.attributes)).filter(([, v]) => v !== null)
      const attrs = { ...before.attributes, ...Object.fromEntries(given) }
      const toxicity = toxicityOf(b.toxicity, old.probability)
      const fault = faultOf(old.name, before.type, old.direction, toxicity, attrs)
      const faults = [...app.faults]
      faults[i] = fault
      setFaults(overlay, app, faults)
      return { app: app.name, fault }
    })
    json(res, 200, toxicOf(value.app, value.fault))
  }
  router.add('PATCH', '/proxies/:proxy/toxics/:toxic', updateToxic, t)
  router.add('POST', '/proxies/:proxy/toxics/:toxic', updateToxic, t)

  router.add(
    'DELETE',
    '/proxies/:proxy/toxics/:toxic',
    async ({ res, params }) => {
      await c.change((overlay, current) => {
        const app = findProxy(current, params.proxy!, 'proxy')
        if (!app.faults.some((f) => f.name === params.toxic))
          throw new SluiceError('ERR_NOT_FOUND', 'toxic not found')
        setFaults(
          overlay,
          app,
          app.faults.filter((f) => f.name !== params.toxic),
        )
      })
      aliases.delete(aliasKey(params.proxy!, params.toxic!))
      noContent(res)
    },
    t,
  )
}
