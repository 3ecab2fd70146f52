// Listen and target addresses: parsing, canonical keys and overlap rules.
import { isIP } from 'node:net'
import type { ConfigIssue } from '../errors.ts'

/** Where a listener binds. `host: null` means every interface, IPv4 and IPv6. */
export interface ListenAddress {
  host: string | null
  port: number
  /** Canonical text, unique per bind: `*:8080`, `127.0.0.1:8080`, `[::1]:8080`. */
  key: string
}

/** A target to dial: a host name or IP literal and a port. */
export interface HostPort {
  host: string
  port: number
}

function validPort(n: number, allowZero: boolean): boolean {
  return Number.isInteger(n) && n >= (allowZero ? 0 : 1) && n <= 65535
}

/** `host:port` text, bracketing IPv6 literals. */
export function joinHostPort(host: string, port: number): string {
  return isIP(host) === 6 ? `[${host}]:${port}` : `${host}:${port}`
}

/** Split `host:port`, `[v6]:port` or `:port` text; returns an error message on failure. */
export function splitHostPort(text: string): { host: string; port: number } | string {
  const s = text.trim()
  let host: string
  let portText: string
  if (s.startsWith('[')) {
    const end = s.indexOf(']')
    if (end < 0 || s[end + 1] !== ':') return `"${text}" is not [ipv6]:port`
    host = s.slice(1, end)
    portText = s.slice(end + 2)
    if (isIP(host) !== 6) return `"${host}" is not an IPv6 address`
  } else {
    const colon = s.lastIndexOf(':')
    if (colon < 0) return `"${text}" has no port (expected host:port)`
    host = s.slice(0, colon)
    portText = s.slice(colon + 1)
    if (host.includes(':')) return `"${text}": write IPv6 addresses in brackets, as [${host}]:${portText}`
  }
  if (!/^\d+$/.test(portText)) return `"${text}" has no valid port (expected host:port)`
  return { host, port: Number(portText) }
}

const hostName =
  /^(?=.{1,253}$)([a-z0-9_]([a-z0-9_-]{0,61}[a-z0-9_])?)(\.[a-z0-9_]([a-z0-9_-]{0,61}[a-z0-9_])?)*\.?$/i

/** A last label that is a number, decimal or 0x hex: what the URL standard takes for IPv4. */
const numericLastLabel = /(^|\.)(\d+|0x[0-9a-f]*)\.?$/i

/** Parse a listen address: a port number (all interfaces) or `host:port` with an IP literal host. */
export function parseListen(value: unknown, allowZero = false): ListenAddress | string {
  if (typeof value === 'number' || (typeof value === 'string' && /^\s*\d+\s*$/.test(value))) {
    const port = Number(value)
    if (!validPort(port, allowZero)) return `port ${value} is out of range (1-65535)`
    return { host: null, port, key: `*:${port}` }
  }
  if (typeof value !== 'string') return 'must be a port number or "host:port"'
  const hp = splitHostPort(value)
  if (typeof hp === 'string') return hp
  if (!validPort(hp.port, allowZero)) return `port ${hp.port} is out of range (1-65535)`
  let host: string | null = hp.host
  if (host === '' || host === '*' || host === '0.0.0.0' || host === '::') {
    // `:8080` and `*:8080` mean every interface; 0.0.0.0 and :: are kept as the user wrote them.
    if (host === '' || host === '*') host = null
  } else if (host === 'localhost') {
    host = '127.0.0.1'
  } else if (!isIP(host)) {
    return `listen host "${host}" must be an IP address (or omitted for all interfaces)`
  }
  return { host, port: hp.port, key: host === null ? `*:${hp.port}` : `${joinHostPort(host, hp.port)}` }
}

/** Parse a target `host:port`; the host may be a name (resolved at dial time) or an IP literal. */
export function parseTarget(value: unknown): HostPort | string {
  if (typeof value !== 'string') return 'must be "host:port"'
  const hp = splitHostPort(value)
  if (typeof hp === 'string') return hp
  if (!validPort(hp.port, false)) return `port ${hp.port} is out of range (1-65535)`
  if (!isIP(hp.host) && !hostName.test(hp.host)) return `"${hp.host}" is not a valid host name`
  if (!isIP(hp.host) && numericLastLabel.test(hp.host)) {
    // URLs read such a host as a legacy IPv4 form (1.2.3 is 1.2.0.3) or refuse it (a.0); resolvers too.
    return `"${hp.host}" is neither an IPv4 address nor a host name (a name's last label is not a number)`
  }
  return { host: hp.host, port: hp.port }
}

function isWildcard(host: string | null): boolean {
  return host === null || host === '0.0.0.0' || host === '::'
}

/** Whether two listen addresses would fight over the same socket. */
export function listenOverlaps(a: ListenAddress, b: ListenAddress): boolean {
  if (a.port !== b.port || a.port === 0) return false
  if (a.host === b.host) return true
  if (a.host === null || b.host === null) return true
  if (isWildcard(a.host) || isWildcard(b.host)) {
    // 0.0.0.0 overlaps IPv4 addresses; :: overlaps everything (dual stack).
    const wild = isWildcard(a.host) ? a.host : b.host
    const other = wild === a.host ? b.host : a.host
    return wild === '::' || isIP(other) === 4 || isWildcard(other)
  }
  return false
}

/** Parse an app's `listen` list; a bad entry becomes an issue at `at.listen[j]`. */
export function parseListenList(
  entries: readonly unknown[],
  at: string,
  issues: ConfigIssue[],
): ListenAddress[] {
  const out: ListenAddress[] = []
  entries.forEach((entry, j) => {
    const l = parseListen(entry)
    if (typeof l === 'string') issues.push({ path: `${at}.listen[${j}]`, message: l })
    else out.push(l)
  })
  return out
}
