// Properties of durations and sizes (src/config/units.ts) and addresses (src/config/address.ts):
// any input gives a number or a reason (never a throw), and what sluice prints parses back.
import assert from 'node:assert/strict'
import { isIP } from 'node:net'
import { test } from 'node:test'
import {
  joinHostPort,
  listenOverlaps,
  parseListen,
  parseTarget,
  splitHostPort,
} from '../../src/config/address.ts'
import { formatDuration, parseDuration, parseSize } from '../../src/config/units.ts'
import { check, fc, noisyString } from './fuzz.ts'

const durationUnits: Record<string, number> = {
  us: 0.001,
  µs: 0.001,
  ms: 1,
  s: 1000,
  m: 60_000,
  h: 3_600_000,
  d: 86_400_000,
}
const sizeUnits: Record<string, number> = {
  b: 1,
  kb: 1e3,
  mb: 1e6,
  gb: 1e9,
  kib: 1024,
  mib: 1024 ** 2,
  gib: 1024 ** 3,
}

/** Inputs a config may hold where a duration or size goes: numbers, text near the grammar, other JSON. */
const anyValue = fc.oneof(
  noisyString('0123456789.usmhdµkKiIbBgG -+e'),
  // Long runs of digits: more than a double holds (Infinity), more than a timer waits.
  fc
    .tuple(fc.integer({ min: 1, max: 400 }), fc.constantFrom('', 'ms', 's', 'd', 'us', 'B', 'GiB', '.5'))
    .map(([n, unit]) => `${'9'.repeat(n)}${unit}`),
  fc.constantFrom(2 ** 31, 3e9, '25d', '30d', '24d20h31m23.648s', '596h', 1e21, 1e300),
  fc.double(),
  fc.integer(),
  fc.constantFrom(null, undefined, true, false, '', 'off', [], {}),
  fc.string(),
)

/** The longest a Node.js timer waits (2^31-1 ms, about 24.8 days): a longer one fires after 1 ms. */
const timerMax = 2 ** 31 - 1

test('any value as a duration: a number of ms a timer can wait (0 to 2^31-1), or a reason', () => {
  check(
    fc.property(anyValue, (x) => {
      const r = parseDuration(x)
      if (typeof r === 'string') assert.ok(r.length > 0)
      else
        assert.ok(Number.isFinite(r) && r >= 0 && r <= timerMax, `parseDuration(${JSON.stringify(x)}) = ${r}`)
    }),
    1000,
  )
})

test('any value as a size: a whole, non-negative number of bytes or a reason', () => {
  check(
    fc.property(anyValue, (x) => {
      const r = parseSize(x)
      if (typeof r === 'string') assert.ok(r.length > 0)
      else assert.ok(Number.isInteger(r) && r >= 0, `parseSize(${JSON.stringify(x)}) = ${r}`)
    }),
    1000,
  )
})

test('a compound duration is the sum of its parts', () => {
  const part = fc.tuple(fc.integer({ min: 0, max: 5 }), fc.constantFrom(...Object.keys(durationUnits)))
  check(
    fc.property(
      fc.array(part, { minLength: 1, maxLength: 4 }),
      fc.constantFrom('', ' ', '\t'),
      (parts, pad) => {
        const text = `${pad}${parts.map(([n, u]) => `${n}${u}`).join('')}${pad}`
        const want = parts.reduce((s, [n, u]) => s + n * durationUnits[u]!, 0)
        const got = parseDuration(text)
        assert.equal(typeof got, 'number', `${text}: ${got}`)
        assert.ok(Math.abs((got as number) - want) <= 1e-9 * Math.max(1, want), `${text}: ${got} ≠ ${want}`)
      },
    ),
  )
})

test('a decimal duration is read exactly: 1.001s is 1001ms', () => {
  check(
    fc.property(
      fc.integer({ min: 0, max: 100_000 }),
      fc.stringMatching(/^\d{1,4}$/),
      fc.constantFrom(...Object.keys(durationUnits)),
      (whole, frac, unit) => {
        const text = `${whole}.${frac}${unit}`
        const got = parseDuration(text)
        if (typeof got === 'string') return assert.match(got, /longer than/)
        // The nearest double to the exact value: an integer product, one division.
        const micro = unit === 'us' || unit === 'µs'
        const want =
          (Number(`${whole}${frac}`) * (micro ? 1 : durationUnits[unit]!)) /
          (10 ** frac.length * (micro ? 1000 : 1))
        assert.equal(got, want, text)
      },
    ),
  )
})

test('a size with a unit is that many bytes, rounded down', () => {
  check(
    fc.property(
      fc.integer({ min: 0, max: 1_000_000 }),
      fc.option(fc.integer({ min: 0, max: 99 })),
      fc.constantFrom('', ...Object.keys(sizeUnits), 'KiB', 'MB', 'Gib'),
      fc.constantFrom('', ' '),
      (whole, frac, unit, space) => {
        const fracText = frac === null ? '' : String(frac)
        const num = frac === null ? `${whole}` : `${whole}.${fracText}`
        const got = parseSize(`${num}${space}${unit}`)
        // Exactly, in integers: 4.35kb is 4350 bytes (4.35 * 1000 in doubles is 4349.999…).
        const factor = BigInt(sizeUnits[(unit || 'b').toLowerCase()]!)
        const scaled = BigInt(`${whole}${fracText}`) * factor
        assert.equal(got, Number(scaled / 10n ** BigInt(fracText.length)), `${num}${unit}`)
      },
    ),
  )
})

/** Durations as sluice holds them: whole ms, µs fractions, and any double in range. */
const millis = fc.oneof(
  fc.integer({ min: 0, max: timerMax }),
  fc.integer({ min: 0, max: 1e9 }).map((us) => us / 1000),
  fc.double({ min: 0, max: timerMax, noNaN: true }),
  fc.constantFrom(0, 1000, 60_000, 3_600_000, 86_400_000, 90_000, 1500),
)

test('a formatted duration parses back to the same number of milliseconds', () => {
  check(
    fc.property(millis, (ms) => {
      const text = formatDuration(ms)
      assert.equal(parseDuration(text), ms, `${ms} → ${text}`)
    }),
    1000,
  )
})

// --- Addresses -----------------------------------------------------------------------------------

const ipv4 = fc.ipV4()
const ipv6 = fc.ipV6()
const hostName = fc
  .array(fc.stringMatching(/^[A-Za-z0-9_]([A-Za-z0-9_-]{0,10}[A-Za-z0-9_])?$/), {
    minLength: 1,
    maxLength: 4,
  })
  .map((labels) => labels.join('.'))
  .filter((h) => !/(^|\.)(\d+|0x[0-9a-f]*)$/i.test(h))
const port = fc.integer({ min: 1, max: 65535 })
const addressText = fc.oneof(
  noisyString('0123456789abcdef:[].*-_ ', 30),
  fc
    .tuple(
      fc.oneof(ipv4, ipv6, hostName, fc.constantFrom('', '*', 'localhost', '::', '0.0.0.0')),
      fc.integer({ min: -5, max: 70000 }),
    )
    .map(([h, p]) => `${h.includes(':') ? `[${h}]` : h}:${p}`),
  fc.tuple(ipv6, port).map(([h, p]) => `${h}:${p}`),
  fc.string(),
)

test('any text as a listen or target address: a valid address or a reason', () => {
  check(
    fc.property(fc.oneof(addressText, fc.integer(), fc.constantFrom(null, true, {}, 8080.5)), (x) => {
      const l = parseListen(x)
      if (typeof l !== 'string') {
        assert.ok(Number.isInteger(l.port) && l.port >= 1 && l.port <= 65535)
        assert.ok(l.host === null || isIP(l.host) !== 0, `listen host ${l.host}`)
        // The key is canonical: it reads back to the same address.
        assert.deepEqual(parseListen(l.key), l)
      }
      const t = parseTarget(x)
      if (typeof t !== 'string') {
        assert.ok(Number.isInteger(t.port) && t.port >= 1 && t.port <= 65535)
        assert.ok(t.host.length > 0)
        assert.deepEqual(parseTarget(joinHostPort(t.host, t.port)), t)
      }
      if (typeof x === 'string') {
        const hp = splitHostPort(x)
        if (typeof hp !== 'string') assert.ok(Number.isInteger(hp.port) && hp.port >= 0)
      }
    }),
    1500,
  )
})

test('host and port joined then split give the same host and port', () => {
  check(
    fc.property(fc.oneof(ipv4, ipv6, hostName), port, (host, p) => {
      const text = joinHostPort(host, p)
      assert.deepEqual(parseTarget(text), { host, port: p })
      if (isIP(host)) {
        const l = parseListen(text)
        assert.ok(typeof l !== 'string', String(l))
        assert.equal(l.port, p)
        assert.ok(listenOverlaps(l, l))
      }
    }),
  )
})

test('listen overlap is symmetric', () => {
  const listen = fc
    .tuple(fc.constantFrom('', '0.0.0.0', '::', '127.0.0.1', '::1', '10.0.0.1'), fc.constantFrom(80, 81, 0))
    .map(([h, p]) => parseListen(`${h.includes(':') ? `[${h}]` : h}:${p}`, true))
    .filter((l) => typeof l !== 'string')
  check(
    fc.property(listen, listen, (a, b) => {
      if (typeof a === 'string' || typeof b === 'string') return
      assert.equal(listenOverlaps(a, b), listenOverlaps(b, a))
    }),
  )
})
