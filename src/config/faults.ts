// The fault model (data only): what each fault type takes, its defaults, and validation. Pure: config files,
// the native admin API, the Toxiproxy API and the mapping CLI all end in these specs.
import * as v from 'valibot'
import { parseSchedule } from './schedule.ts'
import { parseDuration, parseSize, plainNumber } from './units.ts'

export type Distribution = 'fixed' | 'uniform' | 'normal' | 'pareto' | 'pareto-normal'

export interface DelayParams {
  distribution: Distribution
  /** fixed: the delay; normal / pareto-normal: the mean. */
  latency: number
  /** fixed: ± this, uniformly. */
  jitter: number
  stddev: number
  min: number
  max: number
  shape: number
  scale: number
}

export const faultTypes = [
  'latency',
  'jitter',
  'bandwidth',
  'slicer',
  'limit_data',
  'timeout',
  'slow_close',
  'reset_peer',
  'reset',
  'blackhole',
  'packet_loss',
  'refuse',
  'close',
  'http_error',
] as const
export type FaultType = (typeof faultTypes)[number]

/** Faults that act when a client connects, before any upstream exists. */
export const connectTimeTypes: readonly FaultType[] = ['refuse', 'close']

export const directions = ['to-upstream', 'to-client', 'both'] as const
/** `to-upstream`: client → target. `to-client`: target → client. */
export type FaultDirection = (typeof directions)[number]

interface Common {
  name: string
  direction: FaultDirection
  /** Chance (0..1) that the fault applies to a given connection (Toxiproxy's toxicity). */
  probability: number
  /** fault's schedule DSL, or null for always. */
  schedule: string | null
}

export type LatencyFault = Common &
  DelayParams & {
    type: 'latency'
    /** per-chunk: every chunk delayed, pipelined; once: only the first bytes of each direction. */
    mode: 'per-chunk' | 'once'
  }
/**
 * fault's jitter: each chunk (a read or write) is delayed, uniformly in [0, amplitude], when a draw
 * in [0, 1) is below `frequency` (so 1 or more means every chunk). With `perSecond`, sluice's
 * rate-limited variant: at most that many chunks a second are delayed, the others pass.
 */
export type JitterFault = Common & {
  type: 'jitter'
  amplitude: number
  frequency: number
  perSecond: number | null
}
export type BandwidthFault = Common & { type: 'bandwidth'; rate: number }
export type SlicerFault = Common & {
  type: 'slicer'
  averageSize: number
  sizeVariation: number
  delay: number
}
export type LimitDataFault = Common & { type: 'limit_data'; bytes: number }
export type TimeoutFault = Common & { type: 'timeout'; timeout: number }
export type SlowCloseFault = Common & { type: 'slow_close'; delay: number }
export type ResetPeerFault = Common & { type: 'reset_peer'; timeout: number }
export type ResetFault = Common & { type: 'reset'; rate: number }
export type BlackholeFault = Common & { type: 'blackhole' }
export type PacketLossFault = Common & {
  type: 'packet_loss'
  rate: number
  correlation: number
  retransmit: number
  maxRetransmit: number
}
export type RefuseFault = Common & { type: 'refuse' }
export type CloseFault = Common & { type: 'close' }
/** HTTP apps only: answer a request with this status and body instead of forwarding it. */
export type HttpErrorFault = Common & { type: 'http_error'; status: number; body: string }

/** The fault types an http app takes (latency is added before the request or the response). */
export const httpFaultTypes: readonly FaultType[] = ['latency', 'http_error']

/** The kinds of app a fault type can act on: byte faults on tcp streams, request faults on http. */
export function faultActsOn(type: FaultType): readonly ('tcp' | 'http')[] {
  if (type === 'http_error') return ['http']
  return httpFaultTypes.includes(type) ? ['tcp', 'http'] : ['tcp']
}

/** Why `type` cannot act on an app of `kind`, or null when it can (the message names the field). */
export function faultKindProblem(type: FaultType, kind: string): string | null {
  const on = faultActsOn(type)
  if ((on as readonly string[]).includes(kind)) return null
  if (kind === 'http') return `${type} acts on tcp apps; http apps take ${httpFaultTypes.join(', ')}`
  if (on.length === 1 && on[0] === 'http') return `${type} acts on http apps (kind: http) only`
  return `${kind} apps take no faults; put a tcp or http app in front of one`
}

export type FaultSpec =
  | LatencyFault
  | JitterFault
  | BandwidthFault
  | SlicerFault
  | LimitDataFault
  | TimeoutFault
  | SlowCloseFault
  | ResetPeerFault
  | ResetFault
  | BlackholeFault
  | PacketLossFault
  | RefuseFault
  | CloseFault
  | HttpErrorFault

// ---------------------------------------------------------------------------------------------
// Schema of the native format (config files and the native admin API)

const typeName = (input: unknown) =>
  Array.isArray(input) ? 'a list' : input === null ? 'null' : typeof input

function ms(description: string, opts: { min?: number } = {}) {
  return v.pipe(
    v.union([v.number(), v.string()], (i) => `must be a duration such as 100ms, not ${typeName(i.input)}`),
    v.check(
      (x) => typeof parseDuration(x) === 'number',
      (i) => String(parseDuration(i.input)),
    ),
    v.transform((x) => parseDuration(x) as number),
    v.check((x) => x >= (opts.min ?? 0), `must be at least ${opts.min ?? 0}ms`),
    v.description(description),
  )
}

function bytes(description: string, min = 0) {
  return v.pipe(
    v.union([v.number(), v.string()], (i) => `must be a size such as 64KiB, not ${typeName(i.input)}`),
    v.check(
      (x) => typeof parseSize(x) === 'number',
      (i) => String(parseSize(i.input)),
    ),
    v.transform((x) => parseSize(x) as number),
    v.check((x) => x >= min, `must be at least ${min} byte${min === 1 ? '' : 's'}`),
    v.description(description),
  )
}

function fraction(description: string) {
  return v.pipe(
    v.number((i) => `must be a number between 0 and 1, not ${typeName(i.input)}`),
    v.minValue(0, 'must be at least 0'),
    v.maxValue(1, 'must be at most 1'),
    v.description(description),
  )
}

function positive(description: string) {
  return v.pipe(
    v.number((i) => `must be a number, not ${typeName(i.input)}`),
    v.minValue(0, 'must be at least 0'),
    v.description(description),
  )
}

const common = {
  name: v.optional(
    v.pipe(
      v.string('must be a string'),
      v.regex(/^[A-Za-z0-9][A-Za-z0-9._-]{0,62}$/, 'must be 1-63 letters, digits, ".", "_" or "-"'),
      v.description('Unique within the app (default: TYPE-DIRECTION)'),
    ),
  ),
  direction: v.optional(
    v.pipe(
      v.picklist(directions, 'must be to-upstream, to-client or both'),
      v.description(
        'to-upstream (client to target), to-client (target to client), or both (default to-client)',
      ),
    ),
  ),
  probability: v.optional(fraction('Chance that the fault applies to a connection (default 1)')),
  schedule: v.optional(
    v.pipe(
      v.string('must be a schedule such as "start:5s,duration:10s"'),
      v.check(
        (x) => typeof parseSchedule(x) !== 'string',
        (i) => String(parseSchedule(i.input)),
      ),
      v.description(
        'When the fault is active: windows "start:T,duration:T" separated by ";" (default always)',
      ),
    ),
  ),
}

/** A strict object for one fault type, naming unknown fields. */
function fault<const T extends FaultType, const E extends v.ObjectEntries>(type: T, entries: E) {
  const all = { type: v.literal(type), ...common, ...entries }
  const known = Object.keys(all)
  return v.strictObject(
    all,
    (i) => `unknown field "${String(i.input)}" for a ${type} fault; known fields: ${known.join(', ')}`,
  )
}

const latencySchema = v.pipe(
  fault('latency', {
    latency: v.optional(ms('Delay (fixed), or the mean (normal, pareto-normal)')),
    jitter: v.optional(ms('± this much, uniformly (fixed distribution)')),
    distribution: v.optional(
      v.picklist(
        ['fixed', 'uniform', 'normal', 'pareto', 'pareto-normal'],
        'must be fixed, uniform, normal, pareto or pareto-normal',
      ),
    ),
    stddev: v.optional(ms('Standard deviation (normal, pareto-normal)')),
    min: v.optional(ms('Lowest delay (uniform)')),
    max: v.optional(ms('Highest delay (uniform)')),
    shape: v.optional(positive('Pareto shape (α)')),
    scale: v.optional(ms('Pareto scale (the smallest delay)')),
    mode: v.optional(v.picklist(['per-chunk', 'once'], 'must be per-chunk or once')),
  }),
  v.check((f) => (f.min ?? 0) <= (f.max ?? f.min ?? 0), 'min must not be greater than max'),
)

/** Every fault type's native schema, keyed by type. */
const byType = {
  latency: latencySchema,
  jitter: fault('jitter', {
    amplitude: v.optional(ms('Largest extra delay')),
    frequency: v.optional(
      positive(
        "Chance that a read or write is delayed, as fault's --jitter-frequency (1 or more: every one)",
      ),
    ),
    per_second: v.optional(
      positive('Rate-limited instead: delay at most this many reads or writes a second'),
    ),
  }),
  bandwidth: fault('bandwidth', { rate: bytes('Bytes per second (e.g. 1MB, 64KiB)', 1) }),
  slicer: fault('slicer', {
    average_size: v.optional(bytes('Average piece size', 1)),
    size_variation: v.optional(
      bytes('Pieces are at most average_size + this; each cut falls within ± this of the middle'),
    ),
    delay: v.optional(ms('Pause after each piece (e.g. 10ms, 500us)')),
  }),
  limit_data: fault('limit_data', { bytes: bytes('Bytes allowed through; then the connection closes') }),
  timeout: fault('timeout', {
    timeout: v.optional(
      ms('Close the connection once this long passes without data; 0 holds it open forever'),
    ),
  }),
  slow_close: fault('slow_close', { delay: v.optional(ms('How long to hold back the close')) }),
  reset_peer: fault('reset_peer', {
    timeout: v.optional(ms('Reset the connection this long after its first data')),
  }),
  reset: fault('reset', {
    rate: v.optional(fraction('Chance that each chunk resets the connection (default 1)')),
  }),
  blackhole: fault('blackhole', {}),
  packet_loss: fault('packet_loss', {
    rate: fraction('Share of chunks lost (0..1)'),
    correlation: v.optional(fraction('How much a loss makes the next one likelier (0: independent)')),
    retransmit: v.optional(ms('Stall for a lost chunk (doubles on consecutive losses)', { min: 1 })),
    max_retransmit: v.optional(ms('Longest stall', { min: 1 })),
  }),
  refuse: fault('refuse', {}),
  close: fault('close', {}),
  http_error: fault('http_error', {
    status: v.optional(
      v.pipe(
        v.number('must be an HTTP status code'),
        v.integer('must be a whole number'),
        v.minValue(200, 'must be at least 200'),
        v.maxValue(599, 'must be at most 599'),
        v.description('Status of the answer (default 500)'),
      ),
    ),
    body: v.optional(
      v.pipe(v.string('must be a string'), v.description('Body of the answer (default empty)')),
    ),
  }),
}

type Parsed = { [K in keyof typeof byType]: v.InferOutput<(typeof byType)[K]> }[keyof typeof byType]

export interface FaultIssue {
  path: string
  message: string
}

/** Validate one fault in the native format; `path` prefixes issue paths (`apps[0].faults[1]`). */
export function parseFault(input: unknown, path: string): { fault: FaultSpec | null; issues: FaultIssue[] } {
  if (input === null || typeof input !== 'object' || Array.isArray(input)) {
    return {
      fault: null,
      issues: [{ path, message: `must be a fault object with a type, not ${typeName(input)}` }],
    }
  }
  const type = (input as { type?: unknown }).type
  if (typeof type !== 'string' || !(type in byType)) {
    return {
      fault: null,
      issues: [
        {
          path: `${path}.type`,
          message:
            type === undefined
              ? `is missing; one of ${faultTypes.join(', ')}`
              : `unknown fault type ${JSON.stringify(type)}; known types: ${faultTypes.join(', ')}`,
        },
      ],
    }
  }
  const schema = byType[type as FaultType]
  const r = v.safeParse(schema as v.GenericSchema, input, { abortEarly: false })
  if (!r.success) {
    return {
      fault: null,
      issues: r.issues.map((i) => {
        let p = path
        for (const item of i.path ?? [])
          p += typeof item.key === 'number' ? `[${item.key}]` : `.${String(item.key)}`
        return { path: p, message: i.message }
      }),
    }
  }
  return { fault: normalize(r.output as Parsed), issues: [] }
}

/** The parameters each latency distribution samples (src/faults/random.ts). */
const latencyParams = {
  fixed: ['latency', 'jitter'],
  uniform: ['min', 'max'],
  normal: ['latency', 'stddev'],
  pareto: ['shape', 'scale'],
  'pareto-normal': ['shape', 'scale', 'latency', 'stddev'],
} as const satisfies Record<string, readonly string[]>
type LatencyParam = 'latency' | 'jitter' | 'stddev' | 'min' | 'max' | 'shape' | 'scale'

/** Defaults and names, from a validated native fault. */
function normalize(f: Parsed): FaultSpec {
  const direction: FaultDirection = f.direction ?? 'to-client'
  const base = {
    name: f.name ?? `${f.type}-${direction}`,
    // A fault at connect time (refuse, close) acts before any data flows: its direction is moot.
    direction: connectTimeTypes.includes(f.type) ? 'to-client' : direction,
    probability: f.probability ?? 1,
    schedule: f.schedule ?? null,
  }
  switch (f.type) {
    case 'latency': {
      const distribution = f.distribution ?? 'fixed'
      // Only the parameters the distribution samples are kept; the others take their defaults,
      // so that a config holds (and `sluice check` prints) what acts, and reads back the same.
      const uses: readonly LatencyParam[] = latencyParams[distribution]
      const param = <T>(name: LatencyParam, value: T | undefined, fallback: T): T =>
        uses.includes(name) ? (value ?? fallback) : fallback
      return {
        ...base,
        type: 'latency',
        distribution,
        latency: param('latency', f.latency, 0),
        jitter: param('jitter', f.jitter, 0),
        stddev: param('stddev', f.stddev, 0),
        min: param('min', f.min, 0),
        max: param('max', f.max ?? f.min, 0),
        shape: param('shape', f.shape, 2),
        scale: param('scale', f.scale, 1),
        mode: f.mode ?? 'per-chunk',
      }
    }
    case 'jitter':
      return {
        ...base,
        type: 'jitter',
        amplitude: f.amplitude ?? 20,
        frequency: f.frequency ?? 1,
        perSecond: f.per_second ?? null,
      }
    case 'bandwidth':
      return { ...base, type: 'bandwidth', rate: f.rate }
    case 'slicer':
      return {
        ...base,
        type: 'slicer',
        averageSize: f.average_size ?? 1,
        sizeVariation: f.size_variation ?? 0,
        delay: f.delay ?? 0,
      }
    case 'limit_data':
      return { ...base, type: 'limit_data', bytes: f.bytes }
    case 'timeout':
      return { ...base, type: 'timeout', timeout: f.timeout ?? 0 }
    case 'slow_close':
      return { ...base, type: 'slow_close', delay: f.delay ?? 0 }
    case 'reset_peer':
      return { ...base, type: 'reset_peer', timeout: f.timeout ?? 0 }
    case 'reset':
      return { ...base, type: 'reset', rate: f.rate ?? 1 }
    case 'packet_loss':
      return {
        ...base,
        type: 'packet_loss',
        rate: f.rate,
        correlation: f.correlation ?? 0,
        retransmit: f.retransmit ?? 200,
        maxRetransmit: f.max_retransmit ?? 3000,
      }
    case 'http_error':
      return { ...base, type: 'http_error', status: f.status ?? 500, body: f.body ?? '' }
    case 'blackhole':
    case 'refuse':
    case 'close':
      return { ...base, type: f.type }
  }
}

/** Check a list of faults for duplicate names; returns issues. */
export function checkFaultNames(faults: FaultSpec[], path: string): FaultIssue[] {
  const seen = new Map<string, number>()
  const issues: FaultIssue[] = []
  faults.forEach((f, i) => {
    const prev = seen.get(f.name)
    if (prev !== undefined) {
      issues.push({
        path: `${path}[${i}].name`,
        message: `a fault named "${f.name}" already exists (${path}[${prev}]); give one of them another name`,
      })
    } else seen.set(f.name, i)
  })
  return issues
}

/** The directions a fault acts in. */
export function flowsOf(f: FaultSpec): ('to-upstream' | 'to-client')[] {
  if (connectTimeTypes.includes(f.type)) return []
  return f.direction === 'both' ? ['to-upstream', 'to-client'] : [f.direction]
}

/** The JSON Schema fragment for faults (for `sluice schema`). */
export function faultJsonSchemas(): Record<string, v.GenericSchema> {
  return byType as unknown as Record<string, v.GenericSchema>
}

/** A fault written back in the native format (for `sluice check` and the native admin API). */
export function faultDocument(f: FaultSpec): Record<string, unknown> {
  // Whole ms, else whole µs (500us), else plain-decimal ms: always what parses back to `ms`.
  const d = (ms: number) => {
    if (ms % 1 === 0) return `${ms}ms`
    const us = Math.round(ms * 1000)
    return us / 1000 === ms ? `${us}us` : `${plainNumber(ms)}ms`
  }
  const base: Record<string, unknown> = { name: f.name, type: f.type }
  if (!connectTimeTypes.includes(f.type)) base.direction = f.direction
  if (f.probability !== 1) base.probability = f.probability
  if (f.schedule !== null) base.schedule = f.schedule
  switch (f.type) {
    case 'latency': {
      const out: Record<string, unknown> = { ...base, distribution: f.distribution, mode: f.mode }
      if (f.distribution === 'fixed') Object.assign(out, { latency: d(f.latency), jitter: d(f.jitter) })
      if (f.distribution === 'uniform') Object.assign(out, { min: d(f.min), max: d(f.max) })
      if (f.distribution === 'normal') Object.assign(out, { latency: d(f.latency), stddev: d(f.stddev) })
      if (f.distribution === 'pareto') Object.assign(out, { shape: f.shape, scale: d(f.scale) })
      if (f.distribution === 'pareto-normal') {
        Object.assign(out, { shape: f.shape, scale: d(f.scale), latency: d(f.latency), stddev: d(f.stddev) })
      }
      return out
    }
    case 'jitter':
      return {
        ...base,
        amplitude: d(f.amplitude),
        frequency: f.frequency,
        ...(f.perSecond !== null ? { per_second: f.perSecond } : {}),
      }
    case 'bandwidth':
      return { ...base, rate: f.rate }
    case 'slicer':
      return { ...base, average_size: f.averageSize, size_variation: f.sizeVariation, delay: d(f.delay) }
    case 'limit_data':
      return { ...base, bytes: f.bytes }
    case 'timeout':
      return { ...base, timeout: d(f.timeout) }
    case 'slow_close':
      return { ...base, delay: d(f.delay) }
    case 'reset_peer':
      return { ...base, timeout: d(f.timeout) }
    case 'reset':
      return { ...base, rate: f.rate }
    case 'packet_loss':
      return {
        ...base,
        rate: f.rate,
        correlation: f.correlation,
        retransmit: d(f.retransmit),
        max_retransmit: d(f.maxRetransmit),
      }
    case 'http_error':
      return { ...base, status: f.status, body: f.body }
    case 'blackhole':
    case 'refuse':
    case 'close':
      return base
  }
}
