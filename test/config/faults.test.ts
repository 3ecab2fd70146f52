import assert from 'node:assert/strict'
import { test } from 'node:test'
import { checkFaultNames, faultDocument, flowsOf, parseFault } from '../../src/config/faults.ts'

const ok = (doc: unknown) => {
  const r = parseFault(doc, 'f')
  assert.deepEqual(r.issues, [], JSON.stringify(doc))
  return r.fault!
}

test('defaults: to-client, probability 1, name TYPE-DIRECTION, per-chunk fixed latency', () => {
  const f = ok({ type: 'latency', latency: '100ms' })
  assert.equal(f.name, 'latency-to-client')
  assert.equal(f.direction, 'to-client')
  assert.equal(f.probability, 1)
  assert.equal(f.schedule, null)
  assert.equal(f.type === 'latency' && f.distribution, 'fixed')
  assert.equal(f.type === 'latency' && f.mode, 'per-chunk')
})

test('units: durations, sizes, microseconds', () => {
  const b = ok({ type: 'bandwidth', rate: '1MB' })
  assert.equal(b.type === 'bandwidth' && b.rate, 1_000_000)
  const s = ok({ type: 'slicer', average_size: '1KiB', delay: '500us' })
  assert.equal(s.type === 'slicer' && s.averageSize, 1024)
  assert.equal(s.type === 'slicer' && s.delay, 0.5)
})

test('bad faults name the field and the reason', () => {
  const cases: [unknown, string, RegExp][] = [
    [{ type: 'bandwidth', rate: 0 }, 'f.rate', /at least 1 byte/],
    [{ type: 'bandwidth' }, 'f.rate', /./],
    [{ type: 'latency', probability: 1.5 }, 'f.probability', /at most 1/],
    [{ type: 'latency', direction: 'sideways' }, 'f.direction', /to-upstream, to-client or both/],
    [
      { type: 'latency', distribution: 'uniform', min: '20ms', max: '10ms' },
      'f',
      /min must not be greater than max/,
    ],
    [{ type: 'latency', lag: '1s' }, 'f.lag', /unknown field "lag" for a latency fault/],
    [{ type: 'nap' }, 'f.type', /unknown fault type "nap"/],
    [{}, 'f.type', /is missing/],
    ['latency', 'f', /must be a fault object/],
    [{ type: 'blackhole', schedule: 'whenever' }, 'f.schedule', /unknown schedule key/],
    [{ type: 'packet_loss', rate: 0.1, retransmit: 0 }, 'f.retransmit', /at least 1ms/],
  ]
  for (const [doc, path, re] of cases) {
    const r = parseFault(doc, 'f')
    assert.equal(r.fault, null, JSON.stringify(doc))
    const issue = r.issues.find((i) => i.path === path)
    assert.ok(issue, `${JSON.stringify(doc)}: no issue at ${path} in ${JSON.stringify(r.issues)}`)
    assert.match(issue.message, re)
  }
})

test('names must be unique; connect-time faults have no stream direction', () => {
  const a = ok({ type: 'latency' })
  const b = ok({ type: 'latency' })
  assert.match(checkFaultNames([a, b], 'faults')[0]!.message, /already exists/)
  assert.deepEqual(flowsOf(ok({ type: 'refuse' })), [])
  assert.deepEqual(flowsOf(ok({ type: 'latency', direction: 'both' })), ['to-upstream', 'to-client'])
})

test("faultDocument is parseFault's inverse", () => {
  const docs = [
    {
      type: 'latency',
      distribution: 'normal',
      latency: '100ms',
      stddev: '10ms',
      mode: 'once',
      probability: 0.5,
    },
    { type: 'latency', distribution: 'pareto', shape: 2.5, scale: '3ms' },
    { type: 'jitter', amplitude: '15ms', frequency: 2 },
    { type: 'slicer', average_size: 10, size_variation: 3, delay: '250us' },
    { type: 'packet_loss', rate: 0.2, correlation: 0.3, schedule: 'start:1s,duration:2s' },
    { type: 'timeout', timeout: 0, direction: 'to-upstream' },
    { type: 'close' },
    // Parameters the distribution does not sample (shape for fixed, jitter for normal) act on nothing.
    { type: 'latency', latency: '5ms', shape: 0, stddev: '3ms' },
    { type: 'latency', distribution: 'normal', latency: '5ms', jitter: '1ms', min: '2ms' },
    // Durations below a microsecond, or with more digits than whole µs, print as plain decimal ms.
    { type: 'latency', distribution: 'normal', stddev: 5e-324 },
    { type: 'slow_close', delay: '0.0004ms' },
    { type: 'timeout', timeout: '1.0005ms' },
    // A connect-time fault has no stream: its direction does not act and is not printed.
    { type: 'close', direction: 'to-upstream' },
    { type: 'refuse', direction: 'both', name: 'r' },
  ]
  assert.equal(faultDocument(ok({ type: 'slicer', delay: '500us' })).delay, '500us')
  for (const d of docs) {
    const f = ok(d)
    assert.deepEqual(ok(faultDocument(f)), f, JSON.stringify(d))
  }
})
