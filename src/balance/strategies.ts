// Balancing strategies: given the candidate targets and the app's rotation state, the order in which
// to try them for one new connection. Pure apart from the state object they are handed (and the
// random source, which tests replace). The first index is the pick; the rest is the failover order.
import type { Strategy } from '../config/types.ts'

/** What a strategy may look at for one target. */
export interface Candidate {
  key: string
  weight: number
  /** Open connections to the target now (least-connections). */
  active: number
  /** Smooth weighted round-robin's running weight; owned by the target, changed by the strategy. */
  current: number
}

/** Per-app rotation state, shared by every listener of the app. */
export interface RotationState {
  next: number
}

/** Indices of `c` in try order. `clientKey` (the client's address) is asked for only by `hash`. */
export function order(
  strategy: Strategy,
  c: readonly Candidate[],
  state: RotationState,
  clientKey: string | (() => string),
  random: () => number = Math.random,
): number[] {
  const n = c.length
  if (n === 0) return []
  if (n === 1) {
    if (strategy === 'round-robin' || strategy === 'least-connections') state.next++
    return [0]
  }
  switch (strategy) {
    case 'round-robin':
      return rotation(n, state.next++ % n)
    case 'weighted-round-robin':
      return weightedRoundRobin(c)
    case 'least-connections':
      return leastConnections(c, state.next++ % n)
    case 'random':
      return weightedShuffle(c, random)
    case 'hash':
      return rendezvous(c, typeof clientKey === 'string' ? clientKey : clientKey())
  }
}

/** 0..n-1 starting at `start`, wrapping. */
export function rotation(n: number, start: number): number[] {
  const out = new Array<number>(n)
  for (let i = 0; i < n; i++) out[i] = (start + i) % n
  return out
}

/**
 * Smooth weighted round-robin (as nginx does it): each pick adds every weight to its running
 * value, takes the largest, and subtracts the total from it. Picks interleave (a,a,b with 2:1 gives
 * a,b,a) instead of bursting. Failover continues by weight, heaviest first.
 */
function weightedRoundRobin(c: readonly Candidate[]): number[] {
  let total = 0
  let best = 0
  for (let i = 0; i < c.length; i++) {
    const t = c[i]!
    t.current += t.weight
    total += t.weight
    if (t.current > c[best]!.current) best = i
  }
  c[best]!.current -= total
  const rest = c.map((_, i) => i).filter((i) => i !== best)
  rest.sort((a, b) => c[b]!.weight - c[a]!.weight || a - b)
  return [best, ...rest]
}

/** Fewest open connections per unit of weight first; ties broken by rotation so they share load. */
function leastConnections(c: readonly Candidate[], start: number): number[] {
  const n = c.length
  const idx = rotation(n, start)
  const score = (i: number) => c[i]!.active / c[i]!.weight
  // Stable sort keeps the rotation order among equal scores.
  return idx.sort((a, b) => score(a) - score(b))
}

/** Weighted random order without replacement (Efraimidis–Spirakis: smallest -ln(u)/w first). */
function weightedShuffle(c: readonly Candidate[], random: () => number): number[] {
  const keys = c.map((t) => -Math.log(1 - random()) / t.weight)
  return c.map((_, i) => i).sort((a, b) => keys[a]! - keys[b]!)
}

/**
 * Weighted rendezvous hashing of the client address: each target scores
 * -weight / ln(hash(client, target)); highest first. The same client keeps the same target while
 * it is up, and removing a target moves only the clients that were on it.
 */
function rendezvous(c: readonly Candidate[], clientKey: string): number[] {
  const scores = c.map((t) => {
    const u = (hash32(clientKey, t.key) + 0.5) / 4294967296
    return -t.weight / Math.log(u)
  })
  return c.map((_, i) => i).sort((a, b) => scores[b]! - scores[a]! || a - b)
}

/** FNV-1a over both strings, then a murmur3 finaliser for avalanche. */
export function hash32(a: string, b: string): number {
  let h = 0x811c9dc5
  for (let i = 0; i < a.length; i++) h = Math.imul(h ^ a.charCodeAt(i), 0x01000193)
  h = Math.imul(h ^ 0xff, 0x01000193)
  for (let i = 0; i < b.length; i++) h = Math.imul(h ^ b.charCodeAt(i), 0x01000193)
  h ^= h >>> 16
  h = Math.imul(h, 0x85ebca6b)
  h ^= h >>> 13
  h = Math.imul(h, 0xc2b2ae35)
  h ^= h >>> 16
  return h >>> 0
}
