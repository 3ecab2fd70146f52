// The tcp service's behaviours, with sluice's engine running in this process and real sockets.
import assert from 'node:assert/strict'
import { connect } from 'node:net'
import { test } from 'node:test'
import { echoServer, identServer } from '../../src/testkit/fixtures.ts'
import { freePort } from '../../src/testkit/ports.ts'
import { blackhole, exchange, openEcho, testScope, waitFor } from '../helpers.ts'

const t = testScope()
const fixture = t.fixture
const run = t.engine

test('max_connections: connections over the cap are reset and counted', async () => {
  const e1 = await fixture(echoServer())
  const port = await freePort()
  const e = await run({
    apps: [{ name: 'capped', listen: [port], targets: [e1.address], max_connections: 2 }],
  })
  const a = await openEcho(port)
  const b = await openEcho(port)
  assert.equal(await a.say('a'), 'a')
  assert.equal(await b.say('b'), 'b')
  const third = await exchange(port, 'c')
  assert.equal(third.error, 'ECONNRESET')
  assert.equal(
    await e.metric('sluice_connections_rejected_total', { app: 'capped', reason: 'max_connections' }),
    1,
  )
  a.socket.destroy()
  await waitFor(
    async () => (await exchange(port, 'd')).data.toString() === 'd',
    'a free slot after one closes',
  )
  b.socket.destroy()
})

test('connect_timeout: a target that never answers is abandoned and the next one used', async () => {
  const hole = await blackhole()
  t.defer(() => hole.close())
  const e1 = await fixture(echoServer())
  const port = await freePort()
  const e = await run({
    apps: [
      {
        name: 'slow',
        listen: [port],
        targets: [`127.0.0.1:${hole.port}`, e1.address],
        connect_timeout: '200ms',
        passive: false,
      },
    ],
  })
  const t0 = Date.now()
  const r = await exchange(port, 'through')
  const took = Date.now() - t0
  assert.equal(r.data.toString(), 'through')
  assert.ok(took >= 180 && took < 2000, `took ${took}ms`)
  assert.equal(
    await e.metric('sluice_upstream_connect_failures_total', { app: 'slow', reason: 'timeout' }),
    1,
  )
  assert.equal(await e.metric('sluice_upstream_retries_total', { app: 'slow' }), 1)
})

test('connect_budget: when the budget runs out the client is reset without trying further', async () => {
  const hole = await blackhole()
  t.defer(() => hole.close())
  const e1 = await fixture(echoServer())
  const port = await freePort()
  const e = await run({
    apps: [
      {
        name: 'budget',
        listen: [port],
        targets: [`127.0.0.1:${hole.port}`, e1.address],
        connect_timeout: '2s',
        connect_budget: '300ms',
        passive: false,
      },
    ],
  })
  const t0 = Date.now()
  const r = await exchange(port, 'x')
  assert.equal(r.error, 'ECONNRESET')
  assert.ok(Date.now() - t0 < 1500)
  assert.equal(e1.accepted, 0)
  const line = await waitFor(
    () => e.logs.find((l) => String(l.msg).startsWith('no target reachable')),
    'the log',
  )
  assert.match(JSON.stringify(line.attempts), /connect_budget of 300ms spent/)
})

test('idle_timeout closes connections with no traffic; active ones live on', async () => {
  const e1 = await fixture(echoServer())
  const port = await freePort()
  await run({ apps: [{ name: 'idle', listen: [port], targets: [e1.address], idle_timeout: '300ms' }] })
  const quiet = await openEcho(port)
  const busy = await openEcho(port)
  let quietClosed = false
  quiet.socket.on('close', () => {
    quietClosed = true
  })
  const t0 = Date.now()
  while (Date.now() - t0 < 700) {
    assert.equal(await busy.say('.'), '.')
    await new Promise((r) => setTimeout(r, 50))
  }
  assert.equal(quietClosed, true)
  assert.equal(busy.socket.destroyed, false)
  busy.socket.destroy()
})

test('hash: one client address always reaches the same target; addresses spread', async () => {
  const ids = await Promise.all(['h1', 'h2', 'h3'].map((name) => fixture(identServer({ name }))))
  const port = await freePort()
  await run({
    apps: [{ name: 'hash', listen: [port], targets: ids.map((f) => f.address), strategy: 'hash' }],
  })
  const firstLine = async (localAddress: string) => {
    const r = await exchange(port, '', { localAddress, timeoutMs: 2000 })
    assert.equal(r.error, null, localAddress)
    return r.data.toString().split('\n')[0]!
  }
  const seen = new Set<string>()
  for (let i = 1; i <= 12; i++) {
    const client = `127.0.0.${i}`
    const first = await firstLine(client)
    assert.match(first, /^h[123]$/)
    seen.add(first)
    for (let j = 0; j < 3; j++) assert.equal(await firstLine(client), first, client)
  }
  assert.ok(seen.size >= 2, `12 client addresses all hashed to ${[...seen]}`)
})

test('a client that half-closes before the upstream is connected still gets its EOF', async () => {
  const e1 = await fixture(echoServer())
  const port = await freePort()
  await run({ apps: [{ name: 'fin', listen: [port], targets: [e1.address] }] })
  const r = await exchange(port, '', { timeoutMs: 2000 })
  assert.equal(r.error, null)
  assert.equal(r.data.length, 0)
})

test('least-connections sends new connections away from a busy target', async () => {
  const [a, b] = [await fixture(identServer({ name: 'a' })), await fixture(identServer({ name: 'b' }))]
  const port = await freePort()
  await run({
    apps: [{ name: 'lc', listen: [port], targets: [a.address, b.address], strategy: 'least-connections' }],
  })
  const held = await Promise.all([openEcho(port), openEcho(port)])
  await waitFor(() => a.sockets.size === 1 && b.sockets.size === 1, 'one held connection on each')
  const more = await Promise.all([openEcho(port), openEcho(port)])
  await waitFor(() => a.sockets.size === 2 && b.sockets.size === 2, 'spread evenly')
  // Free both of a's: the next two new connections go to a.
  for (const h of [...held, ...more]) {
    await waitFor(() => h.socket.remoteAddress, 'connected')
  }
  for (const s of [...a.sockets]) s.destroy()
  await waitFor(() => a.sockets.size === 0, 'a emptied')
  await new Promise((r) => setTimeout(r, 50))
  const next = await Promise.all([openEcho(port), openEcho(port)])
  await waitFor(() => a.sockets.size === 2, 'the two new connections on a')
  for (const h of [...held, ...more, ...next]) h.socket.destroy()
})

test('a port-only listen accepts on IPv4 and IPv6; a [::1] listen on IPv6', async () => {
  const e1 = await fixture(echoServer())
  const [p1, p2] = [await freePort(), await freePort()]
  await run({ apps: [{ name: 'v6', listen: [p1, `[::1]:${p2}`], targets: [e1.address] }] })
  assert.equal((await exchange(p1, 'v4')).data.toString(), 'v4')
  assert.equal((await exchange(p1, 'v6', { host: '::1' })).data.toString(), 'v6')
  assert.equal((await exchange(p2, 'v6 only', { host: '::1' })).data.toString(), 'v6 only')
})

test('client data sent before the upstream connects is not lost', async () => {
  const hole = await blackhole()
  t.defer(() => hole.close())
  const e1 = await fixture(echoServer())
  const port = await freePort()
  await run({
    apps: [
      {
        name: 'early',
        listen: [port],
        targets: [`127.0.0.1:${hole.port}`, e1.address],
        connect_timeout: '200ms',
      },
    ],
  })
  const r = await new Promise<string>((resolve) => {
    let got = ''
    const s = connect(port, '127.0.0.1', () => {
      s.write('first ')
      s.write('second')
      s.end()
    })
    s.setEncoding('utf8')
    s.on('data', (d: string) => (got += d))
    s.on('end', () => resolve(got))
  })
  assert.equal(r, 'first second')
})

test('postgres_client_ssl: refuse answers each SSLRequest with N; bytes before a FIN are not lost', async () => {
  const e1 = await fixture(echoServer())
  const port = await freePort()
  await run({
    apps: [
      { name: 'pg', listen: [`127.0.0.1:${port}`], targets: [e1.address], postgres_client_ssl: 'refuse' },
    ],
  })
  const ssl = '0000000804d2162f'
  const cases: [string, string][] = [
    [`${ssl}${ssl}41424344454647`, `4e4e41424344454647`],
    // Fewer bytes than a request, then FIN: they are still the client's data.
    ['00', '00'],
    ['0000000804d2', '0000000804d2'],
    [`${ssl}41`, '4e41'],
  ]
  for (const [sent, want] of cases) {
    const r = await exchange(port, Buffer.from(sent, 'hex'), { host: '127.0.0.1' })
    assert.equal(r.data.toString('hex'), want, sent)
  }
})
