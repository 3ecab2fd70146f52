// A Config written back in sluice's own format with every default made explicit: what
// `sluice check` prints, and a way to convert Fly / tcpproxy files to sluice's format.

import { joinHostPort } from './address.ts'
import { faultDocument } from './faults.ts'
import { tunnelDefaults } from './tunnel.ts'
import type { AppSpec, Config, HeaderEdit, HttpAppSpec, TargetSpec, TunnelAppSpec } from './types.ts'
import { formatDuration as d } from './units.ts'

function target(t: TargetSpec): string | Record<string, unknown> {
  if (t.weight === 1 && !t.tls && !t.starttls && t.faults.length === 0) return t.key
  const out: Record<string, unknown> = { address: t.key, weight: t.weight }
  if (t.tls) {
    const tls: Record<string, unknown> = {}
    if (t.tls.servername) tls.servername = t.tls.servername
    if (t.tls.caFile) tls.ca_file = t.tls.caFile
    if (t.tls.insecure) tls.insecure = true
    out.tls = Object.keys(tls).length ? tls : true
  }
  if (t.starttls) out.starttls = t.starttls
  if (t.faults.length) out.faults = t.faults.map(faultDocument)
  return out
}

function edits(list: HeaderEdit[]): Record<string, unknown> | undefined {
  if (!list.length) return undefined
  const out: { set?: Record<string, string>; add?: Record<string, string>; remove?: string[] } = {}
  for (const e of list) {
    if (e.op === 'remove') (out.remove ??= []).push(e.name)
    else (out[e.op] ??= {})[e.name] = e.value
  }
  return out
}

function httpApp(a: HttpAppSpec): Record<string, unknown> {
  return {
    name: a.name,
    kind: 'http',
    listen: a.listen.map((l) => (l.host === null ? l.port : l.key)),
    ...(a.enabled ? {} : { enabled: false }),
    destination: a.destination.url,
    rules: a.rules.map((r) => ({
      name: r.name,
      match: Object.fromEntries(
        r.match.map((m) => [
          m.header,
          m.op === 'exact' ? m.value : { [m.op]: m.op === 'present' || m.op === 'absent' ? true : m.value },
        ]),
      ),
      ...(r.destination ? { destination: r.destination.url } : {}),
      ...(r.headers.length ? { headers: edits(r.headers) } : {}),
      ...(r.timeout !== null ? { timeout: d(r.timeout) } : {}),
      ...(r.faults.length ? { faults: r.faults.map(faultDocument) } : {}),
    })),
    ...(a.headers.length ? { headers: edits(a.headers) } : {}),
    preserve_host: a.preserveHost,
    abort_on_close: a.abortOnClose,
    forwarded: {
      x_forwarded_for: a.forwarded.xForwardedFor,
      x_forwarded_proto: a.forwarded.xForwardedProto,
      x_forwarded_host: a.forwarded.xForwardedHost,
      forwarded: a.forwarded.forwarded,
    },
    timeouts: {
      connect: d(a.connectTimeout),
      upstream: d(a.upstreamTimeout),
      header: d(a.headerTimeout),
      idle: a.idleTimeout ? d(a.idleTimeout) : 'off',
      body: d(a.bodyTimeout),
    },
    limits: { max_header_size: a.maxHeaderSize, max_headers: a.maxHeaders, request_buffer: a.requestBuffer },
    pool: {
      max_connections: a.pool.maxConnections,
      max_idle: a.pool.maxIdle,
      idle_timeout: a.pool.idleTimeout ? d(a.pool.idleTimeout) : 'off',
    },
    max_connections: a.maxConnections,
    ...(a.faults.length ? { faults: a.faults.map(faultDocument) } : {}),
  }
}

function tunnelApp(a: TunnelAppSpec): Record<string, unknown> {
  const hp = (x: { host: string; port: number } | null) => (x ? joinHostPort(x.host, x.port) : undefined)
  return {
    name: a.name,
    kind: 'tunnel',
    mode: a.mode,
    listen: a.listen.map((l) => (l.host === null ? l.port : l.key)),
    ...(a.enabled ? {} : { enabled: false }),
    ...(a.peer ? { peer: hp(a.peer) } : {}),
    // Sessions are a client's; a server's is kept when the file set it, as for wait_for_first_attempt.
    ...(a.mode === 'client' || a.sessions !== tunnelDefaults.sessions ? { sessions: a.sessions } : {}),
    ...(a.target ? { origin: hp(a.target) } : {}),
    peer_hostname: a.peerHostname,
    tls: {
      ...(a.tls.ca ? { ca: a.tls.ca } : {}),
      cert: a.tls.cert,
      key: a.tls.key,
      ...(a.tls.skipVerify ? { skip_verify: true } : {}),
    },
    ...(a.localAddress ? { local_address: a.localAddress } : {}),
    add_forwarded: a.addForwarded,
    tcp_nodelay: a.noDelay,
    // A server does not wait (it has no first attempt); a false there is kept, as the file said.
    ...(a.mode === 'client' || !a.waitForFirstAttempt
      ? { wait_for_first_attempt: a.waitForFirstAttempt }
      : {}),
    watchdog_factor: a.watchdogFactor,
    ...(a.mode === 'client'
      ? { timeouts: { header: d(a.headerTimeout), idle: d(a.clientIdleTimeout) } }
      : {}),
    transport: {
      stream_window: a.streamWindow,
      session_window: a.sessionWindow,
      max_concurrent_streams: a.maxConcurrentStreams,
      keepalive_interval: d(a.keepaliveInterval),
      idle_timeout: d(a.idleTimeout),
      connect_interval: d(a.connectInterval),
      connect_timeout: d(a.connectTimeout),
      request_timeout: d(a.requestTimeout),
      // The mapped QUIC fields are explicit above; the ignored ones are kept as written.
      ...(Object.keys(a.ignored).length
        ? { quic: Object.fromEntries(Object.keys(a.ignored).map((k) => [k, a.quic[k]])) }
        : {}),
    },
  }
}

function app(a: AppSpec): Record<string, unknown> {
  if (a.kind === 'http') return httpApp(a)
  if (a.kind === 'tunnel') return tunnelApp(a)
  return {
    name: a.name,
    kind: a.kind,
    listen: a.listen.map((l) => (l.host === null ? l.port : l.key)),
    enabled: a.enabled,
    targets: a.targets.map(target),
    strategy: a.strategy,
    connect_timeout: d(a.connectTimeout),
    connect_budget: d(a.connectBudget),
    max_attempts: a.maxAttempts,
    idle_timeout: a.idleTimeout ? d(a.idleTimeout) : 'off',
    keepalive: a.keepAlive ? d(a.keepAlive) : 'off',
    nodelay: a.noDelay,
    max_connections: a.maxConnections,
    health: a.health
      ? {
          interval: d(a.health.interval),
          timeout: d(a.health.timeout),
          rise: a.health.rise,
          fall: a.health.fall,
          ...(a.health.send !== null ? { send: a.health.send } : {}),
          ...(a.health.expect !== null ? { expect: a.health.expect } : {}),
        }
      : false,
    passive: a.passive ? { failures: a.passive.failures, cooldown: d(a.passive.cooldown) } : false,
    on_no_target: a.onNoTarget,
    postgres_client_ssl: a.postgresClientSsl,
    ...(a.faults.length ? { faults: a.faults.map(faultDocument) } : {}),
  }
}

/** The config as a document in sluice's own format (admin tokens masked). */
export function toDocument(c: Config): Record<string, unknown> {
  const admin = c.admin
    ? c.admin.token
      ? {
          listen: `${c.admin.host.includes(':') ? `[${c.admin.host}]` : c.admin.host}:${c.admin.port}`,
          token: '***',
        }
      : `${c.admin.host.includes(':') ? `[${c.admin.host}]` : c.admin.host}:${c.admin.port}`
    : false
  return {
    admin,
    log: c.log,
    drain_timeout: d(c.drainTimeout),
    dns: {
      ttl: d(c.dns.ttl),
      min_ttl: d(c.dns.minTtl),
      max_ttl: d(c.dns.maxTtl),
      negative_ttl: d(c.dns.negativeTtl),
      timeout: d(c.dns.timeout),
    },
    apps: c.apps.map(app),
  }
}
