// Unit tests: a tunnel client's retry waits and which failures it reports (the clock is a variable).
import assert from 'node:assert/strict'
import { test } from 'node:test'
import { BACKOFF_MAX, Backoff, PeerReport, type Report, SUMMARY_EVERY } from '../../src/tunnel/reconnect.ts'

test('Backoff: connect_interval, doubling to the cap, connect_interval again after a success', () => {
  const b = new Backoff(1000)
  const waits = Array.from({ length: 8 }, () => b.failed())
  assert.deepEqual(waits, [1000, 2000, 4000, 8000, 16000, BACKOFF_MAX, BACKOFF_MAX, BACKOFF_MAX])
  b.reset()
  assert.equal(b.failed(), 1000)
  // A connect_interval longer than the cap is kept as it is.
  const slow = new Backoff(45_000)
  assert.deepEqual([slow.failed(), slow.failed()], [45_000, 45_000])
})

test('PeerReport: one line when the peer becomes unreachable, a summary every minute, the spell told on recovery', () => {
  let now = 0
  const r = new PeerReport(() => now)
  const refused = { error: 'connection refused (127.0.0.1:1)', cause: 'ECONNREFUSED' }
  assert.deepEqual(r.failed(0, refused, 0), { kind: 'unreachable', failure: refused })
  const lines: { at: number; line: NonNullable<Report> }[] = []
  // Two slots failing every second for three minutes and a bit.
  for (let i = 1; i <= 190; i++) {
    now = i * 1000
    for (const slot of [0, 1]) {
      const line = r.failed(slot, refused, 0)
      if (line) lines.push({ at: now, line })
    }
  }
  assert.deepEqual(
    lines.map((l) => [l.at, l.line.kind]),
    [
      [SUMMARY_EVERY, 'still-unreachable'],
      [2 * SUMMARY_EVERY, 'still-unreachable'],
      [3 * SUMMARY_EVERY, 'still-unreachable'],
    ],
  )
  const first = lines[0]!.line
  assert.ok(first.kind === 'still-unreachable')
  assert.equal(first.attempts, 1 + 2 * 59 + 1)
  assert.equal(first.forMs, SUMMARY_EVERY)
  const spell = r.up(0)
  assert.deepEqual(spell, { attempts: 1 + 2 * 190, downForMs: 190_000, lastError: refused.error })
  // Up again: the other slot failing is said once, until it is up itself.
  assert.equal(r.failed(1, refused, 1)?.kind, 'slot-failing')
  assert.equal(r.failed(1, refused, 1), null)
  assert.equal(r.up(1), null)
  assert.equal(r.failed(1, refused, 1)?.kind, 'slot-failing')
  // Everything down again: a new spell, reported at once.
  assert.equal(r.failed(0, refused, 0)?.kind, 'unreachable')
})
