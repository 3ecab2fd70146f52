// fault's proxy mapping grammar: `[HOST:]PORT=HOST:PORT` or `[HOST:]PORT=PROTO://HOST[:PORT]`,
// PROTO one of tcp, http, https, psql, psqls, tls. The port is implied by the protocol when omitted
// (http 80, https and tls 443, psql and psqls 5432). Pure: errors quote the mapping and the rule broken.
import { isIP } from 'node:net'
import { type ListenAddress, parseListen, parseTarget } from './address.ts'

export const protocols = ['tcp', 'http', 'https', 'psql', 'psqls', 'tls'] as const
export type Protocol = (typeof protocols)[number]

const impliedPort: Record<Protocol, number | null> = {
  tcp: null,
  http: 80,
  https: 443,
  psql: 5432,
  psqls: 5432,
  tls: 443,
}

/** The protocols that open TLS to the remote; the client side stays clear text. */
export const tlsProtocols: readonly Protocol[] = ['https', 'psqls', 'tls']

export interface Mapping {
  text: string
  listen: ListenAddress
  protocol: Protocol
  host: string
  port: number
}

export const mappingGrammar =
  'PORT=HOST:PORT or PORT=PROTO://HOST[:PORT], PROTO one of tcp, http, https, psql, psqls, tls (PORT may be HOST:PORT to listen on one address)'

/** Parse one mapping, or return a message quoting it and naming the rule it breaks. */
export function parseMapping(text: string): Mapping | string {
  const fail = (why: string) => `--proxy "${text}": ${why} (grammar: ${mappingGrammar})`
  const eq = text.indexOf('=')
  if (eq < 0) return fail('there is no "=" between the listen port and the remote')
  const left = text.slice(0, eq).trim()
  const right = text.slice(eq + 1).trim()
  if (!left) return fail('the listen port before "=" is missing')
  if (!right) return fail('the remote after "=" is missing')
  const leftPort = left.includes(':') ? left.slice(left.lastIndexOf(':') + 1) : left
  if (!/^\d+$/.test(leftPort)) return fail(`the listen port "${leftPort}" is not a number`)
  const listen = parseListen(left)
  if (typeof listen === 'string') return fail(`the listen address: ${listen}`)

  let protocol: Protocol = 'tcp'
  let rest = right
  const scheme = /^([A-Za-z][A-Za-z0-9+.-]*):\/\//.exec(right)
  if (scheme) {
    const p = scheme[1]!.toLowerCase()
    if (!(protocols as readonly string[]).includes(p)) return fail(`unknown protocol "${scheme[1]}"`)
    protocol = p as Protocol
    rest = right.slice(scheme[0].length).replace(/\/+$/, '')
    if (rest.includes('/')) return fail('the remote is host[:port]; a path is not part of a mapping')
  }
  // host, host:port, [v6], [v6]:port; a port may be left out only after a protocol that implies one.
  let host: string
  let port: number | null
  const v6 = /^\[([^\]]+)\](?::(.*))?$/.exec(rest)
  if (v6) {
    host = v6[1]!
    if (v6[2] === undefined) port = null
    else if (/^\d+$/.test(v6[2])) port = Number(v6[2])
    else return fail(`the remote port "${v6[2]}" is not a number`)
  } else if (rest.includes(':')) {
    const c = rest.lastIndexOf(':')
    host = rest.slice(0, c)
    const p = rest.slice(c + 1)
    if (!p) return fail('the remote port after ":" is missing')
    if (!/^\d+$/.test(p)) return fail(`the remote port "${p}" is not a number`)
    port = Number(p)
  } else {
    host = rest
    port = null
  }
  if (!host) return fail('the remote host is missing')
  if (port === null) {
    const implied = impliedPort[protocol]
    if (implied === null) return fail(`the remote "${rest}" has no port, and ${protocol} implies none`)
    port = implied
  }
  const target = parseTarget(`${isIP(host) === 6 ? `[${host}]` : host}:${port}`)
  if (typeof target === 'string') return fail(`the remote: ${target}`)
  return { text, listen, protocol, host: target.host, port: target.port }
}
