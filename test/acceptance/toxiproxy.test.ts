// Acceptance: ../shared/acceptance/faults.md, the Toxiproxy-compatible API (T21-T27), against the
// built CLI; T27 drives it with the published toxiproxy-node-client package.
import assert from 'node:assert/strict'
import { createServer } from 'node:net'
import { before, test } from 'node:test'
import { Toxiproxy } from 'toxiproxy-node-client'
import { echoServer } from '../../src/testkit/fixtures.ts'
import { freePort } from '../../src/testkit/ports.ts'
import { exchange, openEcho, refused, type SluiceProcess, testScope, waitFor } from '../helpers.ts'

const t = testScope()
let sluice: SluiceProcess
let base = ''
let upstream = ''

before(async () => {
  const e = await t.fixture(echoServer())
  upstream = e.address
  sluice = await t.sluice(t.tmp.file('toxi.yaml', 'apps: []\n'), ['--log-level', 'info'])
  base = await sluice.admin()
})

async function api(method: string, path: string, body?: unknown, headers: Record<string, string> = {}) {
  const res = await fetch(`${base}${path}`, {
    method,
    headers: { ...(body === undefined ? {} : { 'content-type': 'application/json' }), ...headers },
    body: body === undefined ? undefined : typeof body === 'string' ? body : JSON.stringify(body),
  })
  const text = await res.text()
  let parsed: any = text
  try {
    parsed = text ? JSON.parse(text) : undefined
  } catch {}
  return { status: res.status, body: parsed, headers: res.headers }
}

const portOf = (listen: string) => Number(listen.split(':').pop())

test('T21: create with the real port; disable closes and refuses; enable accepts again', async () => {
  const r = await api('POST', '/proxies', { name: 't21', listen: 'localhost:0', upstream })
  assert.equal(r.status, 201)
  assert.deepEqual(Object.keys(r.body).sort(), ['enabled', 'listen', 'name', 'toxics', 'upstream'])
  assert.equal(r.body.enabled, true)
  assert.deepEqual(r.body.toxics, [])
  const port = portOf(r.body.listen)
  assert.ok(port > 0)
  assert.match(r.body.listen, /^127\.0\.0\.1:\d+$/)
  const c = await openEcho(port)
  assert.equal(await c.say('on'), 'on')
  let closed = false
  c.socket.on('close', () => {
    closed = true
  })
  const off = await api('PATCH', '/proxies/t21', { enabled: false })
  assert.equal(off.status, 200)
  assert.equal(off.body.enabled, false)
  await waitFor(() => closed, 'the open connection to close', 2000)
  assert.ok(await refused(port), 'refused while disabled')
  const on = await api('PATCH', '/proxies/t21', { enabled: true })
  assert.equal(on.body.enabled, true)
  assert.equal(portOf(on.body.listen), port, 'same port again')
  assert.equal((await exchange(port, 'again')).data.toString(), 'again')
  const dormant = await api('POST', '/proxies', {
    name: 't21-off',
    listen: `127.0.0.1:${await freePort()}`,
    upstream,
    enabled: false,
  })
  assert.equal(dormant.status, 201)
  assert.equal(dormant.body.enabled, false)
  assert.ok(await refused(portOf(dormant.body.listen)), 'a proxy created disabled does not listen')
})

test('T21b: enabled omitted or null (as the Ruby client sends it) creates an enabled, listening proxy', async () => {
  for (const [name, extra] of [
    ['t21-null', { enabled: null }],
    ['t21-omit', {}],
  ] as const) {
    const r = await api('POST', '/proxies', { name, listen: '127.0.0.1:0', upstream, ...extra })
    assert.equal(r.status, 201)
    assert.equal(r.body.enabled, true, name)
    assert.equal((await exchange(portOf(r.body.listen), name)).data.toString(), name, `${name} listens`)
  }
  const nulled = await api('PATCH', '/proxies/t21-null', { enabled: null })
  assert.equal(nulled.body.enabled, true, 'a null enabled in an update keeps the state')
  const pop = await api('POST', '/populate', [
    { name: 't21-pop', listen: '127.0.0.1:0', upstream, enabled: null },
  ])
  assert.equal(pop.status, 201)
  assert.equal(pop.body.proxies[0].enabled, true)
  for (const bad of ['yes', 1]) {
    const r = await api('POST', '/proxies', {
      name: 't21-bad',
      listen: '127.0.0.1:0',
      upstream,
      enabled: bad,
    })
    assert.equal(r.status, 400, `enabled: ${JSON.stringify(bad)}`)
    assert.match(r.body.error, /enabled/)
  }
  assert.equal((await api('GET', '/proxies/t21-bad')).status, 404, 'nothing was created')
})

test('T21d: a proxy created disabled says so and does not listen; enabled, it listens on the address it reported', async () => {
  const r = await api('POST', '/proxies', { name: 't21d', listen: '127.0.0.1:0', upstream, enabled: false })
  assert.equal(r.status, 201)
  assert.equal(r.body.enabled, false)
  const port = portOf(r.body.listen)
  assert.ok(await refused(port), 'nothing listens while disabled')
  const status = await api('GET', '/status')
  const app = status.body.apps.find((a: { name: string }) => a.name === 't21d')
  assert.equal(app.enabled, false)
  assert.deepEqual(app.listeners, [], '/status shows no listener for it')
  const on = await api('POST', '/proxies/t21d', { enabled: true })
  assert.equal(on.body.listen, r.body.listen)
  assert.equal((await exchange(port, 't21d')).data.toString(), 't21d')
})

test('T21c: null toxic fields (name, stream, toxicity, attributes, one attribute) take the defaults, as in Toxiproxy', async () => {
  const p = await api('POST', '/proxies', { name: 't21c', listen: '127.0.0.1:0', upstream })
  assert.equal(p.status, 201)
  const r = await api('POST', '/proxies/t21c/toxics', {
    name: null,
    type: 'latency',
    stream: null,
    toxicity: null,
    attributes: null,
  })
  assert.equal(r.status, 200, JSON.stringify(r.body))
  assert.deepEqual(
    [r.body.name, r.body.stream, r.body.toxicity, r.body.attributes.latency],
    ['latency_downstream', 'downstream', 1, 0],
  )
  const u = await api('POST', '/proxies/t21c/toxics/latency_downstream', {
    toxicity: null,
    attributes: { latency: 40, jitter: null },
  })
  assert.equal(u.status, 200)
  assert.deepEqual([u.body.toxicity, u.body.attributes.latency, u.body.attributes.jitter], [1, 40, 0])
  const v = await api('POST', '/proxies/t21c/toxics/latency_downstream', { attributes: { latency: null } })
  assert.equal(v.body.attributes.latency, 40, 'a null attribute in an update keeps its value')
  const w = await api('POST', '/proxies/t21c/toxics', { type: 'bandwidth', attributes: { rate: null } })
  assert.equal(w.status, 200)
  assert.equal(w.body.attributes.rate, 0)
})

test('T22: errors have Toxiproxy codes and messages', async () => {
  const cases: [unknown, number, string][] = [
    [{ name: '', upstream }, 400, 'missing required field: name'],
    [{ name: 't22', upstream: '' }, 400, 'missing required field: upstream'],
  ]
  for (const [body, status, error] of cases) {
    const r = await api('POST', '/proxies', body)
    assert.equal(r.status, status)
    assert.deepEqual({ error: r.body.error, status: r.body.status }, { error, status })
  }
  assert.equal((await api('POST', '/proxies', { name: 't22', listen: '127.0.0.1:0', upstream })).status, 201)
  const dup = await api('POST', '/proxies', { name: 't22', listen: '127.0.0.1:0', upstream })
  assert.equal(dup.status, 409)
  assert.equal(dup.body.error, 'proxy already exists')
  const squat = createServer().listen(0, '127.0.0.1')
  await new Promise((r) => squat.once('listening', r))
  t.defer(() => squat.close())
  const busyPort = (squat.address() as { port: number }).port
  const busy = await api('POST', '/proxies', { name: 't22b', listen: `127.0.0.1:${busyPort}`, upstream })
  assert.equal(busy.status, 500)
  assert.match(busy.body.error, new RegExp(`127\\.0\\.0\\.1:${busyPort}.*already in use`))
  // A port another proxy holds: a bind error in Toxiproxy's terms too (500, ERR_LISTEN), told apart
  // from other config problems by the code, not its wording.
  const first = await api('GET', '/proxies/t22')
  const twice = await api('POST', '/proxies', { name: 't22c', listen: first.body.listen, upstream })
  assert.equal(twice.status, 500)
  assert.equal(twice.body.code, 'ERR_LISTEN')
  assert.match(twice.body.error, /^listen tcp: /)
  const gone = await api('DELETE', '/proxies/nope')
  assert.equal(gone.status, 404)
  assert.deepEqual(
    { error: gone.body.error, status: gone.body.status },
    { error: 'proxy not found', status: 404 },
  )
  const garbage = await api('POST', '/proxies', '{not json')
  assert.equal(garbage.status, 400)
  assert.match(garbage.body.error, /^bad request body/)
})

test('T23: toxic defaults, conflicts, invalid streams, partial updates, delete', async () => {
  await api('POST', '/proxies', { name: 't23', listen: '127.0.0.1:0', upstream })
  const a = await api('POST', '/proxies/t23/toxics', {
    type: 'latency',
    attributes: { latency: 100, jitter: 10 },
  })
  assert.equal(a.status, 200)
  assert.deepEqual(a.body, {
    name: 'latency_downstream',
    type: 'latency',
    stream: 'downstream',
    toxicity: 1,
    attributes: { latency: 100, jitter: 10 },
  })
  const clash = await api('POST', '/proxies/t23/toxics', {
    name: 'latency_downstream',
    type: 'latency',
    stream: 'upstream',
  })
  assert.equal(clash.status, 409)
  assert.equal(clash.body.error, 'toxic already exists')
  const walrus = await api('POST', '/proxies/t23/toxics', { type: 'latency', stream: 'walrustream' })
  assert.equal(walrus.status, 400)
  assert.equal(walrus.body.error, 'stream was invalid, can be either upstream or downstream')
  const kind = await api('POST', '/proxies/t23/toxics', { type: 'catapult' })
  assert.equal(kind.status, 400)
  assert.equal(kind.body.error, 'invalid toxic type')
  await api('PATCH', '/proxies/t23/toxics/latency_downstream', {
    attributes: { latency: 1000 },
    toxicity: 0.5,
  })
  const u = await api('PATCH', '/proxies/t23/toxics/latency_downstream', { attributes: { latency: 500 } })
  assert.equal(u.status, 200)
  assert.deepEqual(u.body.attributes, { latency: 500, jitter: 10 })
  assert.equal(u.body.toxicity, 0.5)
  const del = await api('DELETE', '/proxies/t23/toxics/latency_downstream')
  assert.equal(del.status, 204)
  assert.equal((await api('GET', '/proxies/t23/toxics/latency_downstream')).status, 404)
  assert.deepEqual((await api('GET', '/proxies/t23/toxics')).body, [])
})

test('T23c: null fields keep their defaults, as Go decodes them; stream is case-insensitive', async () => {
  await api('POST', '/proxies', { name: 't23c', listen: '127.0.0.1:0', upstream })
  // Go's decoder leaves a field as it was for a JSON null: stream downstream, toxicity 1 on create;
  // on an update, the toxicity and attributes the toxic has.
  const a = await api('POST', '/proxies/t23c/toxics', {
    name: null,
    type: 'latency',
    stream: null,
    toxicity: null,
    attributes: { latency: 100, jitter: null },
  })
  assert.equal(a.status, 200, JSON.stringify(a.body))
  assert.deepEqual(a.body, {
    name: 'latency_downstream',
    type: 'latency',
    stream: 'downstream',
    toxicity: 1,
    attributes: { latency: 100, jitter: 0 },
  })
  await api('PATCH', '/proxies/t23c/toxics/latency_downstream', { toxicity: 0.25 })
  const u = await api('PATCH', '/proxies/t23c/toxics/latency_downstream', {
    toxicity: null,
    attributes: { latency: null, jitter: 5 },
  })
  assert.equal(u.status, 200, JSON.stringify(u.body))
  assert.equal(u.body.toxicity, 0.25)
  assert.deepEqual(u.body.attributes, { latency: 100, jitter: 5 })
  const odd = await api('PATCH', '/proxies/t23c/toxics/latency_downstream', { attributes: 'latency' })
  assert.equal(odd.status, 400, 'attributes that are not an object')
  // ParseDirection lower-cases the stream; the default name keeps it as sent.
  const up = await api('POST', '/proxies/t23c/toxics', { type: 'latency', stream: 'UpStream' })
  assert.equal(up.status, 200, JSON.stringify(up.body))
  assert.equal(up.body.name, 'latency_UpStream')
  assert.equal(up.body.stream, 'upstream')
})

test('T23b: a toxic missing a required attribute, or with a misspelt or out-of-range one, is a 400 naming it', async () => {
  await api('POST', '/proxies', { name: 't23b', listen: '127.0.0.1:0', upstream })
  const cases: [Record<string, unknown>, RegExp][] = [
    [{ type: 'packet_loss' }, /attribute rate is required/],
    [{ type: 'packet_loss', attributes: { rate: 2 } }, /attribute rate must be a number between 0 and 1/],
    [
      { type: 'latency', attributes: { latncy: 100 } },
      /unknown attribute latncy \(latency takes: latency, jitter/,
    ],
    [{ type: 'limit_data', attributes: { bytes: -1 } }, /attribute bytes must be a number/],
    // Past 2^31-1 ms a timer fires after 1 ms: a timeout toxic of 35 days would close at once.
    [
      { type: 'timeout', attributes: { timeout: 3e9 } },
      /attribute timeout must be a number between 0 and 2147483647/,
    ],
    [{ type: 'latency', attributes: { latency: 2 ** 31 } }, /attribute latency must be a number between 0/],
  ]
  for (const [body, error] of cases) {
    const r = await api('POST', '/proxies/t23b/toxics', body)
    assert.equal(r.status, 400, JSON.stringify(body))
    assert.match(r.body.error, error)
  }
  assert.deepEqual((await api('GET', '/proxies/t23b/toxics')).body, [], 'nothing was added')
  const ok = await api('POST', '/proxies/t23b/toxics', { type: 'packet_loss', attributes: { rate: 0.5 } })
  assert.equal(ok.status, 200)
  const typo = await api('PATCH', '/proxies/t23b/toxics/packet_loss_downstream', { attributes: { rat: 0.1 } })
  assert.equal(typo.status, 400)
  assert.match(typo.body.error, /unknown attribute rat/)
})

test('T24: reset enables every proxy and removes every toxic', async () => {
  const r = await api('POST', '/proxies', { name: 't24', listen: '127.0.0.1:0', upstream })
  await api('POST', '/proxies/t24/toxics', { type: 'latency', attributes: { latency: 50 } })
  await api('PATCH', '/proxies/t24', { enabled: false })
  assert.equal((await api('POST', '/reset')).status, 204)
  const after = await api('GET', '/proxies/t24')
  assert.equal(after.body.enabled, true)
  assert.deepEqual(after.body.toxics, [])
  assert.equal((await exchange(portOf(r.body.listen), 'up')).data.toString(), 'up')
})

test('T25: populate creates, keeps what matches, checks names first, stops at the first failure', async () => {
  const [p1, p2] = [await freePort(), await freePort()]
  const list = [
    { name: 'pop1', listen: `127.0.0.1:${p1}`, upstream },
    { name: 'pop2', listen: `127.0.0.1:${p2}`, upstream },
  ]
  const a = await api('POST', '/populate', list)
  assert.equal(a.status, 201)
  assert.deepEqual(
    a.body.proxies.map((p: { name: string }) => p.name),
    ['pop1', 'pop2'],
  )
  assert.equal((await exchange(p1, 'one')).data.toString(), 'one')
  assert.equal((await exchange(p2, 'two')).data.toString(), 'two')
  await api('POST', '/proxies/pop1/toxics', { name: 'keepme', type: 'latency', attributes: { latency: 1 } })
  const b = await api('POST', '/populate', list)
  assert.equal(b.status, 201)
  assert.deepEqual(
    (await api('GET', '/proxies/pop1/toxics')).body.map((x: { name: string }) => x.name),
    ['keepme'],
  )
  const c = await api('POST', '/populate', [
    { name: 'pop3', listen: '127.0.0.1:0', upstream },
    { listen: '127.0.0.1:0', upstream },
  ])
  assert.equal(c.status, 400)
  assert.equal(c.body.error, 'missing required field: name at proxy 2')
  assert.equal((await api('GET', '/proxies/pop3')).status, 404, 'nothing created')
  const d = await api('POST', '/populate', [
    { name: 'pop4', listen: '127.0.0.1:0', upstream },
    { name: 'pop5', listen: 'local373', upstream },
  ])
  assert.ok(d.status >= 400, `status ${d.status}`)
  assert.ok(d.body.error)
  assert.equal((await api('GET', '/proxies/pop4')).status, 200, 'the entry before the bad one exists')
  assert.equal((await api('GET', '/proxies/pop5')).status, 404)
})

test('T26: version, request ids, and no browsers', async () => {
  const v = await api('GET', '/version')
  assert.equal(v.status, 200)
  assert.match(v.body.version, /^2\.\d+\.\d+/)
  assert.ok(v.headers.get('x-toxiproxy-request-id'))
  const p = await api('GET', '/proxies')
  assert.ok(p.headers.get('x-toxiproxy-request-id'))
  assert.notEqual(p.headers.get('x-toxiproxy-request-id'), v.headers.get('x-toxiproxy-request-id'))
  const browser = await api('GET', '/proxies', undefined, { 'user-agent': 'Mozilla/5.0 (X11; Linux x86_64)' })
  assert.equal(browser.status, 403)
  const status = await api('GET', '/status', undefined, { 'user-agent': 'Mozilla/5.0' })
  assert.equal(status.status, 200, "sluice's own routes stay open to browsers")
})

test('T27: the published toxiproxy-node-client drives sluice end to end', async () => {
  const toxiproxy = new Toxiproxy(base)
  assert.match(await toxiproxy.getVersion(), /version/)
  const proxy = await toxiproxy.createProxy({ name: 't27', listen: 'localhost:0', upstream })
  assert.equal(proxy.name, 't27')
  const port = portOf(proxy.listen)
  const types: [string, Record<string, number>][] = [
    ['latency', { latency: 10, jitter: 1 }],
    ['bandwidth', { rate: 1000 }],
    ['slow_close', { delay: 10 }],
    ['timeout', { timeout: 5000 }],
    ['slicer', { average_size: 64, size_variation: 8, delay: 100 }],
    ['limit_data', { bytes: 100_000 }],
    ['reset_peer', { timeout: 60_000 }],
    ['down', {}],
  ]
  const made = []
  for (const [type, attributes] of types) {
    const toxic = await proxy.addToxic({
      name: `${type}_t27`,
      type: type as never,
      stream: 'upstream',
      toxicity: 0.5,
      attributes,
    })
    assert.equal(toxic.type, type)
    assert.equal(toxic.toxicity, 0.5)
    assert.deepEqual(toxic.attributes, attributes)
    made.push(toxic)
  }
  const all = await toxiproxy.getAll()
  assert.ok(all.t27)
  const fetched = await (await toxiproxy.get('t27')).getToxic('slicer_t27')
  assert.deepEqual(fetched.attributes, { average_size: 64, size_variation: 8, delay: 100 })
  const count = async () => (await api('GET', '/proxies/t27/toxics')).body.length
  assert.equal(await count(), types.length)
  const updated = await made[0]!.update({
    name: 'latency_t27',
    type: 'latency',
    stream: 'upstream',
    toxicity: 1,
    attributes: { latency: 20, jitter: 1 },
  } as never)
  assert.deepEqual(updated.attributes, { latency: 20, jitter: 1 })
  for (const toxic of made.slice(1)) await toxic.remove()
  assert.equal(await count(), 1)
  const disabled = await proxy.update({ enabled: false, listen: proxy.listen, upstream })
  assert.equal(disabled.enabled, false)
  await toxiproxy.reset()
  const back = await toxiproxy.get('t27')
  assert.equal(back.enabled, true)
  assert.equal(await count(), 0)
  assert.equal((await exchange(port, 'client')).data.toString(), 'client')
  const populated = await toxiproxy.populate([{ name: 't27b', listen: '127.0.0.1:0', upstream }])
  assert.ok(populated.t27b)
  await back.remove()
  assert.ok(await refused(port))
  // Proxies made through the API are apps of the engine: visible in status and metrics.
  const status = await api('GET', '/status')
  assert.ok(
    status.body.apps.some((a: { name: string; origin: string }) => a.name === 't27b' && a.origin === 'api'),
  )
})
