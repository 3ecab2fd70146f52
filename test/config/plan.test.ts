import assert from 'node:assert/strict'
import { test } from 'node:test'
import { normalizeConfigObject } from '../../src/config/normalize.ts'
import { describePlan, isEmpty, plan } from '../../src/config/plan.ts'

const cfg = (apps: unknown[], extra: Record<string, unknown> = {}) =>
  normalizeConfigObject({ admin: false, ...extra, apps })
const app = (name: string, listen: unknown[], targets: string[], more: Record<string, unknown> = {}) => ({
  name,
  listen,
  targets,
  ...more,
})

test('from nothing: every app added, every address bound', () => {
  const p = plan(null, cfg([app('a', [7001, 7002], ['h:1']), app('b', ['127.0.0.1:7003'], ['h:2'])]))
  assert.deepEqual(p.added, ['a', 'b'])
  assert.deepEqual(
    p.bind.map((b) => [b.address.key, b.app, b.afterUnbind]),
    [
      ['*:7001', 'a', false],
      ['*:7002', 'a', false],
      ['127.0.0.1:7003', 'b', false],
    ],
  )
  assert.deepEqual(p.unbind, [])
})

test('an unchanged app is not touched', () => {
  const a = cfg([app('a', [7001], ['h:1']), app('b', [7002], ['h:2'])])
  const b = cfg([app('a', [7001], ['h:1']), app('b', [7002], ['h:3'])])
  const p = plan(a, b)
  assert.deepEqual(p.unchanged, ['a'])
  assert.deepEqual(p.changed, ['b'])
  assert.deepEqual(
    p.upsert.map((x) => x.name),
    ['b'],
  )
  assert.deepEqual(p.bind, [])
  assert.deepEqual(p.unbind, [])
  assert.ok(isEmpty(plan(a, a)))
  assert.deepEqual(describePlan(plan(a, a)), ['no change'])
})

test('ports added and removed per app touch only those sockets', () => {
  const a = cfg([app('a', [7001, 7002], ['h:1'])])
  const b = cfg([app('a', [7001, 7003], ['h:1'])])
  const p = plan(a, b)
  assert.deepEqual(p.changed, ['a'])
  assert.deepEqual(
    p.bind.map((x) => x.address.key),
    ['*:7003'],
  )
  assert.deepEqual(p.unbind, [{ key: '*:7002', drain: 30_000 }])
})

test('a removed app unbinds its ports; a port moving between apps is reassigned, not rebound', () => {
  const a = cfg([app('a', [7001], ['h:1']), app('b', [7002, 7003], ['h:2'])])
  const b = cfg([app('a', [7001, 7003], ['h:1'])])
  const p = plan(a, b)
  assert.deepEqual(p.removed, ['b'])
  assert.deepEqual(p.unbind, [{ key: '*:7002', drain: 30_000 }])
  assert.deepEqual(p.reassign, [{ key: '*:7003', app: 'a' }])
  assert.deepEqual(p.bind, [])
})

test('an address overlapping one being unbound is bound after it', () => {
  const a = cfg([app('a', [7001], ['h:1'])])
  const b = cfg([app('a', ['127.0.0.1:7001'], ['h:1'])])
  const p = plan(a, b)
  assert.deepEqual(p.unbind, [{ key: '*:7001', drain: 30_000 }])
  assert.deepEqual(
    p.bind.map((x) => [x.address.key, x.afterUnbind]),
    [['127.0.0.1:7001', true]],
  )
})

test('control-side changes are flagged apart from the data path', () => {
  const a = cfg([app('a', [7001], ['h:1'])])
  const b = cfg([app('a', [7001], ['h:1'])], { admin: '127.0.0.1:9999', log: { level: 'debug' } })
  const p = plan(a, b)
  assert.ok(isEmpty(p))
  assert.equal(p.adminChanged, true)
  assert.equal(p.logChanged, true)
})

test('plans are plain data', () => {
  const p = plan(null, cfg([app('a', [7001], ['h:1'], { health: { interval: '1s' } })]))
  assert.deepEqual(JSON.parse(JSON.stringify(p)), p)
})

test('a disabled app listens nowhere; its per-app drain applies when it stops', () => {
  const on = cfg([app('a', [7001], ['h:1'])])
  const off = structuredClone(on)
  off.apps[0]!.enabled = false
  off.apps[0]!.drainTimeout = 0
  on.apps[0]!.drainTimeout = 0
  const p = plan(on, off)
  assert.deepEqual(p.changed, ['a'])
  assert.deepEqual(p.unbind, [{ key: '*:7001', drain: 0 }])
  assert.deepEqual(
    plan(off, on).bind.map((b) => b.address.key),
    ['*:7001'],
  )
})
