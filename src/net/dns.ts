// A DNS cache for target names. Answers come from the system resolver (getaddrinfo: hosts file,
// nsswitch) so sluice resolves names as every other program on the machine does; their TTL comes
// from a DNS query for the same name when it answers, else from the configured default.
// Stale answers are served when a refresh fails; failures are remembered for negative_ttl.
import { promises as dns } from 'node:dns'
import { isIP } from 'node:net'
import type { DnsSpec } from '../config/types.ts'
import { ConnectError } from '../errors.ts'

interface Entry {
  addresses: string[]
  /** Fresh until then (ms since epoch); stale after, kept for failures. */
  expires: number
  /** Last failure, remembered until `failedUntil` when there is nothing stale to serve. */
  error: ConnectError | null
  failedUntil: number
  pending: Promise<string[]> | null
  ttlSource: 'dns' | 'default'
}

export interface DnsEvents {
  /** A refresh failed and the previous answer is served instead. */
  stale?(host: string, err: Error): void
  lookup?(result: 'ok' | 'fail' | 'stale'): void
}

export type Lookup = (host: string) => Promise<string[]>
/** The smallest TTL (ms) DNS gives for a name, or null when DNS has no answer. */
export type TtlLookup = (host: string) => Promise<number | null>

/** Caches name → addresses for dialing. IP literals pass straight through. */
export class DnsCache {
  #spec: DnsSpec
  #entries = new Map<string, Entry>()
  #literals = new Map<string, string[]>()
  #events: DnsEvents
  #lookup: Lookup
  #ttlLookup: TtlLookup
  #resolver: dns.Resolver

  constructor(spec: DnsSpec, events: DnsEvents = {}, sources: { lookup?: Lookup; ttl?: TtlLookup } = {}) {
    this.#spec = spec
    this.#events = events
    this.#resolver = new dns.Resolver({ timeout: spec.timeout, tries: 1 })
    this.#lookup = sources.lookup ?? systemLookup
    this.#ttlLookup = sources.ttl ?? ((host) => this.#dnsTtl(host))
  }

  configure(spec: DnsSpec): void {
    if (spec.timeout !== this.#spec.timeout)
      this.#resolver = new dns.Resolver({ timeout: spec.timeout, tries: 1 })
    this.#spec = spec
  }

  /** Addresses for `host`: an array when the cache can answer now, else a promise. */
  resolve(host: string, now = Date.now()): string[] | Promise<string[]> {
    const literal = this.#literals.get(host)
    if (literal) return literal
    if (isIP(host)) {
      const a = [host]
      this.#literals.set(host, a)
      return a
    }
    const e = this.#entries.get(host)
    if (e && now < e.expires && e.addresses.length) return e.addresses
    if (e?.error && now < e.failedUntil && e.addresses.length === 0) return Promise.reject(e.error)
    return this.#refresh(host, e)
  }

  /** Start resolving names in the background, so the first connection does not wait. */
  prefetch(hosts: Iterable<string>): void {
    for (const h of hosts) {
      const r = this.resolve(h)
      if (r instanceof Promise) r.catch(() => {})
    }
  }

  /** Forget names no longer used by any app. */
  retain(hosts: Set<string>): void {
    for (const h of this.#entries.keys()) if (!hosts.has(h)) this.#entries.delete(h)
  }

  snapshot(): {
    host: string
    addresses: string[]
    expiresIn: number
    ttlSource: string
    error: string | null
  }[] {
    const now = Date.now()
    return [...this.#entries].map(([host, e]) => ({
      host,
      addresses: e.addresses,
      expiresIn: Math.max(0, e.expires - now),
      ttlSource: e.ttlSource,
      error: e.error?.message ?? null,
    }))
  }

  #refresh(host: string, existing: Entry | undefined): Promise<string[]> {
    const entry: Entry = existing ?? {
      addresses: [],
      expires: 0,
      error: null,
      failedUntil: 0,
      pending: null,
      ttlSource: 'default',
    }
    if (!existing) this.#entries.set(host, entry)
    if (entry.pending) return entry.pending
    const spec = this.#spec
    entry.pending = Promise.all([withTimeout(this.#lookup(host), spec.timeout), this.#ttlLookup(host)])
      .then(([addresses, ttl]) => {
        if (addresses.length === 0) throw Object.assign(new Error('no addresses'), { code: 'ENODATA' })
        const t = Math.min(spec.maxTtl, Math.max(spec.minTtl, ttl ?? spec.ttl))
        entry.addresses = addresses
        entry.expires = Date.now() + t
        entry.ttlSource = ttl === null ? 'default' : 'dns'
        entry.error = null
        this.#events.lookup?.('ok')
        return addresses
      })
      .catch((err: NodeJS.ErrnoException) => {
        const error = new ConnectError(
          'unresolvable',
          host,
          `cannot resolve ${host}: ${err.code ?? err.message}`,
          {
            cause: err,
          },
        )
        entry.error = error
        if (entry.addresses.length) {
          // Serve the last good answer; ask again after negative_ttl.
          entry.expires = Date.now() + spec.negativeTtl
          this.#events.lookup?.('stale')
          this.#events.stale?.(host, error)
          return entry.addresses
        }
        entry.failedUntil = Date.now() + spec.negativeTtl
        this.#events.lookup?.('fail')
        throw error
      })
      .finally(() => {
        entry.pending = null
      })
    return entry.pending
  }

  /** The smallest TTL DNS gives for the name (ms), or null when DNS does not answer. */
  async #dnsTtl(host: string): Promise<number | null> {
    const ask = (q: Promise<{ ttl: number }[]>) =>
      q.then((rs) => rs.map((r) => r.ttl)).catch(() => [] as number[])
    const [a, aaaa] = await Promise.all([
      ask(this.#resolver.resolve4(host, { ttl: true })),
      ask(this.#resolver.resolve6(host, { ttl: true })),
    ])
    const ttls = [...a, ...aaaa]
    return ttls.length ? Math.min(...ttls) * 1000 : null
  }
}

/** getaddrinfo, IPv4 first: what the system would answer. */
export async function systemLookup(host: string): Promise<string[]> {
  const all = await dns.lookup(host, { all: true, order: 'ipv4first' })
  return [...new Set(all.map((a) => a.address))]
}

function withTimeout<T>(p: Promise<T>, ms: number): Promise<T> {
  let timer: NodeJS.Timeout | undefined
  const t = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(Object.assign(new Error('lookup timed out'), { code: 'ETIMEOUT' })), ms)
    timer.unref()
  })
  return Promise.race([p, t]).finally(() => clearTimeout(timer))
}
