// Plan/apply in the data path: atomic binds, listeners surviving reloads, moves between apps.
import assert from 'node:assert/strict'
import { createServer } from 'node:net'
import { test } from 'node:test'
import { echoServer, identServer } from '../../src/testkit/fixtures.ts'
import { freePort } from '../../src/testkit/ports.ts'
import { engine, exchange, openEcho, refused, testScope } from '../helpers.ts'

const t = testScope()
const fixture = t.fixture

test('a plan that cannot bind one address changes nothing, and says which address', async () => {
  const e1 = await fixture(echoServer())
  const [p1, p2, busy] = [await freePort(), await freePort(), await freePort()]
  const squatter = createServer().listen(busy, '127.0.0.1')
  t.defer(() => squatter.close())
  const e = await engine({ apps: [{ name: 'a', listen: [p1], targets: [e1.address] }] })
  t.defer(() => e.stop())
  await assert.rejects(
    e.apply({
      apps: [
        { name: 'a', listen: [p1], targets: ['127.0.0.1:1'] },
        { name: 'b', listen: [p2, `127.0.0.1:${busy}`], targets: [e1.address] },
      ],
    }),
    {
      code: 'ERR_RELOAD',
      message: new RegExp(`cannot listen on 127\\.0\\.0\\.1:${busy}: the address is already in use`),
    },
  )
  assert.ok(await refused(p2), 'the address bound before the failure was released')
  assert.equal((await exchange(p1, 'old')).data.toString(), 'old', 'app a still routes to its old target')
  assert.deepEqual(
    e.controller.config?.apps.map((a) => a.name),
    ['a'],
  )
})

test('a listener whose address stays keeps its socket and connections across reloads', async () => {
  const [e1, e2] = [await fixture(echoServer()), await fixture(echoServer())]
  const port = await freePort()
  const e = await engine({ apps: [{ name: 'a', listen: [port], targets: [e1.address] }] })
  t.defer(() => e.stop())
  const before = e.controller.supervisor.listeners.get(`*:${port}`)!
  const c = await openEcho(port)
  await e.apply({ apps: [{ name: 'a', listen: [port], targets: [e2.address], strategy: 'random' }] })
  assert.equal(
    e.controller.supervisor.listeners.get(`*:${port}`),
    before,
    'same Listener object, same socket',
  )
  assert.equal(await c.say('kept'), 'kept')
  c.socket.destroy()
})

test('a port moving from one app to another is handed over without closing it', async () => {
  const [a, b] = [await fixture(identServer({ name: 'A' })), await fixture(identServer({ name: 'B' }))]
  const [p1, p2] = [await freePort(), await freePort()]
  const e = await engine({
    apps: [
      { name: 'a', listen: [p1, p2], targets: [a.address] },
      { name: 'b', listen: [await freePort()], targets: [b.address] },
    ],
  })
  t.defer(() => e.stop())
  const held = await openEcho(p2)
  await e.apply({
    apps: [
      { name: 'a', listen: [p1], targets: [a.address] },
      { name: 'b', listen: [p2], targets: [b.address] },
    ],
  })
  assert.equal((await exchange(p2, '')).data.toString(), 'B\n')
  assert.equal(await held.say('x'), 'x', 'the connection accepted for a stays with a')
  held.socket.destroy()
})

test('a wildcard port replaced by a specific address on the same port is rebound', async () => {
  const e1 = await fixture(echoServer())
  const port = await freePort()
  const e = await engine({ apps: [{ name: 'a', listen: [port], targets: [e1.address] }] })
  t.defer(() => e.stop())
  const r = await e.apply({ apps: [{ name: 'a', listen: [`127.0.0.1:${port}`], targets: [e1.address] }] })
  assert.equal(r.result, 'applied')
  assert.equal(r.error, undefined)
  assert.equal((await exchange(port, 'v4')).data.toString(), 'v4')
  assert.ok(await refused(port, '::1'), 'no longer on IPv6')
})

test('status shows apps, listeners, targets and the last reload', async () => {
  const e1 = await fixture(echoServer())
  const port = await freePort()
  const e = await engine({
    apps: [{ name: 'a', listen: [port], targets: [e1.address, '127.0.0.1:1'], max_connections: 9 }],
  })
  t.defer(() => e.stop())
  const c = await openEcho(port)
  assert.equal(await c.say('up'), 'up')
  const s = e.controller.status()
  const app = s.apps[0]!
  assert.equal(app.name, 'a')
  assert.equal(app.maxConnections, 9)
  assert.deepEqual(
    app.listeners.map((l) => [l.address, l.activeConnections]),
    [[`*:${port}`, 1]],
  )
  assert.deepEqual(
    app.targets.map((t) => [t.address, t.up, t.activeConnections]),
    [
      [e1.address, true, 1],
      ['127.0.0.1:1', true, 0],
    ],
  )
  assert.equal(s.lastReload?.result, 'applied')
  assert.equal(s.state, 'running')
  c.socket.destroy()
})
