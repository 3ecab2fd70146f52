// The one typed Config every input format produces. Plain data only (no functions, no sockets):
// plans built from it can be sent to worker processes as JSON.
import type { ListenAddress } from './address.ts'

export type { ListenAddress } from './address.ts'

export const strategies = [
  'round-robin',
  'weighted-round-robin',
  'least-connections',
  'random',
  'hash',
] as const
export type Strategy = (typeof strategies)[number]

export const formatNames = ['sluice', 'fly', 'tcpproxy'] as const
/** Which input format a config came from. */
export type FormatName = (typeof formatNames)[number]

/** One target of an app. `key` (host:port) identifies it across reloads. */
export interface TargetSpec {
  host: string
  port: number
  weight: number
  key: string
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
}

export type AppSpec = TcpAppSpec

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
}
