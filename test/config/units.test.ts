import assert from 'node:assert/strict'
import { test } from 'node:test'
import { formatDuration, parseDuration, parseSize } from '../../src/config/units.ts'

test('durations accept units, compound forms and plain milliseconds', () => {
  const cases: [unknown, number][] = [
    [250, 250],
    ['250', 250],
    ['250ms', 250],
    ['2s', 2000],
    ['1.5s', 1500],
    ['1m', 60_000],
    ['1h30m', 5_400_000],
    ['1d', 86_400_000],
    ['1.001s', 1001],
    ['1001us', 1.001],
    ['1.1h', 3_960_000],
    [' 3s ', 3000],
    [0, 0],
  ]
  for (const [input, want] of cases)
    assert.equal(parseDuration(input), want, `parseDuration(${JSON.stringify(input)})`)
})

test('bad durations give a reason instead of a number', () => {
  const huge = '9'.repeat(400)
  for (const input of ['2x', 's', '', '-1s', -5, Number.NaN, true, null, '1s2', '2 s', huge, `${huge}ms`]) {
    const r = parseDuration(input)
    assert.equal(typeof r, 'string', `parseDuration(${JSON.stringify(input)}) should fail, got ${r}`)
  }
})

test('durations stop at 2^31-1 ms, the longest a timer waits (longer ones fire after 1 ms)', () => {
  assert.equal(parseDuration(2 ** 31 - 1), 2 ** 31 - 1)
  assert.equal(parseDuration('24d'), 24 * 86_400_000)
  for (const input of [2 ** 31, '25d', '30d', '24d20h31m23.648s', '597h'])
    assert.match(String(parseDuration(input)), /longer than the longest duration/, JSON.stringify(input))
})

test('sizes accept decimal and binary units', () => {
  const cases: [unknown, number][] = [
    [512, 512],
    ['512B', 512],
    ['64KiB', 65536],
    ['10MB', 10_000_000],
    ['1GiB', 1024 ** 3],
    ['1.5KiB', 1536],
    ['2kb', 2000],
    ['4.35kb', 4350],
    ['0.07KB', 70],
  ]
  for (const [input, want] of cases)
    assert.equal(parseSize(input), want, `parseSize(${JSON.stringify(input)})`)
  for (const input of ['10XB', 'KiB', -1, '1e3', `${'9'.repeat(400)}GiB`])
    assert.equal(typeof parseSize(input), 'string', `parseSize(${JSON.stringify(input)})`)
})

test('formatDuration is the inverse', () => {
  for (const ms of [0, 250, 1500, 2000, 60_000, 3_600_000, 1_048_574, 1e-7, 5e-324, 0.25])
    assert.equal(parseDuration(formatDuration(ms)), ms, `${ms} → ${formatDuration(ms)}`)
  assert.equal(formatDuration(1e-7), '0.0000001ms')
  assert.equal(formatDuration(1500), '1.5s')
})
