// Header handling at the tunnel's HTTP/1.1 ends (pure): hop-by-hop fields removed both ways,
// RFC 7239 Forwarded elements, the marker that says a request body was chunked.
import { HOP_BY_HOP, tokens } from '../http/head.ts'

/** Fields that belong to one HTTP/1.1 connection and never cross the tunnel. */
const TUNNEL_HOP = new Set([
  ...HOP_BY_HOP,
  'transfer-encoding',
  'proxy-authorization',
  'proxy-authenticate',
  'host',
  'http2-settings',
])

/**
 * Sent with a request whose body was chunked (its length unknown): the server side sends it on
 * chunked too, whatever the method. Never reaches the origin.
 */
export const CHUNKED_MARK = 'x-sluice-chunked'

/**
 * The end-to-end fields of a raw header list ([name, value, name, value, …] as node:http gives
 * it), lower-cased for HTTP/2, duplicates kept in order. Names listed in Connection go too.
 */
export function endToEnd(raw: readonly string[], drop: readonly string[] = []): [string, string][] {
  const listed = new Set<string>(drop)
  for (let i = 0; i < raw.length; i += 2)
    if (raw[i]!.toLowerCase() === 'connection') for (const t of tokens(raw[i + 1]!)) listed.add(t)
  const out: [string, string][] = []
  for (let i = 0; i < raw.length; i += 2) {
    const lower = raw[i]!.toLowerCase()
    if (TUNNEL_HOP.has(lower) || listed.has(lower) || lower === CHUNKED_MARK) continue
    out.push([lower, raw[i + 1]!])
  }
  return out
}

/** A node for Forwarded: IPv6 addresses and ports need quoting (RFC 7239 6). */
function node(address: string, port: number | undefined): string {
  const host = address.includes(':') ? `[${address}]` : address
  return `"${port === undefined ? host : `${host}:${port}`}"`
}

/** The addresses of one connection, as a socket has them. */
export interface Ends {
  remoteAddress?: string
  remotePort?: number
  localAddress?: string
  localPort?: number
}

/** The Forwarded element for a request that came in on `conn`: who sent it (for), who received it (by), how. */
export function forwardedElement(conn: Ends, proto: 'http' | 'https'): string {
  const f = node(conn.remoteAddress ?? 'unknown', conn.remotePort)
  const b = node(conn.localAddress ?? 'unknown', conn.localPort)
  return `for=${f};by=${b};proto=${proto}`
}

/** Headers as a list with one Forwarded element appended after any existing values. */
export function appendForwarded(fields: [string, string][], element: string): [string, string][] {
  const existing = fields.filter(([n]) => n === 'forwarded').map(([, v]) => v)
  const rest = fields.filter(([n]) => n !== 'forwarded')
  rest.push(['forwarded', existing.length ? `${existing.join(', ')}, ${element}` : element])
  return rest
}

/** Transfer-Encoding of a request is acceptable when it is exactly `chunked` (or absent). */
export function supportedTransferEncoding(value: string | undefined): boolean {
  if (value === undefined) return true
  const t = tokens(value)
  return t.length === 1 && t[0] === 'chunked'
}
