// A Config written back in sluice's own format with every default made explicit: what
// `sluice check` prints, and a way to convert Fly / tcpproxy files to sluice's format.
import type { AppSpec, Config } from './types.ts'
import { formatDuration as d } from './units.ts'

function app(a: AppSpec): Record<string, unknown> {
  return {
    name: a.name,
    kind: a.kind,
    listen: a.listen.map((l) => (l.host === null ? l.port : l.key)),
    targets: a.targets.map((t) => (t.weight === 1 ? t.key : { address: t.key, weight: t.weight })),
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
