// Properties of the admin API's request bodies (src/admin/*.ts), driven through a real admin
// server on loopback in this process: any method, path and body on the native fault API and the
// Toxiproxy API gives a known status and, for an error, Toxiproxy's {error, status} with one of
// sluice's codes; never ERR_INTERNAL (an uncoded failure), and the engine keeps serving.
import assert from 'node:assert/strict'
import { request } from 'node:http'
import { Writable } from 'node:stream'
import { after, before, test } from 'node:test'
import { type Running, startEngine } from '../../src/api/engine.ts'
import { normalizeConfigObject } from '../../src/config/normalize.ts'
import { codes } from '../../src/errors.ts'
import { createLogger } from '../../src/observe/logger.ts'
import { freePort } from '../../src/testkit/ports.ts'
import { checkAsync, fc } from './fuzz.ts'

let running: Running
let base: { host: string; port: number }
const logs: Record<string, unknown>[] = []
/** Ports the generated bodies may name (all on loopback): one free now, one taken by the config app. */
let freeListen: number
let webPort: number

before(async () => {
  webPort = await freePort()
  freeListen = await freePort()
  const httpPort = await freePort()
  const config = normalizeConfigObject({
    admin: '127.0.0.1:0',
    apps: [
      { name: 'web', listen: [`127.0.0.1:${webPort}`], targets: ['127.0.0.1:1'], passive: false },
      { name: 'api', kind: 'http', listen: [`127.0.0.1:${httpPort}`], destination: 'http://127.0.0.1:1' },
    ],
  })
  const log = createLogger({
    level: 'warn',
    format: 'json',
    stream: new Writable({
      write(chunk, _enc, cb) {
        for (const l of String(chunk).split('\n')) if (l) logs.push(JSON.parse(l))
        cb()
      },
    }),
  })
  running = await startEngine({ config }, { file: null, overrides: (c) => c, log })
  const [host, port] = running.admin.address!.split(/:(?=\d+$)/)
  base = { host: host!, port: Number(port) }
})

after(() => running?.stop())

interface Answer {
  status: number
  type: string
  text: string
}

/** One request with any method, path, headers and body (fetch refuses some of these). */
function call(
  method: string,
  path: string,
  body?: string,
  headers: Record<string, string> = {},
): Promise<Answer> {
  return new Promise((resolve, reject) => {
    const req = request(
      {
        host: base.host,
        port: base.port,
        method,
        path,
        headers: { connection: 'close', ...headers },
        agent: false,
      },
      (res) => {
        let text = ''
        res.setEncoding('utf8')
        res.on('data', (d: string) => (text += d))
        res.on('end', () =>
          resolve({ status: res.statusCode!, type: String(res.headers['content-type'] ?? ''), text }),
        )
      },
    )
    req.on('error', reject)
    req.end(body)
  })
}

const listenValues = fc.oneof(
  fc.constantFrom('127.0.0.1:0', '[::1]:0', 'localhost:0', '127.0.0.1:99999', 'x', '', 'nope:1', '1.2.3'),
  fc.constant(null).map(() => `127.0.0.1:${freeListen}`),
  fc.constant(null).map(() => `127.0.0.1:${webPort}`),
  fc.integer(),
)
/** The generated bodies must never ask for a listener off loopback: any `listen` is one of these. */
function onLoopback(x: unknown): unknown {
  if (Array.isArray(x)) return x.map(onLoopback)
  if (x && typeof x === 'object') {
    return Object.fromEntries(
      Object.entries(x).map(([k, v]) => [
        k,
        k === 'listen' && typeof v === 'string' && !/^(127\.0\.0\.1|\[::1\]|localhost):\d+$/.test(v)
          ? 'x'
          : onLoopback(v),
      ]),
    )
  }
  return x
}

/** Mostly `good`, sometimes anything: bodies near the valid ones reach past the first check. */
const mostly = <T, U>(good: fc.Arbitrary<T>, bad: fc.Arbitrary<U>) =>
  fc.oneof({ weight: 4, arbitrary: good }, { weight: 1, arbitrary: bad })
const names = mostly(
  fc.oneof({ weight: 3, arbitrary: fc.constant('web') }, fc.constantFrom('api', 'px', 'py')),
  fc.constantFrom('nope', '', 'a b', '%'),
)
const toxicNames = mostly(
  fc.constantFrom('latency_downstream', 't1', 'latency-to-client', 'f1'),
  fc.constantFrom('nope', ''),
)
const number = fc.oneof(
  fc.double(),
  fc.integer({ min: -5, max: 5000 }),
  fc.constantFrom(0, 1, 0.5, 2, 3e9, -1),
)
const anything = fc.oneof(
  number,
  fc.string({ maxLength: 6 }),
  fc.boolean(),
  fc.constant(null),
  fc.jsonValue({ maxDepth: 2 }),
)
/** The attributes each toxic type takes (as Toxiproxy documents them), and one misspelt. */
const toxicAttributes: Record<string, string[]> = {
  latency: ['latency', 'jitter', 'distribution', 'stddev', 'min', 'max', 'mode'],
  bandwidth: ['rate'],
  slow_close: ['delay'],
  timeout: ['timeout'],
  reset_peer: ['timeout'],
  slicer: ['average_size', 'size_variation', 'delay'],
  limit_data: ['bytes'],
  jitter: ['amplitude', 'frequency'],
  packet_loss: ['rate', 'correlation', 'retransmit', 'max_retransmit'],
  reset: ['rate'],
  blackhole: [],
  refuse: [],
  down: [],
  close: [],
}
const attributeValue = fc.oneof(
  { weight: 3, arbitrary: fc.oneof(fc.nat({ max: 1000 }), fc.double({ min: 0, max: 1, noNaN: true })) },
  fc.constantFrom('normal', 'once', 'x'),
  // Past what a timer waits (2^31-1 ms), as Toxiproxy's Go durations would take.
  fc.constantFrom(2 ** 31, 3e9, 3e12),
  number,
)
const toxicBody = mostly(
  fc.constantFrom(...Object.keys(toxicAttributes)),
  fc.oneof(fc.constant('nope'), anything),
).chain((type) =>
  fc.record(
    {
      type: fc.constant(type),
      name: mostly(toxicNames, anything),
      stream: mostly(fc.constantFrom('upstream', 'downstream'), fc.oneof(fc.constant('both'), anything)),
      toxicity: mostly(fc.double({ min: 0, max: 1, noNaN: true }), anything),
      attributes: mostly(
        (toxicAttributes[String(type)] ?? []).length
          ? fc.dictionary(fc.constantFrom(...toxicAttributes[String(type)]!), attributeValue, { maxKeys: 3 })
          : fc.constant({}),
        fc.oneof(fc.constant({ latncy: 1 }), anything),
      ),
    },
    { requiredKeys: ['type'] },
  ),
)
const proxyBody = fc.record(
  {
    name: mostly(names, anything),
    listen: listenValues,
    upstream: mostly(
      fc.constantFrom('127.0.0.1:1', 'localhost:2', '[::1]:3'),
      fc.oneof(fc.constantFrom('a.0:1', 'x', ''), anything),
    ),
    enabled: mostly(fc.boolean(), anything),
  },
  { requiredKeys: ['name', 'upstream'] },
)
const faultBody = fc.record(
  {
    name: mostly(toxicNames, anything),
    type: mostly(
      fc.constantFrom('latency', 'http_error', 'bandwidth', 'close', 'refuse', 'packet_loss'),
      fc.oneof(fc.constant('nope'), anything),
    ),
    direction: mostly(fc.constantFrom('to-upstream', 'to-client', 'both'), anything),
    latency: mostly(fc.constantFrom('10ms', '1s', 0), fc.oneof(fc.constantFrom('30d', 'x'), number)),
    rate: mostly(fc.constantFrom('1MB', 0.5), number),
    status: mostly(fc.integer({ min: 200, max: 599 }), anything),
    schedule: mostly(
      fc.constantFrom('start:1s', 'start:0,duration:1s'),
      fc.oneof(fc.constantFrom('start:10%', 'x'), anything),
    ),
    probability: mostly(fc.double({ min: 0, max: 1, noNaN: true }), number),
  },
  { requiredKeys: ['type'] },
)
const bodyText = fc.oneof(
  {
    weight: 3,
    arbitrary: fc
      .oneof(toxicBody, proxyBody, faultBody, fc.array(proxyBody, { maxLength: 3 }))
      .map((b) => JSON.stringify(onLoopback(b))),
  },
  fc.jsonValue({ maxDepth: 3 }).map((b) => JSON.stringify(onLoopback(b))),
  fc.constantFrom('', '{', 'null', '[]', '{"name":', '\u0000', '{"a":1}{"b":2}', ' '.repeat(10)),
  fc.string({ maxLength: 20 }),
)
const segment = (a: fc.Arbitrary<string>) =>
  fc.oneof(
    { weight: 4, arbitrary: a.map(encodeURIComponent) },
    fc.constantFrom('%ZZ', '%00', 'a%2Fb', '..', '%'),
  )
const path = fc.oneof(
  fc.constantFrom(
    '/proxies',
    '/populate',
    '/reset',
    '/version',
    '/status',
    '/healthz',
    '/metrics',
    '/reload',
    '/',
    '/nope',
  ),
  segment(names).map((p) => `/proxies/${p}`),
  fc.tuple(segment(names), segment(toxicNames)).map(([p, t]) => `/proxies/${p}/toxics/${t}`),
  segment(names).map((p) => `/proxies/${p}/toxics`),
  segment(names).map((a) => `/apps/${a}/faults`),
  fc.tuple(segment(names), segment(toxicNames)).map(([a, f]) => `/apps/${a}/faults/${f}`),
)
const json = <T>(a: fc.Arbitrary<T>) => a.map((b) => JSON.stringify(onLoopback(b)))
/** Requests a client would send: the route's method, existing or new names, a body of the route's shape. */
const routeRequest = fc.oneof(
  fc.record({ method: fc.constant('POST'), path: fc.constant('/proxies'), body: json(proxyBody) }),
  fc.record({
    method: fc.constant('POST'),
    path: fc.constant('/populate'),
    body: json(fc.array(proxyBody, { maxLength: 3 })),
  }),
  fc.record({
    method: fc.constantFrom('POST', 'PATCH'),
    path: names.map((n) => `/proxies/${encodeURIComponent(n)}`),
    body: json(proxyBody),
  }),
  fc.record({
    method: fc.constant('POST'),
    path: names.map((n) => `/proxies/${encodeURIComponent(n)}/toxics`),
    body: json(toxicBody),
  }),
  fc.record({
    method: fc.constantFrom('POST', 'PATCH', 'GET', 'DELETE'),
    path: fc
      .tuple(names, toxicNames)
      .map(([n, t]) => `/proxies/${encodeURIComponent(n)}/toxics/${encodeURIComponent(t)}`),
    body: json(toxicBody),
  }),
  fc.record({
    method: fc.constant('POST'),
    path: names.map((n) => `/apps/${encodeURIComponent(n)}/faults`),
    body: json(faultBody),
  }),
  fc.record({
    method: fc.constantFrom('PATCH', 'DELETE', 'GET'),
    path: fc
      .tuple(names, toxicNames)
      .map(([n, f]) => `/apps/${encodeURIComponent(n)}/faults/${encodeURIComponent(f)}`),
    body: json(faultBody),
  }),
  fc.record({
    method: fc.constantFrom('GET', 'POST', 'DELETE'),
    path: fc.constantFrom('/proxies', '/reset', '/apps/web/faults'),
    body: fc.constant(''),
  }),
)
const anyRequest = fc.record({
  method: fc.constantFrom('GET', 'POST', 'PATCH', 'DELETE', 'PUT', 'HEAD'),
  path: fc.tuple(path, fc.constantFrom('', '?x=1', '/')).map(([p, q]) => p + q),
  body: bodyText,
})
const requests = fc.array(
  fc
    .tuple(
      fc.oneof({ weight: 3, arbitrary: routeRequest }, anyRequest),
      fc.oneof(
        { weight: 8, arbitrary: fc.constant(undefined) },
        fc.constantFrom('Mozilla/5.0', 'toxiproxy-cli'),
      ),
      fc.boolean(),
    )
    .map(([r, ua, noBody]) => ({ ...r, body: noBody && r.method !== 'POST' ? null : r.body, ua })),
  { minLength: 1, maxLength: 5 },
)

const timeFields = new Set([
  'latency',
  'jitter',
  'stddev',
  'min',
  'max',
  'scale',
  'amplitude',
  'delay',
  'timeout',
  'retransmit',
  'maxRetransmit',
])
const statuses = new Set([200, 201, 204, 400, 403, 404, 405, 409, 422, 500])

test('any admin API request: a known status, errors in Toxiproxy shape with a code, never an uncoded failure', async () => {
  await checkAsync(
    fc.asyncProperty(requests, async (list) => {
      for (const r of list) {
        const headers: Record<string, string> = r.ua ? { 'user-agent': r.ua } : {}
        if (r.body !== null) {
          headers['content-type'] = 'application/json'
          headers['content-length'] = String(Buffer.byteLength(r.body))
        }
        const a = await call(r.method, r.path, r.body ?? undefined, headers)
        const what = `${r.method} ${r.path} ${r.body ?? ''} → ${a.status} ${a.text}`
        assert.ok(statuses.has(a.status), what)
        if (a.status >= 400 && a.type.startsWith('application/json') && r.method !== 'HEAD') {
          const e = JSON.parse(a.text) as { error?: unknown; status?: unknown; code?: unknown }
          assert.equal(typeof e.error, 'string', what)
          assert.equal(e.status, a.status, what)
          if (e.code !== undefined) {
            assert.ok((e.code as string) in codes, what)
            assert.notEqual(e.code, 'ERR_INTERNAL', what)
          }
          // /populate answers its own errors without a code: a 500 there is a bind error.
          if (a.status === 500) assert.match(String(e.error), /^listen tcp/, what)
        }
      }
      // Every fault in force waits no longer than a timer can (a longer wait fires after 1 ms).
      for (const app of running.controller.config!.apps)
        for (const f of app.faults)
          for (const [k, v] of Object.entries(f))
            if (typeof v === 'number' && timeFields.has(k))
              assert.ok(v >= 0 && v <= 2 ** 31 - 1, `${app.name}: fault ${f.name}.${k} = ${v}`)
      // Whatever happened, the API still answers and lists only loopback proxies.
      const proxies = await call('GET', '/proxies')
      assert.equal(proxies.status, 200)
      for (const p of Object.values(JSON.parse(proxies.text) as Record<string, { listen: string }>))
        assert.match(p.listen, /^(127\.0\.0\.1|\[::1\]):\d+$/, p.listen)
      // Back to the start for the next run: API proxies gone, faults cleared.
      for (const name of Object.keys(JSON.parse(proxies.text)))
        if (name !== 'web') await call('DELETE', `/proxies/${encodeURIComponent(name)}`)
      await call('POST', '/reset')
      await call('DELETE', '/apps/api/faults')
    }),
    300,
    10_000,
  )
  assert.equal((await call('GET', '/healthz')).status, 200)
  const failed = logs.filter((l) => l.msg === 'admin request failed')
  assert.deepEqual(failed, [], 'no request failed in a way sluice did not expect')
})

test("a toxic's attributes: refused, or values the fault can act on (time a timer waits)", async () => {
  const timeAttributes: Record<string, string[]> = {
    latency: ['latency', 'jitter'],
    slow_close: ['delay'],
    timeout: ['timeout'],
    reset_peer: ['timeout'],
    slicer: ['delay'],
    jitter: ['amplitude'],
  }
  const toxic = fc.constantFrom(...Object.keys(timeAttributes)).chain((type) =>
    fc.record({
      type: fc.constant(type),
      attribute: fc.constantFrom(...timeAttributes[type]!),
      value: fc.oneof(
        fc.nat({ max: 10_000 }),
        fc.double({ min: 0, max: 1e13, noNaN: true }),
        fc.constantFrom(2 ** 31 - 1, 2 ** 31, 3e9),
      ),
    }),
  )
  await checkAsync(
    fc.asyncProperty(toxic, async ({ type, attribute, value }) => {
      const body = JSON.stringify({ name: 'probe', type, attributes: { [attribute]: value } })
      const a = await call('POST', '/proxies/web/toxics', body, {
        'content-length': String(Buffer.byteLength(body)),
      })
      try {
        if (a.status !== 200) {
          assert.equal(a.status, 400, a.text)
          assert.equal((JSON.parse(a.text) as { code: string }).code, 'ERR_FAULT_INVALID')
          return
        }
        const f = running.controller
          .config!.apps.find((x) => x.name === 'web')!
          .faults.find((x) => x.name === 'probe')!
        for (const [k, v] of Object.entries(f))
          if (typeof v === 'number' && timeFields.has(k))
            assert.ok(v <= 2 ** 31 - 1, `${type}.${k} = ${v} from ${body}`)
      } finally {
        await call('DELETE', '/proxies/web/toxics/probe')
      }
    }),
    100,
  )
})
