import assert from 'node:assert/strict'
import { test } from 'node:test'
import { activeAt, nextChange, parseSchedule, resolveSchedule } from '../../src/config/schedule.ts'

test("fault's schedule DSL: windows, durations, bare seconds, percentages", () => {
  assert.deepEqual(parseSchedule('start:5s,duration:10s'), [
    { start: { ms: 5000 }, duration: { ms: 10_000 } },
  ])
  assert.deepEqual(parseSchedule('duration:250ms'), [{ start: { ms: 0 }, duration: { ms: 250 } }])
  assert.deepEqual(parseSchedule('start:30'), [{ start: { ms: 30_000 }, duration: null }])
  assert.deepEqual(parseSchedule('start:5%,duration:25%;start:50%'), [
    { start: { percent: 5 }, duration: { percent: 25 } },
    { start: { percent: 50 }, duration: null },
  ])
  // 2147484 s is past the longest duration (2^31-1 ms): its timer would fire after 1 ms.
  const long = ['start:2147484', `duration:${'9'.repeat(400)}`]
  for (const bad of ['begin:5s', 'start:soon', 'start:150%', '', ';', ...long]) {
    assert.equal(typeof parseSchedule(bad), 'string', bad)
  }
})

test('percentages resolve against the run duration, and need one', () => {
  const specs = parseSchedule('start:10%,duration:20%') as Exclude<ReturnType<typeof parseSchedule>, string>
  assert.deepEqual(resolveSchedule(specs, 10_000), [{ start: 1000, end: 3000 }])
  assert.match(resolveSchedule(specs, null) as string, /needs a total duration/)
})

test('active windows and their edges', () => {
  const w = [
    { start: 100, end: 200 },
    { start: 500, end: null },
  ]
  assert.equal(activeAt(w, 50), false)
  assert.equal(activeAt(w, 100), true)
  assert.equal(activeAt(w, 200), false)
  assert.equal(activeAt(w, 10_000), true)
  assert.equal(nextChange(w, 0), 100)
  assert.equal(nextChange(w, 150), 200)
  assert.equal(nextChange(w, 300), 500)
  assert.equal(nextChange(w, 600), null)
})
