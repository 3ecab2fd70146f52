// The http app kind in sluice's own format: schema (field paths and messages for errors, JSON
// Schema for editors) and normalisation to HttpAppSpec, with destinations parsed and header names
// and values checked (a CR or LF in a configured value would let a config inject headers).
import * as v from 'valibot'
import type { ConfigIssue } from '../errors.ts'
import { joinHostPort, parseListenList } from './address.ts'
import { CONNECT_TIMEOUT } from './defaults.ts'
import { parseAt, parseFaults, tlsSpec } from './faultlist.ts'
import { faultKindProblem } from './faults.ts'
import { duration, faultList, int, listenEntry, optionalDuration, str, strict, typeName } from './schema.ts'
import { hasControl } from './text.ts'
import type { Destination, HeaderEdit, HeaderMatch, HttpAppSpec, HttpRuleSpec, TlsSpec } from './types.ts'
import { parseSize } from './units.ts'

const TOKEN = /^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$/

/** Parse `http://host[:port][/prefix]` (or https); a string explains what is wrong. */
export function parseDestination(value: unknown, tls: TlsSpec | null = null): Destination | string {
  if (typeof value !== 'string') return `must be a URL such as http://127.0.0.1:8080, not ${typeName(value)}`
  let u: URL
  try {
    u = new URL(value)
  } catch {
    return `${JSON.stringify(value)} is not a URL (expected http://host:port or https://host:port)`
  }
  const scheme = u.protocol.slice(0, -1)
  if (scheme !== 'http' && scheme !== 'https') return `scheme ${JSON.stringify(scheme)} is not http or https`
  if (u.username || u.password) return 'must not carry a user name or password'
  if (u.search || u.hash) return 'must not have a query or a fragment'
  if (!u.hostname) return 'needs a host'
  const host = u.hostname.startsWith('[') ? u.hostname.slice(1, -1) : u.hostname
  const port = u.port ? Number(u.port) : scheme === 'https' ? 443 : 80
  const pathPrefix = u.pathname === '/' ? '' : u.pathname.replace(/\/+$/, '')
  const defaultPort = scheme === 'https' ? 443 : 80
  const hostPart = host.includes(':') ? `[${host}]` : host
  return {
    url: value,
    scheme,
    host,
    port,
    authority: port === defaultPort ? hostPart : `${hostPart}:${port}`,
    pathPrefix,
    key: `${scheme}://${joinHostPort(host, port)}`,
    tls: scheme === 'https' ? (tls ?? { servername: null, caFile: null, insecure: false }) : null,
  }
}

const destinationUrl = (description: string) =>
  v.pipe(
    str(description),
    v.check(
      (x) => typeof parseDestination(x) !== 'string',
      (i) => String(parseDestination(i.input)),
    ),
  )

const scalar = v.union(
  [v.string(), v.number(), v.boolean()],
  (i) => `must be a string, number or boolean, not ${typeName(i.input)}`,
)

const headerName = v.pipe(
  v.string(),
  v.check((x) => TOKEN.test(x), 'is not a valid header name'),
)

const headerValues = (description: string) =>
  v.pipe(
    v.record(headerName, scalar, (i) => `must be a mapping of header: value, not ${typeName(i.input)}`),
    v.check(
      (o) => Object.values(o).every((x) => !hasControl(String(x))),
      'header values must not contain control characters (CR, LF, NUL)',
    ),
    v.description(description),
  )

export const headerEditsSchema = strict({
  set: v.optional(headerValues('Headers set (replacing any the client sent), e.g. {Host: example.com}')),
  add: v.optional(headerValues('Headers added after those the client sent')),
  remove: v.optional(
    v.pipe(
      v.array(headerName, (i) => `must be a list of header names, not ${typeName(i.input)}`),
      v.description('Headers removed'),
    ),
  ),
})

const matchValue = v.union(
  [
    scalar,
    strict({
      exact: v.optional(v.string('must be a string')),
      prefix: v.optional(v.string('must be a string')),
      regex: v.optional(
        v.pipe(
          v.string('must be a string'),
          v.check((x) => {
            try {
              new RegExp(x)
              return true
            } catch {
              return false
            }
          }, 'is not a valid regular expression'),
        ),
      ),
      present: v.optional(v.literal(true, 'must be true')),
      absent: v.optional(v.literal(true, 'must be true')),
    }),
  ],
  (i) => `must be a value (exact match) or {exact|prefix|regex|present|absent}, not ${typeName(i.input)}`,
)

const ruleSchema = strict({
  name: v.optional(
    v.pipe(
      str('Name in logs and metrics (default rule1, rule2, …)'),
      v.regex(/^[A-Za-z0-9][A-Za-z0-9._-]{0,62}$/, 'must be 1-63 letters, digits, ".", "_" or "-"'),
    ),
  ),
  match: v.pipe(
    v.record(
      headerName,
      matchValue,
      (i) => `must be a mapping of header: condition, not ${typeName(i.input)}`,
    ),
    v.check((o) => Object.keys(o).length > 0, 'needs at least one header'),
    v.description('Header conditions, all of which must hold (names are case-insensitive)'),
  ),
  destination: v.optional(destinationUrl('Where matching requests go (default: the app destination)')),
  headers: v.optional(headerEditsSchema),
  timeout: v.optional(duration('Upstream timeout for this rule')),
  faults: v.optional(faultList('HTTP faults for requests this rule matches (latency, http_error)')),
})

export const httpAppSchema = strict({
  name: v.pipe(
    str('Unique app name, used in logs, metrics and the admin API'),
    v.regex(/^[A-Za-z0-9][A-Za-z0-9._ -]{0,62}$/, 'must be 1-63 letters, digits, ".", "_", "-" or spaces'),
  ),
  kind: v.pipe(v.literal('http'), v.description('The service: http (dispatch requests by header)')),
  listen: v.pipe(
    v.array(listenEntry, (i) => `must be a list of ports or addresses, not ${typeName(i.input)}`),
    v.minLength(1, 'needs at least one address'),
  ),
  destination: destinationUrl('Default destination: http://host:port[/prefix] or https://…'),
  rules: v.optional(v.array(ruleSchema, (i) => `must be a list of rules, not ${typeName(i.input)}`)),
  headers: v.optional(headerEditsSchema),
  preserve_host: v.optional(
    v.pipe(v.boolean(), v.description("Send the client's Host instead of the destination's (default false)")),
  ),
  abort_on_close: v.optional(
    v.pipe(
      v.boolean('must be true or false'),
      v.description(
        'A client that closes (FIN) while its request is in flight aborts the upstream exchange (default true); false answers half-closed clients',
      ),
    ),
  ),
  forwarded: v.optional(
    strict({
      x_forwarded_for: v.optional(v.boolean('must be true or false')),
      x_forwarded_proto: v.optional(v.boolean('must be true or false')),
      x_forwarded_host: v.optional(v.boolean('must be true or false')),
      forwarded: v.optional(v.boolean('must be true or false')),
    }),
  ),
  timeouts: v.optional(
    strict({
      connect: v.optional(duration('Time allowed to connect to a destination (502 after)')),
      upstream: v.optional(duration('Longest silence from a destination while a response is due (504)')),
      header: v.optional(duration("Time allowed for a client's request head (408)")),
      idle: v.optional(optionalDuration('Keep-alive client connections idle this long are closed')),
      body: v.optional(duration('Longest pause inside a request body (408)')),
    }),
  ),
  limits: v.optional(
    strict({
      max_header_size: v.optional(v.union([v.number(), v.string()], 'must be a size such as 16KiB')),
      max_headers: v.optional(int(1, 10_000, 'Most header fields in a request')),
      request_buffer: v.optional(v.union([v.number(), v.string()], 'must be a size such as 64KiB')),
    }),
  ),
  pool: v.optional(
    strict({
      max_connections: v.optional(int(0, 100_000, 'Most connections to one destination (0: no cap)')),
      max_idle: v.optional(int(0, 100_000, 'Most idle keep-alive connections kept per destination')),
      idle_timeout: v.optional(optionalDuration('Idle upstream connections are closed after this')),
    }),
  ),
  tls: v.optional(
    strict({
      ca_file: v.optional(str('PEM file of extra CAs for https destinations')),
      insecure: v.optional(v.boolean('must be true or false')),
      servername: v.optional(str('SNI and certificate name for https destinations (default: the host)')),
    }),
  ),
  max_connections: v.optional(int(0, 10_000_000, 'Concurrent client connections cap; 0 = none')),
  faults: v.optional(faultList('HTTP faults for every request (latency, http_error)')),
  enabled: v.optional(v.pipe(v.boolean(), v.description('false: keep the app but listen nowhere'))),
})

export type HttpAppOutput = v.InferOutput<typeof httpAppSchema>

export const httpDefaults = {
  connectTimeout: CONNECT_TIMEOUT,
  upstreamTimeout: 60_000,
  headerTimeout: 10_000,
  idleTimeout: 60_000,
  bodyTimeout: 30_000,
  maxHeaderSize: 32 * 1024,
  maxHeaders: 100,
  requestBuffer: 64 * 1024,
  pool: { maxConnections: 256, maxIdle: 64, idleTimeout: 30_000 },
}

/** Header edits in order: remove, then set, then add. */
function edits(raw: v.InferOutput<typeof headerEditsSchema> | undefined): HeaderEdit[] {
  if (!raw) return []
  const out: HeaderEdit[] = []
  for (const name of raw.remove ?? []) out.push({ op: 'remove', name, value: '' })
  for (const [name, value] of Object.entries(raw.set ?? {}))
    out.push({ op: 'set', name, value: String(value) })
  for (const [name, value] of Object.entries(raw.add ?? {}))
    out.push({ op: 'add', name, value: String(value) })
  return out
}

function matches(raw: Record<string, unknown>): HeaderMatch[] {
  return Object.entries(raw).map(([name, cond]) => {
    const header = name.toLowerCase()
    if (typeof cond !== 'object' || cond === null) return { header, op: 'exact', value: String(cond) }
    const c = cond as Record<string, unknown>
    if (c.present) return { header, op: 'present', value: '' }
    if (c.absent) return { header, op: 'absent', value: '' }
    if (typeof c.prefix === 'string') return { header, op: 'prefix', value: c.prefix }
    if (typeof c.regex === 'string') return { header, op: 'regex', value: c.regex }
    return { header, op: 'exact', value: String(c.exact ?? '') }
  })
}

function size(raw: unknown, fallback: number, path: string, issues: ConfigIssue[]): number {
  if (raw === undefined) return fallback
  const n = parseSize(raw)
  if (typeof n === 'string') {
    issues.push({ path, message: n })
    return fallback
  }
  return n
}

/** Faults on an http app or rule: only the types that act on requests. */
function httpFaults(
  list: unknown[] | undefined,
  path: string,
  issues: ConfigIssue[],
  runDuration: number | null,
) {
  const faults = parseFaults(list, path, issues, runDuration)
  faults.forEach((f, i) => {
    const problem = faultKindProblem(f.type, 'http')
    if (problem) issues.push({ path: `${path}[${i}].type`, message: problem })
  })
  return faults
}

/** Validate and normalise one http app (`raw` as written); null with issues when invalid. */
export function httpApp(
  raw: unknown,
  at: string,
  issues: ConfigIssue[],
  ctx: { file: string | null; runDuration: number | null },
): HttpAppSpec | null {
  const a = parseAt(httpAppSchema, raw, at, issues)
  if (!a) return null
  const before = issues.length
  const listen = parseListenList(a.listen, at, issues)
  const tls = tlsSpec(a.tls, ctx.file)
  const destination = parseDestination(a.destination, tls) as Destination
  const names = new Set<string>()
  const rules: HttpRuleSpec[] = (a.rules ?? []).map((r, i) => {
    const name = r.name ?? `rule${i + 1}`
    if (names.has(name) || name === 'default')
      issues.push({
        path: `${at}.rules[${i}].name`,
        message: `"${name}" is already used; rule names must be unique`,
      })
    names.add(name)
    return {
      name,
      match: matches(r.match),
      destination: r.destination ? (parseDestination(r.destination, tls) as Destination) : null,
      headers: edits(r.headers),
      timeout: r.timeout ?? null,
      faults: httpFaults(r.faults, `${at}.rules[${i}].faults`, issues, ctx.runDuration),
    }
  })
  const limits = a.limits ?? {}
  const t = a.timeouts ?? {}
  const spec: HttpAppSpec = {
    kind: 'http',
    name: a.name,
    listen,
    destination,
    rules,
    headers: edits(a.headers),
    preserveHost: a.preserve_host ?? false,
    abortOnClose: a.abort_on_close ?? true,
    forwarded: {
      xForwardedFor: a.forwarded?.x_forwarded_for ?? true,
      xForwardedProto: a.forwarded?.x_forwarded_proto ?? false,
      xForwardedHost: a.forwarded?.x_forwarded_host ?? false,
      forwarded: a.forwarded?.forwarded ?? false,
    },
    connectTimeout: t.connect ?? httpDefaults.connectTimeout,
    upstreamTimeout: t.upstream ?? httpDefaults.upstreamTimeout,
    headerTimeout: t.header ?? httpDefaults.headerTimeout,
    idleTimeout: t.idle ?? httpDefaults.idleTimeout,
    bodyTimeout: t.body ?? httpDefaults.bodyTimeout,
    maxHeaderSize: size(
      limits.max_header_size,
      httpDefaults.maxHeaderSize,
      `${at}.limits.max_header_size`,
      issues,
    ),
    maxHeaders: limits.max_headers ?? httpDefaults.maxHeaders,
    requestBuffer: size(
      limits.request_buffer,
      httpDefaults.requestBuffer,
      `${at}.limits.request_buffer`,
      issues,
    ),
    pool: {
      maxConnections: a.pool?.max_connections ?? httpDefaults.pool.maxConnections,
      maxIdle: a.pool?.max_idle ?? httpDefaults.pool.maxIdle,
      idleTimeout: a.pool?.idle_timeout ?? httpDefaults.pool.idleTimeout,
    },
    maxConnections: a.max_connections ?? 0,
    faults: httpFaults(a.faults, `${at}.faults`, issues, ctx.runDuration),
    enabled: a.enabled ?? true,
    drainTimeout: null,
    origin: 'config',
  }
  if (spec.maxHeaderSize < 1024)
    issues.push({ path: `${at}.limits.max_header_size`, message: 'must be at least 1KiB' })
  return issues.length > before ? null : spec
}
