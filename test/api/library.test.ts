// sluice as a library: the README's example (examples/library.test.ts, which imports 'sluice' by
// its package name) runs against a real PostgreSQL, and the API's own promises hold.
import assert from 'node:assert/strict'
import { execFile } from 'node:child_process'
import { readFileSync } from 'node:fs'
import { join } from 'node:path'
import { test } from 'node:test'
import { promisify } from 'node:util'
import { type ConfigDocument, start } from '../../src/api/index.ts'
import { echoServer } from '../../src/testkit/fixtures.ts'
import { exchange, root, testScope } from '../helpers.ts'
import { startPostgres } from '../postgres.ts'

const t = testScope()

test("the README's example runs as written: node --test against PostgreSQL through a fault", async () => {
  const readme = readFileSync(join(root, 'README.md'), 'utf8')
  const file = readFileSync(join(root, 'examples', 'library.test.ts'), 'utf8')
  assert.ok(readme.includes(file.trim()), 'README shows examples/library.test.ts as it is')
  const pg = await startPostgres()
  t.defer(() => pg.stop())
  const node = process.execPath
  // A test run of its own (NODE_TEST_CONTEXT would make it report to this one instead).
  const { NODE_TEST_CONTEXT: _, ...parent } = process.env
  const example = join(root, 'examples', 'library.test.ts')
  const r = await promisify(execFile)(node, ['--test', '--test-reporter=tap', example], {
    env: {
      ...parent,
      PGHOST: '127.0.0.1',
      PGPORT: String(pg.port),
      PGUSER: 'postgres',
      PGSSLMODE: 'disable',
    },
    timeout: 60_000,
  }).catch((err: { stdout: string; stderr: string }) => {
    throw new Error(`the example failed:\n${err.stdout}\n${err.stderr}`)
  })
  assert.match(r.stdout, /# pass 1/)
  assert.match(r.stdout, /# fail 0/)
})

test('start(): port 0 is reported back, apply() reloads, faults come and go, status, metrics, close', async () => {
  const e = await t.fixture(echoServer())
  const s = await start({ config: { apps: [{ name: 'a', listen: ['127.0.0.1:0'], targets: [e.address] }] } })
  let closed = false
  t.defer(() => (closed ? undefined : s.close()))
  const port = s.port('a')
  assert.ok(port > 0)
  assert.equal((await exchange(port, 'hi')).data.toString(), 'hi')
  const f = await s.addFault('a', { type: 'limit_data', bytes: 2 })
  assert.equal(f.type, 'limit_data')
  assert.equal((await exchange(port, 'hello')).data.toString(), 'he')
  await assert.rejects(s.addFault('a', { type: 'latency', latency: 'soon' }), { code: 'ERR_FAULT_INVALID' })
  await s.removeFault('a', String(f.name))
  assert.equal((await exchange(port, 'hello')).data.toString(), 'hello')
  // apply(): a second app on another free port; the first keeps its port.
  await s.apply({
    apps: [
      { name: 'a', listen: [`127.0.0.1:${port}`], targets: [e.address] },
      { name: 'b', listen: ['127.0.0.1:0'], targets: [e.address] },
    ],
  })
  assert.equal(s.port('a'), port)
  assert.equal((await exchange(s.port('b'), 'b')).data.toString(), 'b')
  // The types refuse this; a caller from JavaScript gets a ConfigError naming the fields.
  const bad = { apps: [{ name: 'a' }] } as unknown as ConfigDocument
  await assert.rejects(s.apply(bad), { code: 'ERR_CONFIG_INVALID' })
  assert.equal((await exchange(port, 'still')).data.toString(), 'still', 'a bad config changes nothing')
  const status = s.status()
  assert.deepEqual(
    status.apps.map((a) => a.name),
    ['a', 'b'],
  )
  assert.match(await s.metrics(), /sluice_connections_accepted_total\{app="a"/)
  assert.throws(() => s.port('nope'), { code: 'ERR_NOT_FOUND' })
  await s.close()
  closed = true
  assert.notEqual((await exchange(port, 'x', { timeoutMs: 1000 })).error, null)
})

test('apply() with port 0 keeps the port it chose; port(app, i) follows the listen order', async () => {
  const e = await t.fixture(echoServer())
  const doc = (extra: Record<string, unknown> = {}) => ({
    apps: [{ name: 'a', listen: ['127.0.0.1:0'], targets: [e.address], ...extra }],
  })
  const s = await start({ config: doc() })
  t.defer(() => s.close())
  const first = s.port('a')
  await s.apply(doc({ max_connections: 5 }))
  assert.equal(s.port('a'), first, 'the same listen entry keeps its port across apply()')
  assert.equal((await exchange(first, 'kept')).data.toString(), 'kept')
  await s.apply({
    apps: [{ name: 'a', listen: ['127.0.0.1:0', `127.0.0.1:${first}`], targets: [e.address] }],
  })
  assert.equal(s.port('a', 1), first)
  assert.notEqual(s.port('a', 0), first)
  assert.deepEqual(s.ports().a, [s.port('a', 0), first])
  // Certificate files that cannot be used refuse the config, as a file reload does.
  await assert.rejects(
    s.apply({
      apps: [
        {
          name: 't',
          kind: 'tunnel',
          mode: 'client',
          listen: ['127.0.0.1:0'],
          peer: '127.0.0.1:1',
          peer_hostname: 'x',
          tls: { cert: '/nonexistent/cert.pem', key: '/nonexistent/key.pem' },
        },
      ],
    }),
    { code: 'ERR_TUNNEL_CERT' },
  )
  assert.equal(s.port('a', 1), first, 'and nothing changed')
})

test('start() refuses an admin address off loopback without a token, and bad options', async () => {
  await assert.rejects(start({ config: { apps: [] }, admin: '0.0.0.0:0' }), { code: 'ERR_CONFIG_INVALID' })
  await assert.rejects(start({}), { code: 'ERR_USAGE' })
})

test('a fault that cannot act on the kind of app is refused, by the API and in a config, naming why', async () => {
  const e = await t.fixture(echoServer())
  const s = await start({
    config: {
      apps: [
        { name: 'tcp', listen: ['127.0.0.1:0'], targets: [e.address] },
        { name: 'web', kind: 'http', listen: ['127.0.0.1:0'], destination: `http://${e.address}` },
      ],
    },
  })
  t.defer(() => s.close())
  await assert.rejects(s.addFault('tcp', { type: 'http_error', status: 503 }), {
    code: 'ERR_FAULT_INVALID',
    message: 'fault.type: http_error acts on http apps (kind: http) only',
  })
  await assert.rejects(s.addFault('web', { type: 'bandwidth', rate: '1KB' }), {
    code: 'ERR_FAULT_INVALID',
    message: 'fault.type: bandwidth acts on tcp apps; http apps take latency, http_error',
  })
  assert.equal((await s.addFault('web', { type: 'latency', latency: '1ms' })).type, 'latency')
  await assert.rejects(
    s.apply({
      apps: [
        {
          name: 'web',
          kind: 'http',
          listen: ['127.0.0.1:0'],
          destination: `http://${e.address}`,
          faults: [{ type: 'slicer' }],
        },
      ],
    }),
    (err: { code: string; issues: { path: string; message: string }[] }) =>
      err.code === 'ERR_CONFIG_INVALID' &&
      err.issues.some(
        (i) => i.path === 'apps[0].faults[0].type' && /slicer acts on tcp apps/.test(i.message),
      ),
  )
})
