// The admin API of a running sluice (child process): auth, routes, metrics, status, reload.
import assert from 'node:assert/strict'
import { writeFileSync } from 'node:fs'
import { connect } from 'node:net'
import { test } from 'node:test'
import { echoServer } from '../../src/testkit/fixtures.ts'
import { freePort } from '../../src/testkit/ports.ts'
import { openEcho, runSluice, SluiceProcess, testScope, waitFor } from '../helpers.ts'

const t = testScope()

test('admin API: token, routes, metrics, status and reload', async () => {
  const e1 = await echoServer()
  t.defer(() => e1.close())
  const port = await freePort()
  const file = t.tmp.file(
    'admin.yaml',
    `apps:\n  - {name: web, listen: [${port}], targets: ["${e1.address}"]}\n`,
  )
  const p = await runSluice(file, [], { SLUICE_ADMIN_TOKEN: 's3cret' })
  t.defer(() => p.stop())
  const base = await p.admin()
  const auth = { authorization: 'Bearer s3cret' }

  const denied = await fetch(`${base}/status`)
  assert.equal(denied.status, 401)
  assert.equal(denied.headers.get('www-authenticate'), 'Bearer')
  assert.equal(((await denied.json()) as { code: string }).code, 'ERR_ADMIN_UNAUTHORIZED')
  assert.equal((await fetch(`${base}/status`, { headers: { authorization: 'Bearer wrong' } })).status, 401)

  const health = await fetch(`${base}/healthz`, { headers: auth })
  assert.equal(health.status, 200)
  assert.equal(await health.text(), 'ok\n')
  const missing = await fetch(`${base}/nope`, { headers: auth })
  assert.equal(missing.status, 404)
  assert.ok(((await missing.json()) as { routes: string[] }).routes.includes('GET /status'))
  const wrongMethod = await fetch(`${base}/status`, { method: 'DELETE', headers: auth })
  assert.equal(wrongMethod.status, 405)
  assert.equal(wrongMethod.headers.get('allow'), 'GET')

  // Bytes of a connection still open show up in the metrics.
  const c = await openEcho(port)
  assert.equal(await c.say('0123456789'), '0123456789')
  const metrics = await (await fetch(`${base}/metrics`, { headers: auth })).text()
  const listener = `*:${port}`
  for (const line of [
    `sluice_connections_accepted_total{app="web",listener="${listener}"} 1`,
    `sluice_connections_active{app="web",listener="${listener}"} 1`,
    `sluice_bytes_in_total{app="web",listener="${listener}"} 10`,
    `sluice_bytes_out_total{app="web",listener="${listener}"} 10`,
    `sluice_upstream_connects_total{app="web",target="${e1.address}"} 1`,
    `sluice_target_up{app="web",target="${e1.address}"} 1`,
    `sluice_target_connections_active{app="web",target="${e1.address}"} 1`,
    'sluice_config_reloads_total{result="applied"} 1',
  ]) {
    assert.ok(metrics.includes(line), `missing: ${line}`)
  }
  // The one connect is in the histogram (its bucket depends on how loaded the machine is).
  assert.match(
    metrics,
    /sluice_upstream_connect_duration_seconds_bucket\{le="\+Inf",app="web",target="[^"]+"\} 1/,
  )
  assert.match(metrics, /sluice_upstream_connect_duration_seconds_count\{app="web",target="[^"]+"\} 1/)
  assert.match(metrics, /^process_cpu_seconds_total /m)
  c.socket.destroy()
  await waitFor(
    async () =>
      (await (await fetch(`${base}/metrics`, { headers: auth })).text()).includes(
        `sluice_connections_active{app="web",listener="${listener}"} 0`,
      ),
    'the close to be counted',
  )

  type Status = {
    config: { format: string }
    apps: { name: string; targets: { address: string }[] }[]
    lastReload: { result: string }
  }
  const status = (await (await fetch(`${base}/status`, { headers: auth })).json()) as Status
  assert.equal(status.config.format, 'sluice')
  assert.equal(status.apps[0]!.name, 'web')
  assert.equal(status.lastReload.result, 'applied')

  // POST /reload: a broken file is refused with 422 and the reason; a good one is applied.
  writeFileSync(file, 'apps: [')
  const bad = await fetch(`${base}/reload`, { method: 'POST', headers: auth })
  assert.equal(bad.status, 422)
  const badBody = (await bad.json()) as { result: string; code: string; error: string }
  assert.equal(badBody.result, 'rejected')
  assert.equal(badBody.code, 'ERR_CONFIG_PARSE')
  writeFileSync(
    file,
    `apps:\n  - {name: web, listen: [${port}], targets: ["${e1.address}"], strategy: random}\n`,
  )
  const good = (await (await fetch(`${base}/reload`, { method: 'POST', headers: auth })).json()) as {
    result: string
    plan: string[]
  }
  assert.equal(good.result, 'applied')
  assert.deepEqual(good.plan, ['update app web'])
})

test('an admin address off loopback without a token is refused at start', async () => {
  const file = t.tmp.file('open.yaml', 'apps: []\n')
  const p = new SluiceProcess(['run', '-c', file, '--admin', '0.0.0.0:0'], { SLUICE_ADMIN_TOKEN: '' })
  t.defer(() => p.stop())
  assert.equal((await p.exited).code, 2)
  assert.match(
    p.stderr,
    /ERR_USAGE: --admin: admin on 0\.0\.0\.0:0 is reachable off this machine: set admin\.token/,
  )
  const inFile = t.tmp.file('open2.yaml', 'admin: 0.0.0.0:8474\napps: []\n')
  const q = new SluiceProcess(['run', '-c', inFile], { SLUICE_ADMIN_TOKEN: '' })
  t.defer(() => q.stop())
  assert.equal((await q.exited).code, 1)
  assert.match(q.stderr, /open2\.yaml:1: admin: admin on 0\.0\.0\.0:8474 is reachable off this machine/)
})

test('an admin port already in use stops sluice from starting, with nothing left bound', async () => {
  const e1 = await echoServer()
  t.defer(() => e1.close())
  const [port, adminPort] = [await freePort(), await freePort()]
  const { createServer } = await import('node:net')
  const squatter = createServer().listen(adminPort, '127.0.0.1')
  t.defer(() => squatter.close())
  const file = t.tmp.file(
    'busy.yaml',
    `apps:\n  - {name: a, listen: [${port}], targets: ["${e1.address}"]}\n`,
  )
  const p = new SluiceProcess(['run', '-c', file, '--admin', `127.0.0.1:${adminPort}`])
  t.defer(() => p.stop())
  assert.equal((await p.exited).code, 1)
  assert.match(
    p.stderr,
    new RegExp(
      `ERR_LISTEN: cannot start the admin API on 127\\.0\\.0\\.1:${adminPort}: the address is already in use`,
    ),
  )
})

test('the admin API bound off loopback (0.0.0.0) refuses every route without the token, serves them with it', async () => {
  const [adminPort, port] = [await freePort(), await freePort()]
  const e1 = await echoServer()
  t.defer(() => e1.close())
  const file = t.tmp.file(
    'wide.yaml',
    `apps:\n  - {name: web, listen: [${port}], targets: ["${e1.address}"]}\n`,
  )
  const p = new SluiceProcess(
    ['run', '-c', file, '--admin', `0.0.0.0:${adminPort}`, '--log-format', 'json'],
    {
      SLUICE_ADMIN_TOKEN: 'wide-open-no-more',
    },
  )
  t.defer(() => p.stop())
  await p.started()
  // Only loopback is used to reach it; the bind address is what makes the token required.
  const base = `http://127.0.0.1:${adminPort}`
  const routes: [string, string, unknown?][] = [
    ['GET', '/status'],
    ['GET', '/metrics'],
    ['GET', '/healthz'],
    ['GET', '/apps/web/faults'],
    ['POST', '/apps/web/faults', { type: 'latency', latency: '5ms' }],
    ['POST', '/reload'],
    ['GET', '/proxies'],
    ['POST', '/proxies', { name: 'tp', listen: '127.0.0.1:0', upstream: e1.address }],
    ['GET', '/version'],
    ['POST', '/reset'],
  ]
  const call = (method: string, path: string, body: unknown, token?: string) =>
    fetch(`${base}${path}`, {
      method,
      headers: {
        ...(token ? { authorization: `Bearer ${token}` } : {}),
        ...(body ? { 'content-type': 'application/json' } : {}),
      },
      body: body ? JSON.stringify(body) : undefined,
    })
  for (const [method, path, body] of routes) {
    for (const token of [undefined, 'wrong']) {
      const r = await call(method, path, body, token)
      assert.equal(r.status, 401, `${method} ${path} with ${token ?? 'no'} token`)
      assert.equal(((await r.json()) as { code: string }).code, 'ERR_ADMIN_UNAUTHORIZED')
    }
  }
  // Nothing changed while refused.
  const faults = await call('GET', '/apps/web/faults', null, 'wide-open-no-more')
  assert.equal(faults.status, 200)
  assert.deepEqual(((await faults.json()) as { faults: unknown[] }).faults, [])
  for (const [method, path, body] of routes) {
    const r = await call(method, path, body, 'wide-open-no-more')
    assert.ok(r.status >= 200 && r.status < 300, `${method} ${path}: ${r.status}`)
    await r.arrayBuffer()
  }
})

test('a client that goes away in the middle of a request body is its own failure, not an internal one', async () => {
  const port = await freePort()
  const file = t.tmp.file(
    'abort.yaml',
    `apps:\n  - {name: web, listen: ["127.0.0.1:${port}"], targets: ["127.0.0.1:1"]}\n`,
  )
  const p = await t.sluice(file)
  const admin = new URL(await p.admin())
  await new Promise<void>((resolve) => {
    const s = connect(Number(admin.port), admin.hostname, () =>
      s.write('POST /proxies HTTP/1.1\r\nHost: a\r\nContent-Length: 40\r\n\r\n{"name":', () =>
        setTimeout(() => s.destroy(), 50),
      ),
    )
    s.on('error', () => {})
    s.on('close', () => resolve())
  })
  assert.equal((await fetch(`${admin.origin}/healthz`)).status, 200)
  assert.deepEqual(
    p.logs.filter((l) => l.msg === 'admin request failed'),
    [],
  )
})
