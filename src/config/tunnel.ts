// The tunnel app kind (ptproxy's job): `mode: client` listens for plain HTTP/1.1 and carries each
// request over persistent, mutually authenticated HTTP/2 sessions to a `mode: server` instance,
// which sends it to its origin as plain HTTP/1.1. Schema (paths and messages for errors, JSON
// Schema for editors) and normalisation to TunnelAppSpec; certificate paths are relative to the file.
import { dirname, resolve } from 'node:path'
import * as v from 'valibot'
import type { ConfigIssue } from '../errors.ts'
import { parseListenList, parseTarget } from './address.ts'
import { parseAt } from './faultlist.ts'
import { duration, int, listenEntry, str, strict } from './schema.ts'
import type { TunnelAppSpec } from './types.ts'
import { parseSize } from './units.ts'

const size = (description: string) =>
  v.pipe(
    v.union([v.number(), v.string()], 'must be a size such as 16MiB'),
    v.check((x) => typeof parseSize(x) === 'number', 'must be a size such as 16MiB'),
    v.description(description),
  )

/** QUIC-only fields of ptproxy's [transport]: accepted, and reported at start as ignored. */
export const quicOnlyFields = {
  initial_rtt: 'TCP measures the RTT itself',
  initial_window: "TCP's initial congestion window is the kernel's (ip route … initcwnd)",
  send_window: "the TCP send buffer is the kernel's (net.ipv4.tcp_wmem)",
  socket_receive_buffer_size: 'Node does not set SO_RCVBUF on TCP sockets (net.ipv4.tcp_rmem)',
  socket_send_buffer_size: 'Node does not set SO_SNDBUF on TCP sockets (net.ipv4.tcp_wmem)',
  congestion_algorithm: "TCP's congestion control is the kernel's (net.ipv4.tcp_congestion_control)",
} as const

/**
 * ptproxy's [transport] fields with a TCP/HTTP/2 counterpart: the sluice field(s) each one sets when
 * that field is not given itself (numbers: milliseconds or bytes, as ptproxy writes them).
 */
export const quicMappedFields: Record<string, readonly string[]> = {
  max_idle_timeout: ['idle_timeout', 'connect_timeout'],
  keep_alive_interval: ['keepalive_interval'],
  max_concurrent_http_streams: ['max_concurrent_streams'],
  stream_receive_window: ['stream_window'],
  receive_window: ['session_window'],
}

/** sluice's transport fields; ptproxy's QUIC fields that map onto them are checked against these too. */
const transportEntries = {
  stream_window: v.optional(size('HTTP/2 flow-control window per stream (default 16MiB)')),
  session_window: v.optional(size('HTTP/2 flow-control window per session (default 32MiB)')),
  max_concurrent_streams: v.optional(int(1, 100_000, 'Requests at once per session (default 256)')),
  keepalive_interval: v.optional(duration('A PING every this long (default 2s)')),
  idle_timeout: v.optional(
    duration('A session whose PING gets no answer for this long is dropped (default 5s)'),
  ),
  connect_interval: v.optional(
    duration('Wait before a retry, doubled after each failed attempt up to 30s (default 1s)'),
  ),
  connect_timeout: v.optional(
    duration('Longest connection attempt, handshake and first exchange (default 5s)'),
  ),
  request_timeout: v.optional(duration('Longest wait for a response head through the tunnel (default 60s)')),
  quic: v.optional(v.record(v.string(), v.unknown())),
}

export const tunnelAppSchema = strict({
  name: v.pipe(
    str('Unique app name, used in logs, metrics and the admin API'),
    v.regex(/^[A-Za-z0-9][A-Za-z0-9._ -]{0,62}$/, 'must be 1-63 letters, digits, ".", "_", "-" or spaces'),
  ),
  kind: v.pipe(v.literal('tunnel'), v.description('The service: tunnel (HTTP/1.1 over mTLS HTTP/2)')),
  mode: v.pipe(
    v.picklist(['client', 'server'], 'must be client or server'),
    v.description('client: listens for HTTP/1.1 and opens the sessions; server: accepts sessions'),
  ),
  listen: v.pipe(
    v.array(listenEntry, (i) => `must be a list of ports or addresses, not ${typeof i.input}`),
    v.minLength(1, 'needs at least one address'),
    v.description('client: where HTTP/1.1 requests come in; server: where sessions come in (TLS)'),
  ),
  peer: v.optional(str('client: the server instance, host:port')),
  origin: v.optional(str('server: where requests go, host:port (plain HTTP/1.1)')),
  peer_hostname: str("The name the peer's certificate must carry"),
  tls: strict({
    ca: v.optional(str('PEM file of the CA(s) the peer must chain to (default: the system CAs)')),
    cert: str('PEM certificate shown to the peer'),
    key: str('PEM private key of the certificate'),
    skip_verify: v.optional(
      v.pipe(v.boolean('must be true or false'), v.description('Accept any peer (tests only)')),
    ),
  }),
  sessions: v.optional(int(1, 64, 'client: sessions kept open to the server (default 2)')),
  local_address: v.optional(str('client: local address the sessions are opened from')),
  add_forwarded: v.optional(v.boolean('must be true or false')),
  tcp_nodelay: v.optional(v.boolean('must be true or false')),
  wait_for_first_attempt: v.optional(v.boolean('must be true or false')),
  watchdog_factor: v.optional(
    v.pipe(
      v.number('must be a number'),
      v.minValue(1, 'must be at least 1'),
      v.description('WATCHDOG_USEC is divided by this'),
    ),
  ),
  timeouts: v.optional(
    strict({
      header: v.optional(
        duration(
          'client: time allowed for each request head from A, from its first byte (from the accept for the first; 408; default 10s)',
        ),
      ),
      idle: v.optional(
        duration("client: A's keep-alive connections idle this long are closed (default 60s)"),
      ),
    }),
  ),
  transport: v.optional(strict(transportEntries)),
  enabled: v.optional(v.boolean('must be true or false')),
})

export const tunnelDefaults = {
  sessions: 2,
  streamWindow: 16 * 1024 * 1024,
  sessionWindow: 32 * 1024 * 1024,
  maxConcurrentStreams: 256,
  keepaliveInterval: 2000,
  idleTimeout: 5000,
  connectInterval: 1000,
  connectTimeout: 5000,
  requestTimeout: 60_000,
  watchdogFactor: 1.5,
  headerTimeout: 10_000,
  clientIdleTimeout: 60_000,
}

/** Validate and normalise one tunnel app; null with issues when invalid. */
export function tunnelApp(
  raw: unknown,
  at: string,
  issues: ConfigIssue[],
  file: string | null,
): TunnelAppSpec | null {
  const a = parseAt(tunnelAppSchema, raw, at, issues)
  if (!a) return null
  const before = issues.length
  const listen = parseListenList(a.listen, at, issues)
  const hostPort = (field: 'peer' | 'origin') => {
    const value = a[field]
    if (value === undefined) return null
    const t = parseTarget(value)
    if (typeof t === 'string') {
      issues.push({ path: `${at}.${field}`, message: t })
      return null
    }
    return { host: t.host, port: t.port }
  }
  const peer = hostPort('peer')
  const origin = hostPort('origin')
  if (a.mode === 'client' && a.peer === undefined)
    issues.push({
      path: `${at}.peer`,
      message: 'a client needs the server instance to connect to (host:port)',
    })
  if (a.mode === 'server' && a.origin === undefined)
    issues.push({
      path: `${at}.origin`,
      message: 'a server needs the origin to send requests to (host:port)',
    })
  if (a.mode === 'client' && a.origin !== undefined)
    issues.push({
      path: `${at}.origin`,
      message: 'only a server sends to an origin; a client sends to its peer',
    })
  if (a.mode === 'server' && a.peer !== undefined)
    issues.push({ path: `${at}.peer`, message: 'only a client connects to a peer; a server listens' })
  const path = (p: string) => (file ? resolve(dirname(file), p) : resolve(p))
  const t: Record<string, unknown> & NonNullable<typeof a.transport> = { ...(a.transport ?? {}) }
  // ptproxy's QUIC transport fields: mapped onto their TCP/HTTP/2 counterparts, or ignored; each
  // one is reported at start.
  const ignored: Record<string, string> = {}
  const mapped: Record<string, string> = {}
  for (const [k, value] of Object.entries(t.quic ?? {})) {
    const why = (quicOnlyFields as Record<string, string>)[k]
    const targets = quicMappedFields[k]
    if (why !== undefined) {
      ignored[k] = `${JSON.stringify(value)} ignored: ${why}`
      continue
    }
    if (targets === undefined) {
      issues.push({
        path: `${at}.transport.quic.${k}`,
        message: `unknown QUIC field; known: ${[...Object.keys(quicMappedFields), ...Object.keys(quicOnlyFields)].join(', ')}`,
      })
      continue
    }
    if (typeof value !== 'number' || !Number.isInteger(value) || value < 0) {
      issues.push({
        path: `${at}.transport.quic.${k}`,
        message: 'must be a whole number (milliseconds or bytes)',
      })
      continue
    }
    const set: string[] = []
    for (const to of targets) {
      if (t[to] !== undefined) continue
      // The field it sets has the bounds it would have if written itself (a duration a timer can wait…).
      const entry = transportEntries[to as keyof typeof transportEntries]
      const r = v.safeParse(entry, to.endsWith('_window') ? Math.max(65_535, value) : value)
      if (!r.success) {
        issues.push({
          path: `${at}.transport.quic.${k}`,
          message: `${r.issues[0].message} (it sets transport.${to})`,
        })
        break
      }
      t[to] = r.output
      set.push(`transport.${to}`)
    }
    mapped[k] = set.length
      ? `${value} → ${set.join(' and ')}`
      : `${value} not used: ${targets.map((x) => `transport.${x}`).join(', ')} given`
  }
  const spec: TunnelAppSpec = {
    kind: 'tunnel',
    name: a.name,
    mode: a.mode,
    listen,
    peer,
    target: origin,
    peerHostname: a.peer_hostname,
    tls: {
      ca: a.tls.ca === undefined ? null : path(a.tls.ca),
      cert: path(a.tls.cert),
      key: path(a.tls.key),
      skipVerify: a.tls.skip_verify ?? false,
    },
    sessions: a.sessions ?? tunnelDefaults.sessions,
    localAddress: a.local_address ?? null,
    addForwarded: a.add_forwarded ?? false,
    noDelay: a.tcp_nodelay ?? true,
    waitForFirstAttempt: a.wait_for_first_attempt ?? true,
    watchdogFactor: a.watchdog_factor ?? tunnelDefaults.watchdogFactor,
    streamWindow:
      t.stream_window === undefined ? tunnelDefaults.streamWindow : (parseSize(t.stream_window) as number),
    sessionWindow:
      t.session_window === undefined ? tunnelDefaults.sessionWindow : (parseSize(t.session_window) as number),
    maxConcurrentStreams:
      (t.max_concurrent_streams as number | undefined) ?? tunnelDefaults.maxConcurrentStreams,
    keepaliveInterval: (t.keepalive_interval as number | undefined) ?? tunnelDefaults.keepaliveInterval,
    idleTimeout: (t.idle_timeout as number | undefined) ?? tunnelDefaults.idleTimeout,
    connectInterval: t.connect_interval ?? tunnelDefaults.connectInterval,
    connectTimeout: (t.connect_timeout as number | undefined) ?? tunnelDefaults.connectTimeout,
    requestTimeout: t.request_timeout ?? tunnelDefaults.requestTimeout,
    headerTimeout: a.timeouts?.header ?? tunnelDefaults.headerTimeout,
    clientIdleTimeout: a.timeouts?.idle ?? tunnelDefaults.clientIdleTimeout,
    ignored,
    mapped,
    quic: { ...(t.quic ?? {}) },
    enabled: a.enabled ?? true,
    maxConnections: 0,
    faults: [],
    drainTimeout: null,
    origin: 'config',
  }
  for (const [field, n] of [
    ['stream_window', spec.streamWindow],
    ['session_window', spec.sessionWindow],
  ] as const) {
    if (n < 65_535 || n > 2 ** 31 - 1)
      issues.push({ path: `${at}.transport.${field}`, message: 'must be between 64KiB and 2GiB' })
  }
  return issues.length > before ? null : spec
}
