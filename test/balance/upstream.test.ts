import assert from 'node:assert/strict'
import { test } from 'node:test'
import { Upstream, type UpstreamSpec } from '../../src/balance/upstream.ts'
import { createLogger } from '../../src/observe/logger.ts'
import { createMetrics } from '../../src/observe/metrics.ts'

const log = createLogger({ level: 'silent', format: 'json' })
const t = (key: string, weight = 1) => {
  const [host, port] = key.split(':')
  return { host: host!, port: Number(port), weight, key, tls: null, starttls: null, faults: [] }
}
const spec = (targets: string[], more: Partial<UpstreamSpec> = {}): UpstreamSpec => ({
  name: 'a',
  targets: targets.map((k) => t(k)),
  strategy: 'round-robin',
  maxAttempts: 0,
  passive: { failures: 3, cooldown: 1000 },
  ...more,
})
const keys = (u: Upstream, now = 0) => u.order('c', now).map((x) => x.key)

test('a target listed twice gets two rotation slots but is tried once per connection', () => {
  const u = new Upstream(spec(['a:1', 'b:1', 'a:1']), createMetrics(), log)
  assert.equal(u.targets.length, 2)
  const firsts = Array.from({ length: 300 }, () => u.order('c', 0)[0]!.key)
  assert.equal(firsts.filter((k) => k === 'a:1').length, 200)
  for (let i = 0; i < 3; i++) assert.equal(new Set(keys(u)).size, 2)
})

test('passive ejection: after N failures the target goes last, then comes back on probation', () => {
  const u = new Upstream(spec(['a:1', 'b:1']), createMetrics(), log)
  const a = u.targets[0]!
  for (let i = 0; i < 3; i++) u.failed(a, 'refused', 'refused', 100)
  assert.ok(!a.isUp(100))
  for (let i = 0; i < 4; i++)
    assert.deepEqual(keys(u, 500), ['b:1', 'a:1'], 'ejected target tried only as a last resort')
  // Cooldown over: back in rotation, but one more failure ejects it again for twice as long.
  assert.ok(a.isUp(1100))
  u.failed(a, 'refused', 'refused', 1200)
  assert.equal(a.ejectedUntil, 1200 + 2000)
  // A success ends probation and the backoff.
  u.succeeded(a, 1)
  assert.equal(a.probation, false)
  assert.equal(a.ejections, 0)
})

test('failures below the threshold, or with passive off, eject nothing', () => {
  const u = new Upstream(spec(['a:1', 'b:1']), createMetrics(), log)
  const a = u.targets[0]!
  u.failed(a, 'timeout', 'x', 0)
  u.failed(a, 'timeout', 'x', 0)
  u.succeeded(a, 1)
  u.failed(a, 'timeout', 'x', 0)
  assert.ok(a.isUp(0), 'a success resets the streak')
  const off = new Upstream(spec(['a:1'], { passive: null }), createMetrics(), log)
  for (let i = 0; i < 10; i++) off.failed(off.targets[0]!, 'refused', 'x', 0)
  assert.ok(off.targets[0]!.isUp(0))
})

test('all targets down: all are tried anyway, in strategy order', () => {
  const u = new Upstream(spec(['a:1', 'b:1', 'c:1']), createMetrics(), log)
  for (const x of u.targets) u.setChecked(x.key, false)
  assert.deepEqual(keys(u), ['a:1', 'b:1', 'c:1'])
  assert.deepEqual(keys(u), ['b:1', 'c:1', 'a:1'])
  u.setChecked('b:1', true)
  assert.deepEqual(keys(u)[0], 'b:1')
})

test('an active check coming up ends a passive ejection', () => {
  const u = new Upstream(spec(['a:1', 'b:1']), createMetrics(), log)
  const a = u.targets[0]!
  for (let i = 0; i < 3; i++) u.failed(a, 'refused', 'x', 0)
  assert.ok(!a.isUp(1))
  u.setChecked('a:1', true)
  assert.ok(a.isUp(1))
})

test('reload keeps the state of targets that stay and drops the others', () => {
  const u = new Upstream(spec(['a:1', 'b:1']), createMetrics(), log)
  u.targets[0]!.active = 7
  u.setChecked('b:1', false)
  u.update(spec(['b:1', 'c:1']))
  assert.deepEqual(
    u.targets.map((x) => x.key),
    ['b:1', 'c:1'],
  )
  assert.equal(u.targets[0]!.checkedUp, false, 'b keeps its health')
  assert.equal(u.targets[1]!.active, 0)
})

test('max_attempts caps the failover list', () => {
  const u = new Upstream(spec(['a:1', 'b:1', 'c:1'], { maxAttempts: 2 }), createMetrics(), log)
  assert.equal(keys(u).length, 2)
})
