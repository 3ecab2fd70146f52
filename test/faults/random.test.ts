import assert from 'node:assert/strict'
import { test } from 'node:test'
import type { DelayParams } from '../../src/config/faults.ts'
import { sampleDelay, seeded } from '../../src/faults/random.ts'

const base: DelayParams = {
  distribution: 'fixed',
  latency: 0,
  jitter: 0,
  stddev: 0,
  min: 0,
  max: 0,
  shape: 2,
  scale: 1,
}
const many = (p: Partial<DelayParams>, n = 20_000) => {
  const rng = seeded(42)
  return Array.from({ length: n }, () => sampleDelay({ ...base, ...p }, rng))
}
const mean = (xs: number[]) => xs.reduce((a, b) => a + b, 0) / xs.length

test('fixed with jitter stays within latency ± jitter', () => {
  const xs = many({ latency: 100, jitter: 20 })
  assert.ok(Math.min(...xs) >= 80 && Math.max(...xs) <= 120)
  assert.ok(Math.abs(mean(xs) - 100) < 1)
  assert.deepEqual(new Set(many({ latency: 50 }, 10)), new Set([50]))
})

test('uniform covers [min, max]', () => {
  const xs = many({ distribution: 'uniform', min: 10, max: 30 })
  assert.ok(Math.min(...xs) >= 10 && Math.max(...xs) <= 30)
  assert.ok(Math.abs(mean(xs) - 20) < 0.5)
})

test('normal has the mean and spread asked for, and is never negative', () => {
  const xs = many({ distribution: 'normal', latency: 100, stddev: 10 })
  const m = mean(xs)
  const sd = Math.sqrt(mean(xs.map((x) => (x - m) ** 2)))
  assert.ok(Math.abs(m - 100) < 0.5, `mean ${m}`)
  assert.ok(Math.abs(sd - 10) < 0.5, `stddev ${sd}`)
  assert.ok(Math.min(...many({ distribution: 'normal', latency: 1, stddev: 50 })) >= 0)
})

test('pareto starts at its scale and has a long tail; pareto-normal adds the two', () => {
  const xs = many({ distribution: 'pareto', shape: 3, scale: 10 })
  assert.ok(Math.min(...xs) >= 10)
  assert.ok(Math.abs(mean(xs) - 15) < 1, `mean ${mean(xs)} (3·10/2 expected)`)
  assert.ok(Math.max(...xs) > 50, 'tail')
  const ys = many({ distribution: 'pareto-normal', shape: 3, scale: 10, latency: 100, stddev: 0 })
  assert.ok(Math.abs(mean(ys) - 115) < 1)
})

test('a seed makes samples repeatable', () => {
  assert.deepEqual(
    many({ distribution: 'normal', latency: 5, stddev: 2 }, 5),
    many({ distribution: 'normal', latency: 5, stddev: 2 }, 5),
  )
})
