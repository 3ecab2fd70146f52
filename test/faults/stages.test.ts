import assert from 'node:assert/strict'
import { test } from 'node:test'
import { type FaultSpec, parseFault } from '../../src/faults/model.ts'
import { seeded } from '../../src/faults/random.ts'
import { type Item, type Stage, type StageContext, stageFor } from '../../src/faults/stages.ts'
import { waitFor } from '../helpers.ts'

const spec = (doc: Record<string, unknown>): FaultSpec => parseFault(doc, 'f').fault!

/** A stage feeding a recorder; returns what arrived, with times. */
function harness(doc: Record<string, unknown>) {
  const got: { item: Item; at: number }[] = []
  const actions: string[] = []
  const ctx: StageContext = {
    close: () => actions.push('close'),
    reset: () => actions.push('reset'),
    released: () => {},
    rng: seeded(7),
  }
  const fired = { value: 0 }
  const stage = stageFor(spec(doc), ctx, fired, true) as Stage
  stage.next = { push: (item) => got.push({ item, at: performance.now() }) }
  stage.activate()
  const bytes = () => Buffer.concat(got.flatMap((g) => (g.item ? [g.item] : []))).toString()
  return { stage, got, actions, fired, bytes }
}

test('latency with jitter keeps order even when a later chunk draws a shorter delay', async () => {
  const h = harness({ type: 'latency', latency: '30ms', jitter: '25ms' })
  const t0 = performance.now()
  for (let i = 0; i < 20; i++) h.stage.push(Buffer.from(String.fromCharCode(97 + i)))
  h.stage.push(null)
  await waitFor(() => h.got.length === 21, 'everything through', 2000)
  assert.equal(h.bytes(), 'abcdefghijklmnopqrst')
  assert.equal(h.got.at(-1)!.item, null, 'end of stream last')
  assert.ok(h.got[0]!.at - t0 >= 4)
  assert.equal(h.fired.value, 20)
})

test('removing a delaying stage releases what it holds at once, in order', () => {
  const h = harness({ type: 'latency', latency: '10s' })
  h.stage.push(Buffer.from('one '))
  h.stage.push(Buffer.from('two'))
  assert.equal(h.got.length, 0)
  assert.equal(h.stage.held, 7)
  h.stage.remove()
  assert.equal(h.bytes(), 'one two')
  assert.equal(h.stage.held, 0)
})

test('bandwidth: 10 000 B at 100 000 B/s take about 100 ms, spread in pieces', async () => {
  const h = harness({ type: 'bandwidth', rate: 100_000 })
  const t0 = performance.now()
  h.stage.push(Buffer.alloc(10_000, 1))
  await waitFor(() => h.got.reduce((n, g) => n + (g.item?.length ?? 0), 0) === 10_000, 'all bytes', 2000)
  const took = h.got.at(-1)!.at - t0
  assert.ok(took >= 95 && took < 140, `${took.toFixed(1)} ms`)
  assert.ok(h.got.length >= 9, `${h.got.length} pieces`)
})

test('limit_data passes exactly the limit, ends the stream and closes', () => {
  const h = harness({ type: 'limit_data', bytes: 5, direction: 'to-upstream' })
  h.stage.push(Buffer.from('abc'))
  h.stage.push(Buffer.from('defgh'))
  h.stage.push(Buffer.from('ignored'))
  assert.equal(h.bytes(), 'abcde')
  assert.equal(h.got.at(-1)!.item, null)
  assert.deepEqual(h.actions, ['close'])
})

test('blackhole holds until disabled; timeout drops and closes when removed', () => {
  const b = harness({ type: 'blackhole' })
  b.stage.push(Buffer.from('held'))
  assert.equal(b.got.length, 0)
  b.stage.setEnabled(false)
  assert.equal(b.bytes(), 'held')
  b.stage.push(Buffer.from('!'))
  assert.equal(b.bytes(), 'held!')
  const t = harness({ type: 'timeout', timeout: 0 })
  t.stage.push(Buffer.from('dropped'))
  assert.equal(t.got.length, 0)
  t.stage.remove()
  assert.deepEqual(t.actions, ['close'])
  assert.equal(t.got.at(-1)!.item, null)
})

test('packet loss keeps every byte and order; stalls add up for consecutive losses', async () => {
  const h = harness({ type: 'packet_loss', rate: 0.5, retransmit: '5ms', max_retransmit: '20ms' })
  const t0 = performance.now()
  for (let i = 0; i < 40; i++) h.stage.push(Buffer.from([i]))
  await waitFor(() => h.got.length === 40, 'all chunks', 5000)
  assert.deepEqual(
    [...Buffer.concat(h.got.map((g) => g.item!))],
    Array.from({ length: 40 }, (_, i) => i),
  )
  assert.ok(h.fired.value > 5, `${h.fired.value} losses`)
  assert.ok(h.got.at(-1)!.at - t0 >= h.fired.value * 5 * 0.9, 'stalls add up (each at least 5 ms)')
})

test('reset with rate 1 resets on the first chunk; slow_close holds the end only', async () => {
  const r = harness({ type: 'reset', direction: 'to-upstream' })
  r.stage.push(Buffer.from('x'))
  assert.deepEqual(r.actions, ['reset'])
  assert.equal(r.got.length, 0)
  const s = harness({ type: 'slow_close', delay: '50ms' })
  const t0 = performance.now()
  s.stage.push(Buffer.from('data'))
  s.stage.push(null)
  assert.equal(s.bytes(), 'data')
  await waitFor(() => s.got.length === 2, 'the end', 1000)
  assert.ok(s.got[1]!.at - t0 >= 45)
})

test('a wait longer than a timer can hold (a tiny Toxiproxy bandwidth) holds the bytes without overflowing', async () => {
  const warnings: string[] = []
  const onWarning = (w: Error) => warnings.push(w.name)
  process.on('warning', onWarning)
  // Toxiproxy's rate is KB/s and may be fractional: 1e-82 KB/s books the next piece eons away.
  const h = harness({ type: 'bandwidth', rate: 1 })
  try {
    h.stage.update({ ...spec({ type: 'bandwidth', rate: 1 }), rate: 1e-79 } as FaultSpec)
    h.stage.push(Buffer.from('held'))
    await new Promise((r) => setTimeout(r, 30))
    assert.equal(h.got.length, 0)
    assert.deepEqual(warnings, [], 'no TimeoutOverflowWarning: the timer is not re-run every millisecond')
  } finally {
    h.stage.remove()
    process.off('warning', onWarning)
  }
  assert.equal(h.bytes(), 'held')
})
