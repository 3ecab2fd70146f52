// The one typed Config every input format produces. Plain data only (no functions, no sockets):
// plans built from it can be sent to worker processes as JSON.

import type { ListenAddress } from './address.ts'
import type { FaultSpec } from './faults.ts'

export type { ListenAddress } from './address.ts'

export const strategies = [
  'round-robin',
  'weighted-round-robin',
  'least-connections',
  'random',
  'hash',
] as const
export type Strategy = (typeof strategies)[number]

export const formatNames = ['sluice', 'fly', 'tcpproxy', 'sidecar', 'ptproxy'] as const
/** Which input format a config came from. */
export type FormatName = (typeof formatNames)[number]

/** TLS towards a target: the client side stays clear text. */
export interface TlsSpec {
  /** SNI and certificate name; null: the host when it is a name, none for an IP. */
  servername: string | null
  /** Extra CA file (PEM) trusted besides the system CAs. */
  caFile: string | null
  /** Accept any certificate (opt-in, for tests and self-signed dev servers). */
  insecure: boolean
}

/** One target of an app. `key` (host:port) identifies it across reloads. */
export interface TargetSpec {
  host: string
  port: number
  weight: number
  key: string
  tls: TlsSpec | null
  /** A plaintext exchange before TLS: PostgreSQL's SSLRequest. */
  starttls: 'postgres' | null
  faults: FaultSpec[]
}

/** Active health checks: TCP connect, optionally send bytes and expect a reply containing `expect`. */
export interface HealthSpec {
  interval: number
  timeout: number
  rise: number
  fall: number
  send: string | null
  expect: string | null
}

/** Passive ejection: after `failures` consecutive connect failures, skip the target for `cooldown`. */
export interface PassiveSpec {
  failures: number
  cooldown: number
}

/** A TCP app: listeners balanced over targets. Durations are milliseconds; 0 disables a timeout. */
export interface TcpAppSpec {
  kind: 'tcp'
  name: string
  listen: ListenAddress[]
  targets: TargetSpec[]
  strategy: Strategy
  connectTimeout: number
  connectBudget: number
  maxAttempts: number
  idleTimeout: number
  keepAlive: number | false
  noDelay: boolean
  maxConnections: number
  health: HealthSpec | null
  passive: PassiveSpec | null
  faults: FaultSpec[]
  /** When no target connects: reset the client (RST), or accept and close it (Toxiproxy's way). */
  onNoTarget: 'reset' | 'close'
  /** A disabled app keeps its faults and state but listens nowhere (Toxiproxy's enabled:false). */
  enabled: boolean
  /** Drain deadline for this app's removed listeners; null: the config's drain_timeout. */
  drainTimeout: number | null
  /** Where the app came from: the config file, or created through an API. */
  origin: 'config' | 'api'
  /** PostgreSQL clients asking for SSL (SSLRequest, GSSENCRequest): pass the request on, or answer 'N' (psqls does TLS itself). */
  postgresClientSsl: 'pass' | 'refuse'
}

/** Where an http app sends a request: scheme, host, port and an optional path prefix. */
export interface Destination {
  /** As written in the config, for logs, errors and metrics labels. */
  url: string
  scheme: 'http' | 'https'
  host: string
  port: number
  /** The Host value sent by default: host, plus the port when it is not the scheme's default. */
  authority: string
  /** Put in front of every request path ('' for none, never ending in '/'). */
  pathPrefix: string
  /** scheme://host:port: one upstream connection pool per key. */
  key: string
  tls: TlsSpec | null
}

export const matchOps = ['exact', 'prefix', 'regex', 'present', 'absent'] as const
export type MatchOp = (typeof matchOps)[number]

/** One condition on a request header (names compare case-insensitively, values case-sensitively). */
export interface HeaderMatch {
  /** Lower-cased header name. */
  header: string
  op: MatchOp
  value: string
}

/** One change to the request headers: set (replace all), add (append), remove. */
export interface HeaderEdit {
  op: 'set' | 'add' | 'remove'
  name: string
  value: string
}

/** A dispatch rule: when every condition matches, send to `destination` (null: the app's default) with these edits. */
export interface HttpRuleSpec {
  name: string
  match: HeaderMatch[]
  destination: Destination | null
  headers: HeaderEdit[]
  /** Upstream timeout for this rule (ms); null: the app's. */
  timeout: number | null
  faults: FaultSpec[]
}

/** An http app: parse each request, pick a rule by header, forward to its destination. Durations in ms, 0 = off. */
export interface HttpAppSpec {
  kind: 'http'
  name: string
  listen: ListenAddress[]
  destination: Destination
  rules: HttpRuleSpec[]
  /** Edits applied to every request, before the rule's. */
  headers: HeaderEdit[]
  /** Keep the client's Host instead of the destination's authority. */
  preserveHost: boolean
  /** A client FIN while a request is in flight aborts the upstream exchange (else: answer, then close). */
  abortOnClose: boolean
  forwarded: { xForwardedFor: boolean; xForwardedProto: boolean; xForwardedHost: boolean; forwarded: boolean }
  connectTimeout: number
  /** From the request sent to the response head received: past it, 504. */
  upstreamTimeout: number
  /** A client's request head must arrive within this. */
  headerTimeout: number
  /** A keep-alive client connection with no request in flight is closed after this. */
  idleTimeout: number
  /** A request body that stops arriving for this long ends the connection (408). */
  bodyTimeout: number
  maxHeaderSize: number
  maxHeaders: number
  /** Request bodies with a Content-Length up to this size are read whole before the upstream is contacted. */
  requestBuffer: number
  pool: { maxConnections: number; maxIdle: number; idleTimeout: number }
  maxConnections: number
  faults: FaultSpec[]
  enabled: boolean
  drainTimeout: number | null
  origin: 'config' | 'api'
}

/** A tunnel app (ptproxy's job). Durations in ms, windows in bytes. */
export interface TunnelAppSpec {
  kind: 'tunnel'
  name: string
  mode: 'client' | 'server'
  /** client: HTTP/1.1 listeners; server: the TLS listeners sessions come to. */
  listen: ListenAddress[]
  /** client: the server instance. */
  peer: { host: string; port: number } | null
  /** server: the origin requests go to (plain HTTP/1.1). */
  target: { host: string; port: number } | null
  peerHostname: string
  tls: { ca: string | null; cert: string; key: string; skipVerify: boolean }
  sessions: number
  localAddress: string | null
  addForwarded: boolean
  noDelay: boolean
  waitForFirstAttempt: boolean
  watchdogFactor: number
  streamWindow: number
  sessionWindow: number
  maxConcurrentStreams: number
  keepaliveInterval: number
  idleTimeout: number
  connectInterval: number
  connectTimeout: number
  requestTimeout: number
  /** client: each request head from A must be complete within this of its first byte (408). */
  headerTimeout: number
  /** client: A's keep-alive connections idle this long are closed. */
  clientIdleTimeout: number
  /** QUIC-only settings that have no TCP equivalent: field → why it is ignored (logged at start). */
  ignored: Record<string, string>
  /** QUIC settings with a TCP/HTTP/2 counterpart: field → what it set (logged at start). */
  mapped: Record<string, string>
  /** Those settings as written (kept so that `sluice check` prints them back). */
  quic: Record<string, unknown>
  enabled: boolean
  maxConnections: number
  faults: FaultSpec[]
  drainTimeout: number | null
  origin: 'config' | 'api'
}

export type AppSpec = TcpAppSpec | HttpAppSpec | TunnelAppSpec

export interface AdminSpec {
  host: string
  port: number
  token: string | null
}

export interface DnsSpec {
  /** TTL for answers that carry none (hosts file, getaddrinfo). */
  ttl: number
  minTtl: number
  maxTtl: number
  /** How long a failed lookup is remembered before asking again. */
  negativeTtl: number
  timeout: number
}

export type LogLevel = 'trace' | 'debug' | 'info' | 'warn' | 'error' | 'fatal' | 'silent'
export type LogFormat = 'auto' | 'json' | 'pretty'

export interface Config {
  apps: AppSpec[]
  admin: AdminSpec | null
  log: { level: LogLevel; format: LogFormat }
  /** How long connections of removed listeners, and all connections at shutdown, may finish. */
  drainTimeout: number
  dns: DnsSpec
  source: { file: string | null; format: FormatName }
  /** How long this run lasts (`sluice proxy --duration`), for schedules written in percent; null: unbounded. */
  runDuration: number | null
}
