// Every Prometheus metric sluice exports, named in one place. Prefix `sluice_`, HAProxy-like units,
// labels app / listener / target. The data path resolves labelled children once per connection
// (or once per listener and target), never per chunk.
import { Counter, collectDefaultMetrics, Gauge, Histogram, Registry } from 'prom-client'

const connectBuckets = [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10]
const sessionBuckets = [0.001, 0.01, 0.1, 0.5, 1, 5, 10, 30, 60, 300, 900, 3600, 14400]

/** Creates the registry and every metric; `collectors` run just before each scrape. */
export function createMetrics() {
  const registry = new Registry()
  const collectors: (() => void)[] = []
  const beforeScrape = () => {
    for (const c of collectors) c()
  }
  collectDefaultMetrics({ register: registry })
  const r = [registry]
  const m = {
    registry,
    /** Register a function that brings live values up to date before a scrape. */
    onScrape(fn: () => void) {
      collectors.push(fn)
    },
    /** The Prometheus text exposition, with live values brought up to date first. */
    async scrape(): Promise<string> {
      beforeScrape()
      return registry.metrics()
    },
    accepted: new Counter({
      name: 'sluice_connections_accepted_total',
      help: 'Client connections accepted',
      labelNames: ['app', 'listener'] as const,
      registers: r,
    }),
    active: new Gauge({
      name: 'sluice_connections_active',
      help: 'Client connections open now',
      labelNames: ['app', 'listener'] as const,
      registers: r,
    }),
    rejected: new Counter({
      name: 'sluice_connections_rejected_total',
      help: 'Client connections reset without being proxied, by reason (max_connections, no_target)',
      labelNames: ['app', 'listener', 'reason'] as const,
      registers: r,
    }),
    connects: new Counter({
      name: 'sluice_upstream_connects_total',
      help: 'Successful connections to targets',
      labelNames: ['app', 'target'] as const,
      registers: r,
    }),
    connectFailures: new Counter({
      name: 'sluice_upstream_connect_failures_total',
      help: 'Failed connect attempts to targets, by reason (refused, timeout, unresolvable, unreachable, reset, error)',
      labelNames: ['app', 'target', 'reason'] as const,
      registers: r,
    }),
    retries: new Counter({
      name: 'sluice_upstream_retries_total',
      help: 'Connect attempts made after a first attempt failed (failover)',
      labelNames: ['app'] as const,
      registers: r,
    }),
    bytesIn: new Counter({
      name: 'sluice_bytes_in_total',
      help: 'Bytes received from clients',
      labelNames: ['app', 'listener'] as const,
      registers: r,
    }),
    bytesOut: new Counter({
      name: 'sluice_bytes_out_total',
      help: 'Bytes sent to clients',
      labelNames: ['app', 'listener'] as const,
      registers: r,
    }),
    connectSeconds: new Histogram({
      name: 'sluice_upstream_connect_duration_seconds',
      help: 'Time to connect to a target (successful attempts)',
      labelNames: ['app', 'target'] as const,
      buckets: connectBuckets,
      registers: r,
    }),
    sessionSeconds: new Histogram({
      name: 'sluice_session_duration_seconds',
      help: 'Lifetime of proxied client connections',
      labelNames: ['app', 'listener'] as const,
      buckets: sessionBuckets,
      registers: r,
    }),
    targetUp: new Gauge({
      name: 'sluice_target_up',
      help: '1 when a target is in rotation (healthy and not ejected), 0 when it is down',
      labelNames: ['app', 'target'] as const,
      registers: r,
    }),
    targetActive: new Gauge({
      name: 'sluice_target_connections_active',
      help: 'Proxied connections open now to each target',
      labelNames: ['app', 'target'] as const,
      registers: r,
    }),
    healthChecks: new Counter({
      name: 'sluice_health_checks_total',
      help: 'Active health checks, by result (ok, fail)',
      labelNames: ['app', 'target', 'result'] as const,
      registers: r,
    }),
    ejections: new Counter({
      name: 'sluice_target_ejections_total',
      help: 'Targets taken out of rotation after consecutive connect failures (passive health)',
      labelNames: ['app', 'target'] as const,
      registers: r,
    }),
    reloads: new Counter({
      name: 'sluice_config_reloads_total',
      help: 'Config reloads, by result (applied, unchanged, rejected)',
      labelNames: ['result'] as const,
      registers: r,
    }),
    lastReload: new Gauge({
      name: 'sluice_config_last_reload_success_timestamp_seconds',
      help: 'When a config was last applied',
      registers: r,
    }),
    dnsLookups: new Counter({
      name: 'sluice_dns_lookups_total',
      help: 'Target name lookups, by result (ok, fail, stale)',
      labelNames: ['result'] as const,
      registers: r,
    }),
  }
  return m
}

export type Metrics = ReturnType<typeof createMetrics>
