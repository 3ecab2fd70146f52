// Random sources and the latency distributions faults sample from. A seeded generator makes tests
// and reproductions deterministic; production uses Math.random.
import type { DelayParams } from '../config/faults.ts'

export type Rng = () => number

/** A small, fast seeded generator (mulberry32), for tests and reproducible runs. */
export function seeded(seed: number): Rng {
  let a = seed >>> 0
  return () => {
    a = (a + 0x6d2b79f5) | 0
    let t = Math.imul(a ^ (a >>> 15), 1 | a)
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296
  }
}

/** Standard normal by Box-Muller. */
export function gaussian(rng: Rng): number {
  let u = 0
  while (u === 0) u = rng()
  return Math.sqrt(-2 * Math.log(u)) * Math.cos(2 * Math.PI * rng())
}

/** Pareto with scale x_m (the minimum) and shape α. */
export function pareto(rng: Rng, scale: number, shape: number): number {
  let u = 0
  while (u === 0) u = rng()
  return scale / u ** (1 / shape)
}

/** One delay in milliseconds, never negative. */
export function sampleDelay(p: DelayParams, rng: Rng): number {
  let v: number
  switch (p.distribution) {
    case 'fixed':
      v = p.jitter > 0 ? p.latency + (rng() * 2 - 1) * p.jitter : p.latency
      break
    case 'uniform':
      v = p.min + rng() * (p.max - p.min)
      break
    case 'normal':
      v = p.latency + gaussian(rng) * p.stddev
      break
    case 'pareto':
      v = pareto(rng, p.scale, p.shape)
      break
    case 'pareto-normal':
      v = pareto(rng, p.scale, p.shape) + Math.max(0, p.latency + gaussian(rng) * p.stddev)
      break
  }
  return v > 0 ? v : 0
}
