import assert from 'node:assert/strict'
import { createServer, type Server } from 'node:net'
import { after, test } from 'node:test'
import { checkOnce, type HealthChange, HealthMonitor } from '../../src/balance/health.ts'
import { normalizeConfigObject } from '../../src/config/normalize.ts'
import { DnsCache } from '../../src/net/dns.ts'
import { echoServer } from '../../src/testkit/fixtures.ts'
import { freePort } from '../../src/testkit/ports.ts'
import { waitFor } from '../helpers.ts'

const dns = new DnsCache({ ttl: 30_000, minTtl: 1000, maxTtl: 3_600_000, negativeTtl: 2000, timeout: 1000 })
const servers: Server[] = []
after(() => {
  for (const s of servers) s.close()
})

/** A server that answers each connection with `reply(data)`. */
async function server(reply: (data: string) => string | null): Promise<string> {
  const s = createServer((c) => {
    c.on('error', () => {})
    c.on('data', (d) => {
      const r = reply(d.toString())
      if (r !== null) c.write(r)
    })
  })
  servers.push(s)
  await new Promise<void>((r) => s.listen(0, '127.0.0.1', () => r()))
  return `127.0.0.1:${(s.address() as { port: number }).port}`
}

const target = (key: string) => ({
  host: key.split(':')[0]!,
  port: Number(key.split(':')[1]),
  weight: 1,
  key,
  tls: null,
  starttls: null,
  faults: [],
})
const spec = (more: Partial<{ send: string | null; expect: string | null; timeout: number }> = {}) => ({
  interval: 1000,
  timeout: 300,
  rise: 2,
  fall: 2,
  send: null,
  expect: null,
  ...more,
})

test('a TCP connect check passes on a listening port and fails on a closed one', async () => {
  const e = await echoServer()
  after(() => e.close())
  assert.deepEqual(await checkOnce(target(e.address), spec(), dns), { ok: true, detail: 'connected' })
  const dead = await checkOnce(target(`127.0.0.1:${await freePort()}`), spec(), dns)
  assert.equal(dead.ok, false)
  assert.match(dead.detail, /^refused/)
})

test('send/expect passes on the expected reply and fails on another or on silence', async () => {
  const redisLike = await server((d) => (d === 'PING\r\n' ? '+PONG\r\n' : '-ERR unknown\r\n'))
  const silent = await server(() => null)
  assert.equal(
    (await checkOnce(target(redisLike), spec({ send: 'PING\r\n', expect: '+PONG' }), dns)).ok,
    true,
  )
  const wrong = await checkOnce(target(redisLike), spec({ send: 'HELLO\r\n', expect: '+PONG' }), dns)
  assert.equal(wrong.ok, false)
  assert.match(wrong.detail, /no "\+PONG"|closed without/)
  const quiet = await checkOnce(
    target(silent),
    spec({ send: 'PING\r\n', expect: '+PONG', timeout: 200 }),
    dns,
  )
  assert.deepEqual(quiet, { ok: false, detail: 'no "+PONG" within timeout' })
})

test('the monitor marks a target down after `fall` failures and up after `rise` successes', async () => {
  let e = await echoServer()
  const port = e.port
  const changes: HealthChange[] = []
  const monitor = new HealthMonitor(dns, (c) => changes.push(c))
  after(() => monitor.stop())
  const config = normalizeConfigObject({
    admin: false,
    apps: [
      {
        name: 'a',
        listen: [1],
        targets: [e.address],
        health: { interval: '50ms', timeout: '40ms', rise: 2, fall: 3 },
      },
    ],
  })
  monitor.sync(config.apps)
  await waitFor(() => monitor.status('a', e.address)?.lastCheck === 'connected', 'a first passing check')
  assert.equal(changes.length, 0)
  await e.close()
  await waitFor(() => changes.length === 1, 'the down transition', 3000)
  assert.equal(changes[0]!.up, false)
  assert.match(changes[0]!.detail, /refused/)
  e = await echoServer({ port })
  after(() => e.close())
  await waitFor(() => changes.length === 2, 'the up transition', 3000)
  assert.equal(changes[1]!.up, true)
  // Removing the health section reports the target up and stops checking.
  monitor.sync(
    normalizeConfigObject({ admin: false, apps: [{ name: 'a', listen: [1], targets: [e.address] }] }).apps,
  )
  assert.equal(monitor.status('a', e.address), null)
})
