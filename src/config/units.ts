// Durations (`500us`, `250ms`, `2s`, `1m`, `1h30m`) and sizes (`64KiB`, `10MB`) as config accepts them.
// Plain numbers mean milliseconds and bytes. Each parser returns a number or an error message.

/** Milliseconds per unit; microseconds divide (a factor of 0.001 is not exact in binary). */
const durationUnits: Record<string, number> = {
  us: -1000,
  µs: -1000,
  ms: 1,
  s: 1000,
  m: 60_000,
  h: 3_600_000,
  d: 86_400_000,
}
const durationPart = /(\d+)(?:\.(\d+))?(us|µs|ms|s|m|h|d)/y

/**
 * `whole.frac` times `unit` (a negative unit divides), as the nearest double to the exact value:
 * the digits as one integer, one product, one division. 1.001s is 1001, not 1000.9999999999999.
 */
function scaled(whole: string, frac: string, unit: number): number {
  const product = Number(whole + frac) * (unit < 0 ? 1 : unit)
  const divisor = 10 ** frac.length * (unit < 0 ? -unit : 1)
  if (Number.isSafeInteger(product) && frac.length <= 15) return product / divisor
  // Too many digits for that to be exact (0.000…5): the decimal as a double, then the unit.
  const n = Number(frac ? `${whole}.${frac}` : whole)
  return unit < 0 ? n / -unit : n * unit
}

/**
 * The longest duration accepted: 2^31-1 ms (about 24.8 days), the longest a Node.js timer waits. A
 * longer one would fire after 1 ms (a health check every millisecond, a drain that closes at once).
 */
export const maxDuration = 2 ** 31 - 1
const tooLong = (value: unknown) =>
  `${typeof value === 'string' ? `"${value}"` : value} is longer than the longest duration, 24d20h31m23.647s (${maxDuration}ms)`

/** Milliseconds from a duration, or a string saying why it is not one. */
export function parseDuration(value: unknown): number | string {
  const r = parseAnyDuration(value)
  return typeof r === 'number' && r > maxDuration ? tooLong(value) : r
}

function parseAnyDuration(value: unknown): number | string {
  if (typeof value === 'number') {
    return Number.isFinite(value) && value >= 0 ? value : 'must be a non-negative number of milliseconds'
  }
  if (typeof value !== 'string') return 'must be a duration such as 250ms, 2s, 1m or a number of milliseconds'
  const text = value.trim()
  // More digits than a double holds give Infinity, which parseDuration refuses as too long.
  if (/^\d+(\.\d+)?$/.test(text)) return Number(text)
  let total = 0
  durationPart.lastIndex = 0
  let matched = false
  while (durationPart.lastIndex < text.length) {
    const m = durationPart.exec(text)
    if (!m) return `"${value}" is not a duration (use e.g. 250ms, 2s, 1m, 1h30m)`
    total += scaled(m[1]!, m[2] ?? '', durationUnits[m[3]!]!)
    matched = true
  }
  return matched ? total : `"${value}" is not a duration (use e.g. 250ms, 2s, 1m, 1h30m)`
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

/** Bytes from a size, or a string saying why it is not one. */
export function parseSize(value: unknown): number | string {
  if (typeof value === 'number') {
    return Number.isFinite(value) && value >= 0 ? Math.floor(value) : 'must be a non-negative number of bytes'
  }
  if (typeof value !== 'string') return 'must be a size such as 64KiB, 10MB or a number of bytes'
  const m = /^(\d+)(?:\.(\d+))?\s*([a-z]*)$/i.exec(value.trim())
  const unit = m ? sizeUnits[(m[3] || 'b').toLowerCase()] : undefined
  if (!m || unit === undefined) return `"${value}" is not a size (use e.g. 512B, 64KiB, 10MB, 1GiB)`
  // In integers, so that 4.35kb is 4350 bytes (4.35 * 1000 is 4349.999… in doubles).
  const frac = m[2] ?? ''
  const n = Number((BigInt(m[1]! + frac) * BigInt(unit)) / 10n ** BigInt(frac.length))
  return Number.isFinite(n) ? n : `"${value}" is too large a size`
}

/** A duration for humans that parses back to exactly `ms`: 1500 → "1.5s", 0.25 → "0.25ms". */
export function formatDuration(ms: number): string {
  if (ms === 0) return '0ms'
  if (ms % 3_600_000 === 0) return `${ms / 3_600_000}h`
  if (ms % 60_000 === 0) return `${ms / 60_000}m`
  // Seconds only when they read back to the same double (1234.5678 / 1000 * 1000 may not).
  if (ms >= 1000 && Number(String(ms / 1000)) * 1000 === ms) return `${ms / 1000}s`
  return `${plainNumber(ms)}ms`
}

/** A number in decimal digits without an exponent (5e-7 → "0.0000005"), reading back to the same double. */
export function plainNumber(n: number): string {
  const text = String(n)
  const m = /^(\d)(?:\.(\d+))?e([+-]\d+)$/.exec(text)
  if (!m) return text
  const digits = m[1]! + (m[2] ?? '')
  const exp = Number(m[3])
  if (exp < 0) return `0.${'0'.repeat(-exp - 1)}${digits}`
  return digits.length > exp + 1
    ? `${digits.slice(0, exp + 1)}.${digits.slice(exp + 1)}`
    : digits.padEnd(exp + 1, '0')
}
