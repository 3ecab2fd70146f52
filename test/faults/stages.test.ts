import assert from 'node:assert/strict'
import { test } from 'node:test'
import { type FaultSpec, parseFault } from '../../src/config/faults.ts'
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

test("jitter as fault's: frequency ≥ 1 delays every chunk, within [0, amplitude], order kept", async () => {
  const h = harness({ type: 'jitter', amplitude: '20ms', frequency: 5 })
  const t0 = performance.now()
  for (let i = 0; i < 50; i++) h.stage.push(Buffer.from(String.fromCharCode(65 + (i % 26))))
  await waitFor(() => h.got.length === 50, 'every chunk through', 3000)
  assert.equal(h.fired.value, 50, 'every read/write drew a delay')
  assert.equal(h.bytes(), 'ABCDEFGHIJKLMNOPQRSTUVWXYZABCDEFGHIJKLMNOPQRSTUVWX')
  assert.ok(h.got.at(-1)!.at - t0 < 20 + 200, 'no delay beyond the amplitude (plus scheduling)')
})

test("jitter as fault's: frequency 0.3 delays about 30 % of the chunks (a draw per chunk)", async () => {
  const h = harness({ type: 'jitter', amplitude: '1ms', frequency: 0.3 })
  for (let i = 0; i < 1000; i++) h.stage.push(Buffer.from('x'))
  await waitFor(() => h.got.length === 1000, 'every chunk through', 3000)
  assert.ok(h.fired.value > 240 && h.fired.value < 360, `${h.fired.value} of 1000 delayed`)
})

test('jitter per_second: the rate-limited variant delays at most that many chunks a second', async () => {
  const h = harness({ type: 'jitter', amplitude: '1ms', per_second: 2 })
  for (let i = 0; i < 100; i++) h.stage.push(Buffer.from('x'))
  await waitFor(() => h.got.length === 100, 'every chunk through', 3000)
  assert.equal(h.fired.value, 1, 'a burst within one second is delayed once')
})

test("slicer halves a chunk until pieces are at most average_size + size_variation, as Toxiproxy's", () => {
  const sizes = (average_size: number, length: number) => {
    const h = harness({ type: 'slicer', average_size, size_variation: 0 })
    h.stage.push(Buffer.alloc(length, 1))
    return h.got.map((g) => g.item!.length)
  }
  // Toxiproxy splits in two and recurses, so pieces come out even, never with a short tail.
  assert.deepEqual(sizes(10, 24), [6, 6, 6, 6])
  assert.deepEqual(sizes(64, 100), [50, 50])
  assert.deepEqual(sizes(4, 4), [4])
  assert.deepEqual(sizes(1, 5), [1, 1, 1, 1, 1])
  const h = harness({ type: 'slicer', average_size: 64, size_variation: 16 })
  const data = Buffer.from(Array.from({ length: 5000 }, (_, i) => i % 251))
  h.stage.push(data)
  assert.ok(Buffer.concat(h.got.map((g) => g.item!)).equals(data), 'every byte, in order')
  for (const g of h.got) assert.ok(g.item!.length >= 1 && g.item!.length <= 80, `${g.item!.length} bytes`)
})

test("slicer waits its delay after every piece, as Toxiproxy's: the next chunk and the end wait too", async () => {
  const h = harness({ type: 'slicer', average_size: 100, delay: '30ms' })
  h.stage.push(Buffer.from('abc'))
  h.stage.push(Buffer.from('def'))
  h.stage.push(null)
  await waitFor(() => h.got.length === 3, 'both chunks and the end', 2000)
  assert.equal(h.bytes(), 'abcdef')
  assert.ok(
    h.got[1]!.at - h.got[0]!.at >= 28,
    `second chunk ${(h.got[1]!.at - h.got[0]!.at).toFixed(1)} ms later`,
  )
  assert.ok(h.got[2]!.at - h.got[1]!.at >= 28, `end ${(h.got[2]!.at - h.got[1]!.at).toFixed(1)} ms later`)
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
