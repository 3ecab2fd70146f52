// Acceptance: ../shared/acceptance/l4.md, part A (proxying). sluice runs as a child process
// (the built CLI); clients and backends are real sockets on loopback.
import assert from 'node:assert/strict'
import { createHash, randomBytes } from 'node:crypto'
import { connect, createServer, type Socket } from 'node:net'
import { test } from 'node:test'
import { echoServer } from '../../src/testkit/fixtures.ts'
import { freePort } from '../../src/testkit/ports.ts'
import { duplicateKeys, exchange, getJson, openEcho, testScope, waitFor } from '../helpers.ts'

const t = testScope()
const echo = () => t.fixture(echoServer())
const sluice = (name: string, content: string) => t.sluice(t.tmp.file(name, content))

const deadAddress = async () => `127.0.0.1:${await freePort()}`
const BAD = 'bad.target.invalid:6003'

test('A1: two apps on several ports each reach their own backend (Fly.io JSON)', async () => {
  const [e1, e2] = [await echo(), await echo()]
  const a = await Promise.all([1, 2, 3, 4].map(() => freePort()))
  const b = await Promise.all([1, 2].map(() => freePort()))
  await sluice(
    'a1.json',
    JSON.stringify({
      Apps: [
        { Name: 'a', Ports: a, Targets: [e1.address] },
        { Name: 'b', Ports: b, Targets: [e2.address] },
      ],
    }),
  )
  for (const port of [...a, ...b]) {
    const r = await exchange(port, 'hello\n')
    assert.equal(r.error, null, `port ${port}`)
    assert.equal(r.data.toString(), 'hello\n', `port ${port}`)
  }
  assert.equal(e1.accepted, 4)
  assert.equal(e2.accepted, 2)
})

test('A2: round-robin splits 100 connections 50/50; random stays within 30..70', async () => {
  const [e1, e2, e3, e4] = [await echo(), await echo(), await echo(), await echo()]
  const [p1, p2] = [await freePort(), await freePort()]
  await sluice(
    'a2.yaml',
    `admin: false\napps:\n  - {name: rr, listen: [${p1}], targets: ["${e1.address}", "${e2.address}"]}\n  - {name: rnd, listen: [${p2}], targets: ["${e3.address}", "${e4.address}"], strategy: random}\n`,
  )
  for (let i = 0; i < 100; i++) assert.equal((await exchange(p1, 'x')).data.toString(), 'x')
  assert.deepEqual([e1.accepted, e2.accepted], [50, 50])
  for (let i = 0; i < 100; i++) assert.equal((await exchange(p2, 'x')).data.toString(), 'x')
  assert.equal(e3.accepted + e4.accepted, 100)
  assert.ok(e3.accepted >= 30 && e3.accepted <= 70, `random split ${e3.accepted}/${e4.accepted}`)
})

test('A3: failover past two dead targets; all 100 connections echo through E1', async () => {
  const e1 = await echo()
  const port = await freePort()
  const p = await sluice(
    'a3.yaml',
    `apps: [{name: a, ports: [${port}], targets: ["${await deadAddress()}", "${await deadAddress()}", "${e1.address}"]}]\n`,
  )
  let ok = 0
  for (let i = 0; i < 100; i++) if ((await exchange(port, 'ping')).data.toString() === 'ping') ok++
  assert.equal(ok, 100)
  assert.equal(e1.accepted, 100)
  const lines = p.stderr.split('\n').filter((l) => l.startsWith('{'))
  const ejected = lines.map((l) => JSON.parse(l)).filter((l) => String(l.msg).startsWith('target ejected'))
  assert.ok(ejected.length > 0, 'the dead targets were ejected')
  for (const l of ejected) {
    assert.equal(l.code, 'ERR_TARGET_EJECTED')
    assert.equal(l.cause, 'ERR_CONNECT_REFUSED')
  }
  for (const l of lines) assert.deepEqual(duplicateKeys(l), [], l)
})

test('A4: an unresolvable target is skipped, logged with the reason, and sluice stays up', async () => {
  const [e1, e2] = [await echo(), await echo()]
  const port = await freePort()
  const p = await sluice(
    'a4.yaml',
    `apps: [{name: a, ports: [${port}], targets: ["${BAD}", "${e1.address}", "${e2.address}"]}]\n`,
  )
  const results = await Promise.all(Array.from({ length: 100 }, () => exchange(port, 'hi')))
  assert.equal(results.filter((r) => r.data.toString() === 'hi').length, 100)
  assert.equal(e1.accepted + e2.accepted, 100)
  const line = await p.waitLog(
    (l) => l.target === BAD && l.reason === 'unresolvable',
    'BAD skipped as unresolvable',
  )
  assert.equal(line.msg, 'target skipped, trying the next')
  assert.match(String(line.error), /cannot resolve bad\.target\.invalid/)
  // The message and the error do not repeat what the fields say.
  assert.ok(!String(line.error).includes(BAD), String(line.error))
  assert.equal(p.child.exitCode, null)
})

test('A5: when no target connects the client is reset with 0 bytes; other apps keep working', async () => {
  const e1 = await echo()
  const [broken, a] = [await freePort(), await freePort()]
  const p = await sluice(
    'a5.yaml',
    `apps:\n  - {name: broken, ports: [${broken}], targets: ["${BAD}", "${await deadAddress()}", "${await deadAddress()}", "${BAD}"]}\n  - {name: a, ports: [${a}], targets: ["${e1.address}"]}\n`,
  ).catch((err) => {
    throw err
  })
  const started = Date.now()
  const r = await exchange(broken, 'hello', { timeoutMs: 5000 })
  assert.equal(r.error, 'ECONNRESET')
  assert.equal(r.data.length, 0)
  assert.ok(Date.now() - started < 5000)
  const why = await p.waitLog((l) => String(l.msg).startsWith('no target reachable'), 'the no-target error')
  // BAD is listed twice but tried once per connection: BAD, DEAD, DEAD.
  assert.equal((why.attempts as unknown[]).length, 3)
  assert.equal(p.child.exitCode, null)
  assert.equal((await exchange(a, 'still here')).data.toString(), 'still here')
})

test('A6: a half-close reaches the backend at once and the reply still comes back whole', async () => {
  let endSeenAt = 0
  const backend = createServer({ allowHalfOpen: true }, (s) => {
    s.on('data', (d) => s.write(d))
    s.on('end', () => {
      endSeenAt = Date.now()
      s.end()
    })
  })
  await new Promise<void>((r) => backend.listen(0, '127.0.0.1', () => r()))
  t.defer(() => new Promise((r) => backend.close(r)))
  const port = await freePort()
  await sluice(
    'a6.yaml',
    `apps: [{name: a, ports: [${port}], targets: ["127.0.0.1:${(backend.address() as { port: number }).port}"]}]\n`,
  )
  const payload = randomBytes(1000)
  const finSentAt = Date.now()
  const r = await exchange(port, payload)
  assert.equal(r.error, null)
  assert.ok(r.data.equals(payload), `got ${r.data.length} bytes`)
  assert.ok(
    endSeenAt > 0 && endSeenAt - finSentAt < 1000,
    `backend saw EOF ${endSeenAt - finSentAt}ms after the FIN`,
  )
})

test('A7: 16 MiB of random bytes come back byte-exact', async () => {
  const e1 = await echo()
  const port = await freePort()
  await sluice('a7.yaml', `apps: [{name: a, ports: [${port}], targets: ["${e1.address}"]}]\n`)
  const data = randomBytes(16 * 1024 * 1024)
  const sent = createHash('sha256').update(data).digest('hex')
  const got = createHash('sha256')
  let n = 0
  await new Promise<void>((resolve, reject) => {
    const s: Socket = connect(port, '127.0.0.1', () => {
      // Write in pieces while reading concurrently, respecting backpressure.
      let off = 0
      const pump = () => {
        while (off < data.length) {
          const piece = data.subarray(off, off + 65536)
          off += piece.length
          if (!s.write(piece)) return s.once('drain', pump)
        }
        s.end()
      }
      pump()
    })
    s.on('data', (d: Buffer) => {
      got.update(d)
      n += d.length
    })
    s.on('end', () => resolve())
    s.on('error', reject)
  })
  assert.equal(n, data.length)
  assert.equal(got.digest('hex'), sent)
})

test('A8: 500 concurrent connections all echo byte-exact', async () => {
  const [e1, e2] = [await echo(), await echo()]
  const port = await freePort()
  await sluice(
    'a8.yaml',
    `apps: [{name: a, ports: [${port}], targets: ["${e1.address}", "${e2.address}"]}]\n`,
  )
  const results = await Promise.all(
    Array.from({ length: 500 }, () => exchange(port, 'hello world', { timeoutMs: 15_000 })),
  )
  const bad = results.filter((r) => r.error !== null || r.data.toString() !== 'hello world')
  assert.equal(bad.length, 0, `failures: ${JSON.stringify(bad.slice(0, 3).map((b) => b.error))}`)
  assert.equal(e1.accepted + e2.accepted, 500)
})

test('A9: a backend closing at once, and a client vanishing, both end cleanly', async () => {
  const e3 = createServer((s) => {
    s.on('error', () => {})
    s.end('bye\n')
  })
  await new Promise<void>((r) => e3.listen(0, '127.0.0.1', () => r()))
  t.defer(() => new Promise((r) => e3.close(r)))
  const e1 = await echo()
  const [x, a] = [await freePort(), await freePort()]
  await sluice(
    'a9.yaml',
    `apps:\n  - {name: x, ports: [${x}], targets: ["127.0.0.1:${(e3.address() as { port: number }).port}"]}\n  - {name: a, ports: [${a}], targets: ["${e1.address}"]}\n`,
  )
  // (i) bye then EOF within 1 s, without the client closing first.
  const started = Date.now()
  const r = await exchange(x, '', { halfClose: false, timeoutMs: 1000 })
  assert.equal(r.error, null)
  assert.equal(r.data.toString(), 'bye\n')
  assert.ok(Date.now() - started < 1000)
  // (ii) the client goes away abruptly: E1 sees its connection closed within 2 s.
  const c = await openEcho(a)
  assert.equal(await c.say('abc'), 'abc')
  await waitFor(() => e1.sockets.size === 1, 'E1 to hold the connection')
  c.socket.destroy()
  await waitFor(() => e1.sockets.size === 0, 'E1 to see the close', 2000)
  assert.equal((await exchange(a, 'again')).data.toString(), 'again')
})

test('A10: health checks take a stopped target out and bring it back when it returns', async () => {
  let e1 = await echoServer()
  const e1Port = e1.port
  t.defer(() => e1.close())
  const port = await freePort()
  const p = await sluice(
    'a10.yaml',
    `apps:\n  - name: a\n    listen: [${port}]\n    targets: ["${e1.address}"]\n    health: {interval: 200ms, timeout: 150ms, rise: 2, fall: 2}\n`,
  )
  const admin = await p.admin()
  type Status = { apps: { targets: { address: string; up: boolean }[] }[] }
  const up = async () => (await getJson<Status>(`${admin}/status`)).apps[0]!.targets[0]!.up
  assert.equal((await exchange(port, 'hi')).data.toString(), 'hi')
  await e1.close()
  await waitFor(async () => !(await up()), 'admin to show E1 down', 3000)
  const metrics = await (await fetch(`${admin}/metrics`)).text()
  assert.match(metrics, new RegExp(`sluice_target_up\\{app="a",target="${e1.address}"\\} 0`))
  const t0 = Date.now()
  const down = await exchange(port, 'hi')
  assert.equal(down.error, 'ECONNRESET')
  assert.ok(Date.now() - t0 < 1000, `reset took ${Date.now() - t0}ms`)
  e1 = await echoServer({ port: e1Port })
  const back = Date.now()
  await waitFor(async () => await up(), 'E1 back up', 2000)
  assert.ok(Date.now() - back <= 2000)
  assert.equal((await exchange(port, 'hi')).data.toString(), 'hi')
  assert.match(
    await (await fetch(`${admin}/metrics`)).text(),
    new RegExp(`sluice_target_up\\{app="a",target="${e1.address}"\\} 1`),
  )
})
