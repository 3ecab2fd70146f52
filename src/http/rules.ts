// Dispatch decisions for the http service, as plain functions: which rule a request matches, and
// the head sent upstream (hop-by-hop fields removed, header edits, Host, X-Forwarded-*, Forwarded).
// Rules are compiled once per config; the per-request work is one pass over the fields.
import type { Destination, HeaderEdit, HeaderMatch, HttpAppSpec, HttpRuleSpec } from '../config/types.ts'
import { type Fields, getField, HOP_BY_HOP, type RequestHead, tokens } from './head.ts'

/** A rule ready to use: its conditions, where it sends, and its edits folded into drop + append. */
export interface CompiledRule {
  /** 'default' for the app's fallback. */
  name: string
  spec: HttpRuleSpec | null
  test: (f: Fields) => boolean
  destination: Destination
  /** Lower-cased names whose client fields are not forwarded (set / remove edits). */
  drop: Set<string>
  /** Fields added after the client's (set / add edits), Host excepted. */
  append: [string, string][]
  /** Host from an edit; null: the app's rule (destination authority, or the client's with preserve_host). */
  host: string | null
  timeout: number
  /** Filled by the service: per-rule metric series and the like. */
  slot: unknown
}

/** Fold edits (applied in order) into names to drop and fields to append. */
export function foldEdits(edits: HeaderEdit[]): {
  drop: Set<string>
  append: [string, string][]
  host: string | null
} {
  const drop = new Set<string>()
  let append: [string, string][] = []
  let host: string | null = null
  for (const e of edits) {
    const lower = e.name.toLowerCase()
    if (lower === 'host') {
      // Host is always sent once, first: an edit only chooses its value.
      host = e.op === 'remove' ? null : e.value
      continue
    }
    if (e.op !== 'add') {
      drop.add(lower)
      append = append.filter(([n]) => n.toLowerCase() !== lower)
    }
    if (e.op !== 'remove') append.push([e.name, e.value])
  }
  return { drop, append, host }
}

/** The first field named `lower`, or undefined. */
function first(f: Fields, lower: string): string | undefined {
  const i = f.lower.indexOf(lower)
  return i < 0 ? undefined : f.values[i]
}

/** A predicate for one condition. */
export function matcher(m: HeaderMatch): (f: Fields) => boolean {
  const h = m.header
  switch (m.op) {
    case 'exact':
      return (f) => first(f, h) === m.value
    case 'prefix':
      return (f) => first(f, h)?.startsWith(m.value) ?? false
    case 'regex': {
      const re = new RegExp(m.value)
      return (f) => {
        const v = first(f, h)
        return v !== undefined && re.test(v)
      }
    }
    case 'present':
      return (f) => f.lower.includes(h)
    case 'absent':
      return (f) => !f.lower.includes(h)
  }
}

/** Compile an app's rules, in order, with the default last. */
export function compileRules(app: HttpAppSpec): CompiledRule[] {
  const appEdits = app.headers
  const out: CompiledRule[] = app.rules.map((r) => {
    const tests = r.match.map(matcher)
    const folded = foldEdits([...appEdits, ...r.headers])
    return {
      name: r.name,
      spec: r,
      test: tests.length === 1 ? tests[0]! : (f: Fields) => tests.every((t) => t(f)),
      destination: r.destination ?? app.destination,
      ...folded,
      timeout: r.timeout ?? app.upstreamTimeout,
      slot: null,
    }
  })
  out.push({
    name: 'default',
    spec: null,
    test: () => true,
    destination: app.destination,
    ...foldEdits(appEdits),
    timeout: app.upstreamTimeout,
    slot: null,
  })
  return out
}

/** The first rule whose conditions all match (the default matches everything). */
export function pick(rules: CompiledRule[], f: Fields): CompiledRule {
  for (let i = 0; i < rules.length - 1; i++) if (rules[i]!.test(f)) return rules[i]!
  return rules[rules.length - 1]!
}

/** The request target sent upstream: the destination's path prefix, then the client's path and query. */
export function upstreamTarget(target: string, prefix: string): string {
  // absolute-form (a client talking to a proxy): keep the path and query only.
  if (target.charCodeAt(0) !== 47 /* / */) {
    if (target === '*') return prefix ? `${prefix}/` : '*'
    const m = /^[a-zA-Z][a-zA-Z0-9+.-]*:\/\/[^/?#]*(.*)$/.exec(target)
    target = m ? m[1] || '/' : target
    if (target[0] !== '/') target = `/${target}`
  }
  return prefix + target
}

export interface ForwardInfo {
  /** The client's address, v4-mapped prefixes removed. */
  clientIp: string
  forwarded: HttpAppSpec['forwarded']
  preserveHost: boolean
}

/** RFC 7239 node: IPv6 addresses quoted and bracketed. */
function node(ip: string): string {
  return ip.includes(':') ? `"[${ip}]"` : ip
}

/** Serialise the head sent upstream for `req` under `rule`. */
export function upstreamHead(req: RequestHead, rule: CompiledRule, info: ForwardInfo): string {
  const f = req.fields
  const dest = rule.destination
  const connectionTokens = tokens(getField(f, 'connection'))
  const listed = connectionTokens.filter((t) => t !== 'close' && t !== 'keep-alive' && t !== 'upgrade')
  const host = rule.host ?? (info.preserveHost && req.host !== null ? req.host : dest.authority)
  const fw = info.forwarded
  let xff: string | null = null
  let fwd: string | null = null
  let head = `${req.method} ${upstreamTarget(req.target, dest.pathPrefix)} HTTP/1.${req.minor}\r\nHost: ${host}\r\n`
  let framed = false
  for (let i = 0; i < f.lower.length; i++) {
    const lower = f.lower[i]!
    if (lower === 'host' || HOP_BY_HOP.has(lower) || rule.drop.has(lower)) continue
    if (listed.length && listed.includes(lower)) continue
    // Framing goes upstream in one canonical form (below), whatever spelling the client used.
    if (lower === 'content-length' || lower === 'transfer-encoding') {
      framed = true
      continue
    }
    if (fw.xForwardedFor && lower === 'x-forwarded-for') {
      xff = xff === null ? f.values[i]! : `${xff}, ${f.values[i]}`
      continue
    }
    if (fw.forwarded && lower === 'forwarded') {
      fwd = fwd === null ? f.values[i]! : `${fwd}, ${f.values[i]}`
      continue
    }
    if (
      (fw.xForwardedProto && lower === 'x-forwarded-proto') ||
      (fw.xForwardedHost && lower === 'x-forwarded-host')
    )
      continue
    head += `${f.names[i]}: ${f.values[i]}\r\n`
  }
  if (req.body === 'chunked') head += 'Transfer-Encoding: chunked\r\n'
  else if (req.body === 'length') head += `Content-Length: ${req.length}\r\n`
  else if (framed) head += 'Content-Length: 0\r\n'
  for (const [n, v] of rule.append) head += `${n}: ${v}\r\n`
  if (fw.xForwardedFor)
    head += `X-Forwarded-For: ${xff === null ? info.clientIp : `${xff}, ${info.clientIp}`}\r\n`
  if (fw.xForwardedProto) head += 'X-Forwarded-Proto: http\r\n'
  if (fw.xForwardedHost && req.host !== null) head += `X-Forwarded-Host: ${req.host}\r\n`
  if (fw.forwarded) {
    let el = `for=${node(info.clientIp)}`
    if (req.host !== null) el += `;host="${req.host.replace(/["\\]/g, '')}"`
    el += ';proto=http'
    head += `Forwarded: ${fwd === null ? el : `${fwd}, ${el}`}\r\n`
  }
  if (req.upgrade !== null) head += `Connection: upgrade\r\nUpgrade: ${req.upgrade}\r\n`
  else if (req.minor === 0) head += 'Connection: close\r\n'
  return `${head}\r\n`
}

/**
 * The response head for the client: hop-by-hop fields removed (the raw bytes are reused when
 * there are none), `Connection: close` added when the client connection ends after this response.
 */
export function clientHead(
  raw: Buffer,
  end: number,
  f: Fields,
  close: boolean,
  keepUpgrade: boolean,
): Buffer {
  let hop = false
  for (const lower of f.lower) if (HOP_BY_HOP.has(lower)) hop = true
  if (!hop && !close) return raw.subarray(0, end)
  const text = raw.toString('latin1', 0, end)
  const firstLine = text.slice(0, text.indexOf('\r\n'))
  const listed = tokens(getField(f, 'connection'))
  let head = `${firstLine}\r\n`
  for (let i = 0; i < f.lower.length; i++) {
    const lower = f.lower[i]!
    if (keepUpgrade && (lower === 'connection' || lower === 'upgrade')) {
      head += `${f.names[i]}: ${f.values[i]}\r\n`
      continue
    }
    if (HOP_BY_HOP.has(lower) || listed.includes(lower)) continue
    head += `${f.names[i]}: ${f.values[i]}\r\n`
  }
  if (close && !keepUpgrade) head += 'Connection: close\r\n'
  return Buffer.from(`${head}\r\n`, 'latin1')
}
