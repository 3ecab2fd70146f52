// Every Prometheus metric sluice exports, named in one place. Prefix `sluice_`, HAProxy-like units,
// labels app / listener / target. The data path resolves each labelled series once (per listener
// or per target) and then updates plain numbers: nothing is looked up per connection or per chunk.
import { collectDefaultMetrics, Registry } from 'prom-client'
import { CounterFamily, GaugeFamily, HistogramFamily } from './series.ts'

const connectBuckets = [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10]
const sessionBuckets = [0.001, 0.01, 0.1, 0.5, 1, 5, 10, 30, 60, 300, 900, 3600, 14400]

const AL = ['app', 'listener'] as const
const AT = ['app', 'target'] as const

/** Creates the registry and every metric; `onScrape` functions run just before each scrape. */
export function createMetrics() {
  const registry = new Registry()
  const collectors: (() => void)[] = []
  collectDefaultMetrics({ register: registry })
  const r = registry
  return {
    registry,
    /** Register a function that brings live values up to date before a scrape. */
    onScrape(fn: () => void) {
      collectors.push(fn)
    },
    /** The Prometheus text exposition, with live values brought up to date first. */
    async scrape(): Promise<string> {
      for (const c of collectors) c()
      return registry.metrics()
    },
    accepted: new CounterFamily(r, 'sluice_connections_accepted_total', 'Client connections accepted', AL),
    active: new GaugeFamily(r, 'sluice_connections_active', 'Client connections open now', AL),
    rejected: new CounterFamily(
      r,
      'sluice_connections_rejected_total',
      'Client connections reset without being proxied, by reason (max_connections, no_target)',
      ['app', 'listener', 'reason'] as const,
    ),
    connects: new CounterFamily(r, 'sluice_upstream_connects_total', 'Successful connections to targets', AT),
    connectFailures: new CounterFamily(
      r,
      'sluice_upstream_connect_failures_total',
      'Failed connect attempts to targets, by reason (refused, timeout, unresolvable, unreachable, reset, error)',
      ['app', 'target', 'reason'] as const,
    ),
    retries: new CounterFamily(
      r,
      'sluice_upstream_retries_total',
      'Connect attempts made after a first attempt failed (failover)',
      ['app'] as const,
    ),
    bytesIn: new CounterFamily(r, 'sluice_bytes_in_total', 'Bytes received from clients', AL),
    bytesOut: new CounterFamily(r, 'sluice_bytes_out_total', 'Bytes sent to clients', AL),
    connectSeconds: new HistogramFamily(
      r,
      'sluice_upstream_connect_duration_seconds',
      'Time to connect to a target (successful attempts)',
      AT,
      connectBuckets,
    ),
    sessionSeconds: new HistogramFamily(
      r,
      'sluice_session_duration_seconds',
      'Lifetime of proxied client connections',
      AL,
      sessionBuckets,
    ),
    targetUp: new GaugeFamily(
      r,
      'sluice_target_up',
      '1 when a target is in rotation (healthy and not ejected), 0 when it is down',
      AT,
    ),
    targetActive: new GaugeFamily(
      r,
      'sluice_target_connections_active',
      'Proxied connections open now to each target',
      AT,
    ),
    healthChecks: new CounterFamily(
      r,
      'sluice_health_checks_total',
      'Active health checks, by result (ok, fail)',
      ['app', 'target', 'result'] as const,
    ),
    ejections: new CounterFamily(
      r,
      'sluice_target_ejections_total',
      'Targets taken out of rotation after consecutive connect failures (passive health)',
      AT,
    ),
    reloads: new CounterFamily(
      r,
      'sluice_config_reloads_total',
      'Config reloads, by result (applied, unchanged, rejected)',
      ['result'] as const,
    ),
    lastReload: new GaugeFamily(
      r,
      'sluice_config_last_reload_success_timestamp_seconds',
      'When a config was last applied',
      [],
    ),
    faultsApplied: new CounterFamily(
      r,
      'sluice_faults_applied_total',
      'Times each fault acted (chunks delayed, lost or cut; connections refused, closed, reset or stalled)',
      ['app', 'target', 'fault', 'type'] as const,
    ),
    httpRequests: new CounterFamily(
      r,
      'sluice_http_requests_total',
      'HTTP requests answered, by rule, destination and status class (rule "" for requests refused before dispatch)',
      ['app', 'rule', 'destination', 'code'] as const,
    ),
    httpUpstreamSeconds: new HistogramFamily(
      r,
      'sluice_http_upstream_duration_seconds',
      'Time from a request sent upstream to its response head',
      ['app', 'destination'] as const,
      connectBuckets,
    ),
    httpPool: new GaugeFamily(
      r,
      'sluice_http_pool_connections',
      'Upstream keep-alive connections per destination, by state (idle, busy)',
      ['app', 'destination', 'state'] as const,
    ),
    httpPoolWaiting: new GaugeFamily(
      r,
      'sluice_http_pool_waiting',
      'Requests waiting for an upstream connection (the pool is at max_connections)',
      ['app', 'destination'] as const,
    ),
    tunnelSessions: new GaugeFamily(
      r,
      'sluice_tunnel_sessions',
      'Tunnel sessions up (a client counts a session after its first exchange)',
      ['app'] as const,
    ),
    tunnelReconnects: new CounterFamily(
      r,
      'sluice_tunnel_connect_attempts_total',
      'Tunnel session attempts by a client, by result (up, failed)',
      ['app', 'result'] as const,
    ),
    tunnelStreams: new GaugeFamily(
      r,
      'sluice_tunnel_streams_active',
      'Requests in flight through the tunnel',
      ['app'] as const,
    ),
    tunnelBytes: new CounterFamily(
      r,
      'sluice_tunnel_body_bytes_total',
      'Body bytes carried by the tunnel, by direction (request: toward the origin, response: back)',
      ['app', 'direction'] as const,
    ),
    tunnelRequestSeconds: new HistogramFamily(
      r,
      'sluice_tunnel_request_duration_seconds',
      'Time from a request taken in to its response head, through the tunnel',
      ['app'] as const,
      connectBuckets,
    ),
    tunnelRequests: new CounterFamily(
      r,
      'sluice_tunnel_requests_total',
      'Requests through the tunnel, by status class (synthetic errors included)',
      ['app', 'code'] as const,
    ),
    dnsLookups: new CounterFamily(
      r,
      'sluice_dns_lookups_total',
      'Target name lookups, by result (ok, fail, stale)',
      ['result'] as const,
    ),
  }
}

export type Metrics = ReturnType<typeof createMetrics>
