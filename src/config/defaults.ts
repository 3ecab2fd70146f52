// Built-in values shared by more than one place (the normaliser, the engine before a config is
// loaded, several kinds): each is written here once and imported where it is needed.
import type { DnsSpec } from './types.ts'

/** How long removed listeners and shutdown wait for connections to end. */
export const DRAIN_TIMEOUT = 30_000

/** Time allowed to connect to a target or destination (tcp and http apps). */
export const CONNECT_TIMEOUT = 3000

/** The DNS cache's settings when the config says nothing (`dns:`). */
export const dnsDefaults: DnsSpec = {
  ttl: 30_000,
  minTtl: 1000,
  maxTtl: 3_600_000,
  negativeTtl: 2000,
  timeout: 2000,
}
