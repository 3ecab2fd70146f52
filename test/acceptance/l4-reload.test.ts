// Acceptance: ../shared/acceptance/l4.md, part B (configuration and hot reload). sluice runs as a
// child process (the built CLI, so signals reach it); the config file is rewritten under it.
import assert from 'node:assert/strict'
import { renameSync, writeFileSync } from 'node:fs'
import { request } from 'node:http'
import { join } from 'node:path'
import { test } from 'node:test'
import { echoServer, type Fixture, httpOrigin } from '../../src/testkit/fixtures.ts'
import { freePort } from '../../src/testkit/ports.ts'
import {
  exchange,
  openEcho,
  refused,
  SluiceProcess,
  type SluiceProcess as SP,
  testScope,
  waitFor,
} from '../helpers.ts'

const t = testScope()
const echo = () => t.fixture(echoServer())
const sluice = (file: string, extra: string[] = []) => t.sluice(file, extra)

/** A tcpproxy-format config: `apps` maps app name → [ports, targets]. */
function tcpproxy(apps: Record<string, [number[], string[]]>): string {
  const lines = Object.entries(apps).map(
    ([name, [ports, targets]]) =>
      `  - name: ${name}\n    ports: [${ports.join(', ')}]\n    targets: [${targets.map((t) => `"${t}"`).join(', ')}]`,
  )
  return `apps:\n${lines.join('\n')}\n`
}

/** Which backend a new connection on `port` reaches (by which fixture's accept count moves). */
async function reaches(port: number, fixtures: Fixture[]): Promise<Fixture | null> {
  const before = fixtures.map((f) => f.accepted)
  const r = await exchange(port, 'x')
  if (r.data.toString() !== 'x') return null
  return fixtures.find((f, i) => f.accepted > before[i]!) ?? null
}

const reloaded = (p: SP, n: number) =>
  waitFor(() => p.count((l) => l.msg === 'config reloaded') >= n, `reload #${n}`, 2000)

test('B1 (i, ii): Fly.io JSON and tcpproxy YAML start and every port accepts within 3 s', async () => {
  const e1 = await echo()
  const [p1, p2, p3] = [await freePort(), await freePort(), await freePort()]
  const fly = t.tmp.file(
    'b1.json',
    JSON.stringify({ Apps: [{ Name: 'a', Ports: [p1, p2], Targets: [e1.address] }] }),
  )
  const yaml = t.tmp.file('b1.yaml', tcpproxy({ a: [[p3], [e1.address]] }))
  const t0 = Date.now()
  await Promise.all([sluice(fly), sluice(yaml)])
  for (const port of [p1, p2, p3]) assert.equal((await exchange(port, 'ok')).data.toString(), 'ok')
  assert.ok(Date.now() - t0 < 3000, `took ${Date.now() - t0}ms`)
})

test('B1 (iii, iv): a missing, unreadable or unparsable config exits ≠ 0 naming the file, with no port bound', async () => {
  const port = await freePort()
  const cases: { args: string[]; cwd?: string; stderr: RegExp }[] = [
    { args: ['run', '--admin', 'off'], stderr: /sluice\.yaml: no such file/ },
    {
      args: ['run', '-c', join(t.tmp.dir, 'missing.yaml'), '--admin', 'off'],
      stderr: /missing\.yaml: no such file/,
    },
    { args: ['run', '-c', t.tmp.dir, '--admin', 'off'], stderr: /is a directory/ },
    {
      args: [
        'run',
        '-c',
        t.tmp.file('bad.json', `{"Apps": [{"Name": "a", "Ports": [${port}],`),
        '--admin',
        'off',
      ],
      stderr: /bad\.json:1: invalid JSON/,
    },
    {
      args: [
        'run',
        '-c',
        t.tmp.file('bad2.json', JSON.stringify({ Apps: [{ Name: 'a', Ports: [port], Targets: ['nope'] }] })),
        '--admin',
        'off',
      ],
      stderr: /bad2\.json:1: Apps\[0\]\.Targets\[0\]: "nope" has no port/,
    },
  ]
  for (const c of cases) {
    const p = new SluiceProcess(c.args, { SLUICE_CONFIG: '' })
    t.defer(() => p.stop())
    const started = Date.now()
    const { code } = await p.exited
    assert.ok(Date.now() - started < 5000)
    assert.notEqual(code, 0, c.args.join(' '))
    assert.match(p.stderr, c.stderr)
    assert.match(p.stderr, /ERR_CONFIG_/)
    assert.ok(await refused(port), 'no port bound')
  }
})

test('B2: adding a port to an app by rewriting the file in place; an open connection is untouched', async () => {
  const e1 = await echo()
  const [p1, p2] = [await freePort(), await freePort()]
  const file = t.tmp.file('b2.yaml', tcpproxy({ a: [[p1], [e1.address]] }))
  await sluice(file)
  const c = await openEcho(p1)
  assert.equal(await c.say('one'), 'one')
  writeFileSync(file, tcpproxy({ a: [[p1, p2], [e1.address]] }))
  await waitFor(async () => (await exchange(p2, 'p2')).data.toString() === 'p2', 'p2 to echo', 2000)
  assert.equal(await c.say('two'), 'two')
  c.socket.destroy()
})

test('B3: a removed port refuses new connections at once while its open connection keeps working', async () => {
  const e1 = await echo()
  const [p1, p2] = [await freePort(), await freePort()]
  const file = t.tmp.file('b3.yaml', tcpproxy({ a: [[p1, p2], [e1.address]] }))
  await sluice(file)
  const c = await openEcho(p2)
  assert.equal(await c.say('before'), 'before')
  writeFileSync(file, tcpproxy({ a: [[p1], [e1.address]] }))
  await waitFor(() => refused(p2), 'p2 to refuse', 2000)
  for (let i = 0; i < 6; i++) {
    assert.equal(await c.say(`still ${i}`), `still ${i}`)
    await new Promise((r) => setTimeout(r, 1000))
  }
  assert.equal((await exchange(p1, 'p1')).data.toString(), 'p1')
  c.socket.destroy()
})

test('B3 (deadline): connections of a removed port are closed at drain_timeout', async () => {
  const e1 = await echo()
  const [p1, p2] = [await freePort(), await freePort()]
  const conf = (ports: number[]) =>
    `drain_timeout: 1s\napps:\n  - {name: a, listen: [${ports.join(', ')}], targets: ["${e1.address}"]}\n`
  const file = t.tmp.file('b3d.yaml', conf([p1, p2]))
  const p = await sluice(file)
  const c = await openEcho(p2)
  assert.equal(await c.say('x'), 'x')
  let closedAt = 0
  c.socket.on('close', () => {
    closedAt = Date.now()
  })
  const removedAt = Date.now()
  writeFileSync(file, conf([p1]))
  await waitFor(() => closedAt > 0, 'the drained connection to close', 4000)
  assert.ok(closedAt - removedAt >= 900, `closed after ${closedAt - removedAt}ms`)
  await p.waitLog((l) => l.msg === 'drain deadline reached; remaining connections closed', 'the drain log')
})

test('B4: changed targets apply to new connections; an open one stays on its target', async () => {
  const [e1, e2] = [await echo(), await echo()]
  const port = await freePort()
  const file = t.tmp.file('b4.yaml', tcpproxy({ a: [[port], [e1.address]] }))
  await sluice(file)
  const c = await openEcho(port)
  assert.equal(await c.say('on e1'), 'on e1')
  writeFileSync(file, tcpproxy({ a: [[port], [e2.address]] }))
  await waitFor(async () => (await reaches(port, [e1, e2])) === e2, 'new connections to reach E2', 2000)
  const before = e2.accepted
  for (let i = 0; i < 20; i++) assert.equal(await reaches(port, [e1, e2]), e2)
  assert.equal(e2.accepted - before, 20)
  assert.equal(await c.say('still e1'), 'still e1')
  assert.equal(e1.sockets.size, 1)
  c.socket.destroy()
})

test('B5: deleting an app closes all its ports; other apps are untouched', async () => {
  const [e1, e2] = [await echo(), await echo()]
  const [a1, b1, b2] = [await freePort(), await freePort(), await freePort()]
  const file = t.tmp.file('b5.yaml', tcpproxy({ a: [[a1], [e1.address]], b: [[b1, b2], [e2.address]] }))
  await sluice(file)
  const c = await openEcho(a1)
  assert.equal(await c.say('a'), 'a')
  writeFileSync(file, tcpproxy({ a: [[a1], [e1.address]] }))
  await waitFor(async () => (await refused(b1)) && (await refused(b2)), 'every port of b to refuse', 2000)
  assert.equal(await c.say('a still'), 'a still')
  c.socket.destroy()
})

test('B6: five reloads under load: no connection refused or reset on either app', async () => {
  const [e1, e1b, e2] = [await echo(), await echo(), await echo()]
  const [pa, pb] = [await freePort(), await freePort()]
  const conf = (aTarget: string) => tcpproxy({ a: [[pa], [aTarget]], b: [[pb], [e2.address]] })
  const file = t.tmp.file('b6.yaml', conf(e1.address))
  const p = await sluice(file)
  const cb = await openEcho(pb)
  assert.equal(await cb.say('idle'), 'idle')
  let stop = false
  const failures: string[] = []
  let made = 0
  const load = async (port: number) => {
    while (!stop) {
      const started = Date.now()
      const r = await exchange(port, 'load')
      made++
      if (r.error || r.data.toString() !== 'load') failures.push(`${port}: ${r.error ?? r.data.toString()}`)
      await new Promise((res) => setTimeout(res, Math.max(0, 50 - (Date.now() - started))))
    }
  }
  const loops = [load(pa), load(pb)]
  for (let i = 1; i <= 5; i++) {
    await new Promise((r) => setTimeout(r, 1000))
    writeFileSync(file, conf(i % 2 ? e1b.address : e1.address))
    await reloaded(p, i)
  }
  stop = true
  await Promise.all(loops)
  assert.deepEqual(failures, [])
  assert.ok(made > 150, `only ${made} connections made`)
  assert.equal(await cb.say('idle still'), 'idle still')
  cb.socket.destroy()
})

test('B7: a bad file keeps the running config (and says why); a good one is applied again', async () => {
  const [e1, e2] = [await echo(), await echo()]
  const [pa, pb] = [await freePort(), await freePort()]
  const file = t.tmp.file(
    'b7.json',
    JSON.stringify({ Apps: [{ Name: 'a', Ports: [pa], Targets: [e1.address] }] }),
  )
  const p = await sluice(file)
  const holds = async () => {
    const until = Date.now() + 5000
    while (Date.now() < until) {
      assert.equal(await reaches(pa, [e1, e2]), e1, 'old routing in force')
      await new Promise((r) => setTimeout(r, 250))
    }
  }
  // (i) malformed JSON
  writeFileSync(file, '{"Apps": [{"Name": "a", "Ports": [')
  const malformed = await p.waitLog(
    (l) => l.msg?.startsWith('config rejected') === true,
    'the rejection',
    2000,
  )
  assert.equal(malformed.code, 'ERR_CONFIG_PARSE')
  await holds()
  // holds() outlasts the 2 s poll that backs fs.watch up: the same bad file is reported once.
  const rejections = (code: string) =>
    p.count((l) => l.msg?.startsWith('config rejected') === true && l.code === code)
  assert.equal(rejections('ERR_CONFIG_PARSE'), 1, 'one line for one rejected save')
  // (ii) one port in two apps
  writeFileSync(
    file,
    JSON.stringify({
      Apps: [
        { Name: 'a', Ports: [pa], Targets: [e2.address] },
        { Name: 'b', Ports: [pb, pa], Targets: [e2.address] },
      ],
    }),
  )
  const dup = await p.waitLog((l) => l.code === 'ERR_CONFIG_INVALID', 'the duplicate-port rejection', 2000)
  assert.match(String(dup.error), new RegExp(`port ${pa} .*"a".*"b"`))
  await holds()
  assert.equal(rejections('ERR_CONFIG_INVALID'), 1, 'one line for one rejected save')
  assert.ok(await refused(pb), 'nothing of the bad config was applied')
  // (iii) valid again
  writeFileSync(file, JSON.stringify({ Apps: [{ Name: 'a', Ports: [pa], Targets: [e2.address] }] }))
  await waitFor(async () => (await reaches(pa, [e1, e2])) === e2, 'the good config to apply', 2000)
  // Starting with file (ii) fails.
  const bad = t.tmp.file(
    'b7-dup.json',
    JSON.stringify({
      Apps: [
        { Name: 'a', Ports: [pb], Targets: ['h:1'] },
        { Name: 'b', Ports: [pb], Targets: ['h:1'] },
      ],
    }),
  )
  const q = new SluiceProcess(['run', '-c', bad, '--admin', 'off'])
  t.defer(() => q.stop())
  assert.notEqual((await q.exited).code, 0)
  assert.match(q.stderr, new RegExp(`port ${pb} .*used by two apps: "a".*and "b"`))
})

test('B8: saves that write a temp file and rename it over the config are seen, twice', async () => {
  const [e1, e2] = [await echo(), await echo()]
  const port = await freePort()
  const file = t.tmp.file('b8.yaml', tcpproxy({ a: [[port], [e1.address]] }))
  await sluice(file)
  const save = (content: string) => {
    const swap = join(t.tmp.dir, '.b8.yaml.swp')
    writeFileSync(swap, content)
    renameSync(swap, file)
  }
  save(tcpproxy({ a: [[port], [e2.address]] }))
  await waitFor(async () => (await reaches(port, [e1, e2])) === e2, 'first save', 2000)
  save(tcpproxy({ a: [[port], [e1.address]] }))
  await waitFor(async () => (await reaches(port, [e1, e2])) === e1, 'second save', 2000)
})

test('B9: SIGHUP applies an edit even with file watching off', async () => {
  const [e1, e2] = [await echo(), await echo()]
  const port = await freePort()
  const file = t.tmp.file('b9.yaml', tcpproxy({ a: [[port], [e1.address]] }))
  const p = await sluice(file, ['--no-watch'])
  writeFileSync(file, tcpproxy({ a: [[port], [e2.address]] }))
  assert.equal(await reaches(port, [e1, e2]), e1)
  p.signal('SIGHUP')
  await p.waitLog((l) => l.msg === 'config reloaded' && l.trigger === 'signal', 'the SIGHUP reload', 2000)
  assert.equal(await reaches(port, [e1, e2]), e2)
})

/** A GET through the proxy to a slow origin; resolves with the body. */
function slowGet(port: number): Promise<string> {
  return new Promise((resolve, reject) => {
    request({ host: '127.0.0.1', port, path: '/', agent: false }, (res) => {
      let body = ''
      res.on('data', (d) => (body += d))
      res.on('end', () => resolve(body))
      res.on('error', reject)
    })
      .on('error', reject)
      .end()
  })
}

test('B10: SIGINT stops accepting at once, lets the open request finish, then exits 0', async () => {
  const origin = await httpOrigin({ name: 'slow', delayMs: 1500 })
  t.defer(() => origin.close())
  const port = await freePort()
  const p = await sluice(t.tmp.file('b10.yaml', tcpproxy({ a: [[port], [origin.address]] })))
  const pending = slowGet(port)
  await waitFor(() => origin.requests.length === 1, 'the request to reach the origin')
  p.signal('SIGINT')
  await waitFor(() => refused(port), 'the listener to close', 1000)
  assert.equal(await pending, 'hello from slow\n')
  const { code } = await p.exited
  assert.equal(code, 0)
})

test('B10: a second SIGINT exits at once with 130; the drain deadline ends a stuck connection', async () => {
  const e1 = await echo()
  const port = await freePort()
  const file = t.tmp.file(
    'b10b.yaml',
    `drain_timeout: 1s\napps:\n  - {name: a, listen: [${port}], targets: ["${e1.address}"]}\n`,
  )
  // A connection that never ends: exit after the 1 s deadline, with 0.
  const p = await sluice(file)
  const c = await openEcho(port)
  assert.equal(await c.say('x'), 'x')
  const t0 = Date.now()
  p.signal('SIGTERM')
  assert.equal((await p.exited).code, 0)
  assert.ok(Date.now() - t0 >= 900 && Date.now() - t0 < 4000, `exited after ${Date.now() - t0}ms`)
  // Same again, but a second signal: exit 130 without waiting.
  const q = await sluice(
    t.tmp.file(
      'b10c.yaml',
      `drain_timeout: 30s\napps:\n  - {name: a, listen: [${port}], targets: ["${e1.address}"]}\n`,
    ),
  )
  const d = await openEcho(port)
  assert.equal(await d.say('y'), 'y')
  q.signal('SIGINT')
  await q.waitLog((l) => l.signal === 'SIGINT' && String(l.msg).startsWith('stopping'), 'the first signal')
  const t1 = Date.now()
  q.signal('SIGINT')
  assert.equal((await q.exited).code, 130)
  assert.ok(Date.now() - t1 < 1000)
})
