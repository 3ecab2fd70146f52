// Faults declared in sluice's config file: on an app and on one target; applied and removed by
// reload on live connections; reported in status and metrics.
import assert from 'node:assert/strict'
import { writeFileSync } from 'node:fs'
import { test } from 'node:test'
import { echoServer, identServer } from '../../src/testkit/fixtures.ts'
import { freePort } from '../../src/testkit/ports.ts'
import { exchange, getJson, openEcho, testScope, waitFor } from '../helpers.ts'

const t = testScope()

test('a reload adds, changes and removes faults on a live connection', async () => {
  const e = await t.fixture(echoServer())
  const port = await freePort()
  const conf = (faults: string) =>
    `apps:\n  - name: a\n    listen: [${port}]\n    targets: ["${e.address}"]\n${faults}`
  const file = t.tmp.file('live.yaml', conf(''))
  const p = await t.sluice(file)
  const c = await openEcho(port)
  const time = async (word: string) => {
    const t0 = performance.now()
    assert.equal(await c.say(word), word)
    return performance.now() - t0
  }
  assert.ok((await time('plain')) < 50)
  writeFileSync(file, conf('    faults:\n      - {name: slow, type: latency, latency: 150ms}\n'))
  await p.waitLog((l) => l.msg === 'config reloaded', 'the reload')
  assert.ok((await time('slow')) >= 140, 'latency applied to the open connection')
  writeFileSync(file, conf('    faults:\n      - {name: slow, type: latency, latency: 300ms}\n'))
  await waitFor(() => p.count((l) => l.msg === 'config reloaded') >= 2, 'the second reload')
  assert.ok((await time('slower')) >= 290, 'the change applied')
  writeFileSync(file, conf(''))
  await waitFor(() => p.count((l) => l.msg === 'config reloaded') >= 3, 'the third reload')
  assert.ok((await time('fast again')) < 50, 'removed')
  c.socket.destroy()
})

test('a target that refuses by fault exercises failover; health shows in status', async () => {
  const [a, b] = [await t.fixture(identServer({ name: 'A' })), await t.fixture(identServer({ name: 'B' }))]
  const port = await freePort()
  const file = t.tmp.file(
    'target.yaml',
    `apps:
  - name: flaky
    listen: [${port}]
    passive: false
    targets:
      - address: "${a.address}"
        faults: [{name: down, type: refuse}]
      - "${b.address}"
`,
  )
  const p = await t.sluice(file)
  for (let i = 0; i < 6; i++) assert.equal((await exchange(port, '')).data.toString(), 'B\n')
  assert.equal(a.accepted, 0)
  const line = await p.waitLog(
    (l) => l.target === a.address && l.reason === 'refused',
    'the fault as a refused connect',
  )
  assert.match(String(line.error), /refused by fault "down"/)
  type Status = { apps: { faults: { name: string; target: string | null; fired: number }[] }[] }
  const status = await getJson<Status>(`${await p.admin()}/status`)
  const fault = status.apps[0]!.faults[0]!
  assert.equal(fault.target, a.address)
  assert.ok(fault.fired >= 3)
})

test('a slow target slows only its own connections', async () => {
  const [a, b] = [await t.fixture(echoServer()), await t.fixture(echoServer())]
  const [pa, pb] = [await freePort(), await freePort()]
  const file = t.tmp.file(
    'slow.yaml',
    `apps:
  - name: two
    listen: [${pa}]
    strategy: round-robin
    targets:
      - address: "${a.address}"
        faults: [{type: latency, latency: 200ms}]
      - "${b.address}"
  - name: other
    listen: [${pb}]
    targets: ["${a.address}"]
`,
  )
  await t.sluice(file)
  const times: number[] = []
  for (let i = 0; i < 4; i++) {
    const t0 = performance.now()
    assert.equal((await exchange(pa, 'x')).data.toString(), 'x')
    times.push(performance.now() - t0)
  }
  assert.equal(times.filter((ms) => ms >= 190).length, 2, `times ${times.map((x) => x.toFixed(0))}`)
  const t0 = performance.now()
  await exchange(pb, 'y')
  assert.ok(performance.now() - t0 < 100, 'another app using the same target is untouched')
})

test('sluice check shows faults, and rejects bad ones with their path', async () => {
  const ok = t.tmp.file(
    'ok.yaml',
    'apps:\n  - name: a\n    listen: [1]\n    targets: [{address: "h:1", faults: [{type: blackhole}]}]\n    faults:\n      - {type: latency, distribution: normal, latency: 100ms, stddev: 10ms, schedule: "start:1s,duration:5s"}\n',
  )
  const good = t.process(['check', '-c', ok])
  assert.equal((await good.exited).code, 0, good.stderr)
  assert.match(good.stdout, /type: latency/)
  assert.match(good.stdout, /schedule: start:1s,duration:5s/)
  assert.match(good.stdout, /type: blackhole/)
  const bad = t.tmp.file(
    'bad.yaml',
    'apps:\n  - name: a\n    listen: [1]\n    targets: ["h:1"]\n    faults:\n      - {type: latency, latency: fast}\n      - {type: packet_loss, rate: 2}\n      - {type: latency, schedule: "start:10%"}\n',
  )
  const r = t.process(['check', '-c', bad])
  assert.equal((await r.exited).code, 1)
  assert.match(r.stderr, /bad\.yaml:6: apps\[0\]\.faults\[0\]\.latency: "fast" is not a duration/)
  assert.match(r.stderr, /apps\[0\]\.faults\[1\]\.rate: must be at most 1/)
  assert.match(r.stderr, /apps\[0\]\.faults\[2\]\.schedule: 10% needs a total duration/)
})
