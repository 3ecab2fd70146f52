// Shared settings for the property tests: one seed for every run (FUZZ_SEED overrides it, and a
// failure prints it), bounded run counts (FUZZ_RUNS scales them), and the "coded error" check.
import fc from 'fast-check'
import { codes } from '../../src/errors.ts'

export { fc }

/** The seed every property runs with; `FUZZ_SEED=n` replays or explores another sequence. */
export const seed = process.env.FUZZ_SEED ? Number(process.env.FUZZ_SEED) : 42
/** How many times the default runs each property makes (`FUZZ_RUNS`, default 1). */
export const scale = process.env.FUZZ_RUNS ? Number(process.env.FUZZ_RUNS) : 1

/** Each property stops after this long even when runs are left (a bound, not a failure). */
const timeLimitMs = 8000

function options(numRuns: number, timeout?: number) {
  return {
    seed,
    ...(timeout ? { timeout } : {}),
    numRuns: Math.max(1, Math.round(numRuns * scale)),
    interruptAfterTimeLimit: timeLimitMs,
    markInterruptAsFailure: false,
  }
}

function withSeed(err: unknown): never {
  if (err instanceof Error) err.message = `FUZZ_SEED=${seed} (rerun with it to reproduce)\n${err.message}`
  throw err
}

/** Run a synchronous property `numRuns` times with the fixed seed. */
export function check<T>(prop: fc.IProperty<T>, numRuns = 300): void {
  try {
    fc.assert(prop, options(numRuns))
  } catch (err) {
    withSeed(err)
  }
}

/** Run an asynchronous property; each run must settle within `timeoutMs` (a hang is a failure). */
export async function checkAsync<T>(prop: fc.IAsyncProperty<T>, numRuns = 100, timeoutMs = 5000) {
  try {
    await fc.assert(prop, options(numRuns, timeoutMs))
  } catch (err) {
    withSeed(err)
  }
}

/** An error sluice may throw: an Error whose `code` is declared in src/errors.ts. Anything else is rethrown. */
export function coded(err: unknown, allowed?: readonly string[]): string {
  const code = (err as { code?: unknown } | null)?.code
  if (!(err instanceof Error) || typeof code !== 'string' || !(code in codes)) throw err
  if (allowed && !allowed.includes(code)) throw err
  return code
}

/** `fn()`'s value, or the code of the coded error it threw (anything else fails the property). */
export function outcome<T>(fn: () => T, allowed?: readonly string[]): { value: T } | { code: string } {
  try {
    return { value: fn() }
  } catch (err) {
    return { code: coded(err, allowed) }
  }
}

/** Strings mixing the characters a parser cares about with arbitrary ones. */
export function noisyString(alphabet: string, maxLength = 40): fc.Arbitrary<string> {
  return fc
    .array(fc.oneof(fc.constantFrom(...alphabet), fc.string({ maxLength: 3 })), { maxLength })
    .map((a) => a.join(''))
}
