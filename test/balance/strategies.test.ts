import assert from 'node:assert/strict'
import { test } from 'node:test'
import { type Candidate, hash32, order, rotation } from '../../src/balance/strategies.ts'

const targets = (...weights: number[]): Candidate[] =>
  weights.map((weight, i) => ({ key: `10.0.0.${i + 1}:80`, weight, active: 0, current: 0 }))

/** How often each target is picked first over `n` connections. */
function picks(
  strategy: Parameters<typeof order>[0],
  c: Candidate[],
  n: number,
  client = (i: number) => `c${i}`,
) {
  const state = { next: 0 }
  const counts = new Array(c.length).fill(0)
  for (let i = 0; i < n; i++) counts[order(strategy, c, state, client(i))[0]!]++
  return counts
}

test('every strategy returns each candidate exactly once', () => {
  for (const s of ['round-robin', 'weighted-round-robin', 'least-connections', 'random', 'hash'] as const) {
    const o = order(s, targets(1, 2, 3, 4), { next: 5 }, '192.0.2.1')
    assert.deepEqual([...o].sort(), [0, 1, 2, 3], s)
  }
  assert.deepEqual(order('round-robin', [], { next: 0 }, 'x'), [])
})

test('round-robin rotates the start and keeps the rest as failover order', () => {
  const state = { next: 0 }
  const c = targets(1, 1, 1)
  assert.deepEqual(order('round-robin', c, state, ''), [0, 1, 2])
  assert.deepEqual(order('round-robin', c, state, ''), [1, 2, 0])
  assert.deepEqual(order('round-robin', c, state, ''), [2, 0, 1])
  assert.deepEqual(order('round-robin', c, state, ''), [0, 1, 2])
  assert.deepEqual(picks('round-robin', targets(1, 1), 100), [50, 50])
  assert.deepEqual(rotation(4, 2), [2, 3, 0, 1])
})

test('weighted round-robin follows weights and interleaves (smooth)', () => {
  const c = targets(5, 1, 1)
  const state = { next: 0 }
  const seq = Array.from({ length: 7 }, () => order('weighted-round-robin', c, state, '')[0])
  assert.deepEqual(seq, [0, 0, 1, 0, 2, 0, 0])
  assert.deepEqual(picks('weighted-round-robin', targets(3, 1), 400), [300, 100])
})

test('least-connections prefers the fewest open connections per weight, rotating ties', () => {
  const c = targets(1, 1, 1)
  c[0]!.active = 5
  c[1]!.active = 1
  c[2]!.active = 3
  assert.deepEqual(order('least-connections', c, { next: 0 }, ''), [1, 2, 0])
  const w = targets(1, 4)
  w[0]!.active = 1
  w[1]!.active = 3
  assert.equal(order('least-connections', w, { next: 0 }, '')[0], 1, '3/4 < 1/1')
  assert.deepEqual(picks('least-connections', targets(1, 1, 1), 30), [10, 10, 10])
})

test('random spreads by weight', () => {
  const counts = picks('random', targets(1, 1), 2000)
  assert.ok(counts[0] > 850 && counts[0] < 1150, `${counts}`)
  const weighted = picks('random', targets(3, 1), 4000)
  assert.ok(weighted[0] > 2700 && weighted[0] < 3300, `${weighted}`)
  let seed = 1
  const rnd = () => ((seed = (seed * 16807) % 2147483647) - 1) / 2147483646
  assert.deepEqual(
    order('random', targets(1, 1, 1), { next: 0 }, '', rnd),
    order(
      'random',
      targets(1, 1, 1),
      { next: 0 },
      '',
      (
        (s) => () =>
          ((s = (s * 16807) % 2147483647) - 1) / 2147483646
      )(1),
    ),
  )
})

test("hash keeps a client on its target and moves only that target's clients when one goes", () => {
  const c = targets(1, 1, 1, 1)
  const clients = Array.from({ length: 400 }, (_, i) => `198.51.100.${i % 250}:${i}`)
  const first = new Map(clients.map((k) => [k, c[order('hash', c, { next: 0 }, k)[0]!]!.key]))
  for (const k of clients) assert.equal(c[order('hash', c, { next: 0 }, k)[0]!]!.key, first.get(k), 'stable')
  const spread = new Map<string, number>()
  for (const t of first.values()) spread.set(t, (spread.get(t) ?? 0) + 1)
  for (const n of spread.values()) assert.ok(n > 60 && n < 140, `uneven: ${[...spread.values()]}`)
  const without = c.filter((t) => t.key !== c[2]!.key)
  for (const k of clients) {
    const now = without[order('hash', without, { next: 0 }, k)[0]!]!.key
    if (first.get(k) !== c[2]!.key) assert.equal(now, first.get(k), 'clients of other targets stay')
  }
  assert.notEqual(hash32('a', 'b'), hash32('b', 'a'))
})
