import assert from 'node:assert/strict'
import { test } from 'node:test'
import { DnsCache } from '../../src/net/dns.ts'

const spec = { ttl: 30_000, minTtl: 1000, maxTtl: 3_600_000, negativeTtl: 2000, timeout: 500 }

/** A fake resolver: answers from `table`, counts calls. */
function fake(table: Record<string, string[] | Error>, ttl: number | null = null) {
  const calls: string[] = []
  return {
    calls,
    lookup: async (host: string) => {
      calls.push(host)
      const a = table[host]
      if (!a) throw Object.assign(new Error('not found'), { code: 'ENOTFOUND' })
      if (a instanceof Error) throw a
      return a
    },
    ttl: async () => ttl,
  }
}

test('IP literals are answered at once, without a lookup', () => {
  const f = fake({})
  const c = new DnsCache(spec, {}, f)
  assert.deepEqual(c.resolve('127.0.0.1'), ['127.0.0.1'])
  assert.deepEqual(c.resolve('::1'), ['::1'])
  assert.equal(f.calls.length, 0)
})

test('an answer is cached for its DNS TTL (clamped), then asked again', async () => {
  const f = fake({ 'db.example': ['10.0.0.1'] }, 5000)
  const c = new DnsCache(spec, {}, f)
  const now = Date.now()
  assert.deepEqual(await c.resolve('db.example', now), ['10.0.0.1'])
  assert.deepEqual(
    c.resolve('db.example', now + 4000),
    ['10.0.0.1'],
    'fresh: answered from the cache, synchronously',
  )
  assert.equal(f.calls.length, 1)
  assert.deepEqual(await c.resolve('db.example', now + 6000), ['10.0.0.1'])
  assert.equal(f.calls.length, 2)
  assert.equal(c.snapshot()[0]!.ttlSource, 'dns')
  const short = new DnsCache(spec, {}, fake({ x: ['10.0.0.2'] }, 0))
  await short.resolve('x')
  assert.ok(short.snapshot()[0]!.expiresIn >= 900, 'a 0 TTL is raised to min_ttl')
})

test('without a DNS TTL (hosts file) the configured ttl applies', async () => {
  const c = new DnsCache(spec, {}, fake({ local: ['127.0.0.1'] }, null))
  await c.resolve('local')
  const s = c.snapshot()[0]!
  assert.equal(s.ttlSource, 'default')
  assert.ok(s.expiresIn > 29_000)
})

test('concurrent lookups of one name make one query', async () => {
  const f = fake({ a: ['10.0.0.1'] })
  const c = new DnsCache(spec, {}, f)
  const all = await Promise.all([c.resolve('a'), c.resolve('a'), c.resolve('a')])
  assert.equal(f.calls.length, 1)
  for (const r of all) assert.deepEqual(r, ['10.0.0.1'])
})

test('a failing refresh serves the last answer and says so', async () => {
  const table: Record<string, string[] | Error> = { a: ['10.0.0.1'] }
  const f = fake(table, 1000)
  const stale: string[] = []
  const c = new DnsCache(spec, { stale: (h) => stale.push(h) }, f)
  const now = Date.now()
  await c.resolve('a', now)
  table.a = Object.assign(new Error('server failure'), { code: 'ESERVFAIL' })
  assert.deepEqual(await c.resolve('a', now + 5000), ['10.0.0.1'])
  assert.deepEqual(stale, ['a'])
})

test('a name that never resolved fails, and the failure is remembered for negative_ttl', async () => {
  const f = fake({})
  const c = new DnsCache(spec, {}, f)
  await assert.rejects(async () => c.resolve('bad.invalid'), {
    reason: 'unresolvable',
    message: /cannot resolve bad\.invalid: ENOTFOUND/,
  })
  await assert.rejects(async () => c.resolve('bad.invalid'))
  assert.equal(f.calls.length, 1, 'the second failure came from the cache')
  await assert.rejects(async () => c.resolve('bad.invalid', Date.now() + 3000))
  assert.equal(f.calls.length, 2)
})

test('a lookup that hangs times out', async () => {
  const c = new DnsCache(
    { ...spec, timeout: 50 },
    {},
    { lookup: () => new Promise(() => {}), ttl: async () => null },
  )
  await assert.rejects(async () => c.resolve('slow'), { message: /ETIMEOUT/ })
})
