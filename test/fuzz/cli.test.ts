// Properties of `sluice proxy`'s command line: the mapping grammar (src/config/mapping.ts), fault's
// flags (src/cli/proxy.ts, src/cli/args.ts) and schedules (src/config/schedule.ts). Any argv gives
// ERR_USAGE or a plan whose config normalises; a mapping sluice prints reads back the same.
import assert from 'node:assert/strict'
import { isIP } from 'node:net'
import { test } from 'node:test'
import { intFlag, parse } from '../../src/cli/args.ts'
import { proxyPlan } from '../../src/cli/proxy.ts'
import { parseListen } from '../../src/config/address.ts'
import { type Mapping, parseMapping, protocols } from '../../src/config/mapping.ts'
import { normalizeConfigObject } from '../../src/config/normalize.ts'
import { parseSchedule, resolveSchedule } from '../../src/config/schedule.ts'
import { check, checkAsync, coded, fc, noisyString } from './fuzz.ts'

const timerMax = 2 ** 31 - 1
const port = fc.integer({ min: 1, max: 65535 })
const hostName = fc
  .array(fc.stringMatching(/^[a-z0-9]([a-z0-9-]{0,8}[a-z0-9])?$/), { minLength: 1, maxLength: 3 })
  .map((l) => l.join('.'))
  // A last label that is a number is an IPv4 form, not a name.
  .filter((h) => !/(^|\.)(\d+|0x[0-9a-f]*)$/i.test(h))
const host = fc.oneof(hostName, fc.ipV4(), fc.ipV6())
/** Listen ports: any, or one of two, so that mappings on one command line share ports. */
const listenPort = fc.oneof(port, fc.constantFrom(9090, 9091))
const listenText = fc.oneof(
  listenPort.map(String),
  fc
    .tuple(fc.constantFrom('127.0.0.1', '127.0.0.2', '[::1]', '0.0.0.0', '*', '', 'localhost'), listenPort)
    .map(([h, p]) => `${h}:${p}`),
)

/** A mapping as a user writes it, and what it must parse to. */
const validMapping = fc
  .record({
    listen: listenText,
    protocol: fc.option(fc.constantFrom(...protocols)),
    upper: fc.boolean(),
    host,
    port: fc.option(port),
    slash: fc.boolean(),
    pad: fc.constantFrom('', ' '),
  })
  .filter((m) => m.port !== null || (m.protocol !== null && m.protocol !== 'tcp'))

const implied: Record<string, number> = { http: 80, https: 443, tls: 443, psql: 5432, psqls: 5432 }

function mappingText(m: typeof validMapping extends fc.Arbitrary<infer T> ? T : never): string {
  const h = isIP(m.host) === 6 ? `[${m.host}]` : m.host
  const remote = `${h}${m.port === null ? '' : `:${m.port}`}`
  const scheme = m.protocol === null ? '' : `${m.upper ? m.protocol.toUpperCase() : m.protocol}://`
  const slash = m.protocol !== null && m.slash ? '/' : ''
  return `${m.pad}${m.listen}${m.pad}=${m.pad}${scheme}${remote}${slash}${m.pad}`
}

/** How sluice would print a parsed mapping (the log line and the help use this form). */
function printMapping(m: Mapping): string {
  const h = isIP(m.host) === 6 ? `[${m.host}]` : m.host
  return `${m.listen.host === null ? m.listen.port : m.listen.key}=${m.protocol}://${h}:${m.port}`
}

test('a valid mapping parses to its parts, and its printed form parses back the same', () => {
  check(
    fc.property(validMapping, (m) => {
      const text = mappingText(m)
      const r = parseMapping(text)
      assert.ok(typeof r !== 'string', r as string)
      assert.equal(r.protocol, m.protocol ?? 'tcp')
      assert.equal(r.host, m.host)
      assert.equal(r.port, m.port ?? implied[m.protocol!])
      assert.deepEqual(r.listen, parseListen(m.listen.trim()))
      const again = parseMapping(printMapping(r))
      assert.ok(typeof again !== 'string', again as string)
      assert.deepEqual({ ...again, text: '' }, { ...r, text: '' })
    }),
    500,
  )
})

const mappingNoise = fc.oneof(
  noisyString('0123456789=:/[]. abcdefhlpqstxyz', 40),
  validMapping
    .map(mappingText)
    .chain((t) =>
      fc
        .tuple(fc.nat({ max: t.length }), fc.nat({ max: 3 }), fc.string({ maxLength: 3 }))
        .map(([at, del, ins]) => t.slice(0, at) + ins + t.slice(at + del)),
    ),
  fc.string(),
)

test('any text as a mapping: a mapping that keeps the grammar, or a message quoting it', () => {
  check(
    fc.property(mappingNoise, (text) => {
      const r = parseMapping(text)
      if (typeof r === 'string') {
        assert.ok(r.startsWith(`--proxy "${text}": `), r)
        return
      }
      assert.ok((protocols as readonly string[]).includes(r.protocol))
      assert.ok(Number.isInteger(r.port) && r.port >= 1 && r.port <= 65535)
      assert.ok(r.listen.port >= 1 && r.listen.port <= 65535)
      assert.ok(r.host.length > 0)
    }),
    1500,
  )
})

const scheduleText = fc.oneof(
  fc
    .array(
      fc.tuple(
        fc.constantFrom('start', 'duration', 'stop', ''),
        fc.oneof(
          fc.constantFrom(
            '0',
            '5',
            '1.5',
            '10%',
            '100%',
            '101%',
            '-1%',
            '2s',
            '250ms',
            '30d',
            '9999999999',
            '',
          ),
          fc.nat().map(String),
          fc.tuple(fc.integer({ min: 1, max: 400 })).map(([n]) => '9'.repeat(n)),
        ),
      ),
      { maxLength: 4 },
    )
    .map((kv) => kv.map(([k, v]) => `${k}:${v}`).join(',')),
  noisyString('startdurion:,;%0123456789.ms', 30),
)

test('any schedule: windows a timer can wait for, or a reason', () => {
  check(
    fc.property(
      fc.array(scheduleText, { maxLength: 3 }),
      fc.option(fc.integer({ min: 1, max: timerMax })),
      (parts, total) => {
        const text = parts.join(';')
        const windows = parseSchedule(text)
        if (typeof windows === 'string') return assert.ok(windows.length > 0)
        const resolved = resolveSchedule(windows, total)
        if (typeof resolved === 'string') return assert.ok(resolved.length > 0)
        for (const w of resolved) {
          assert.ok(
            Number.isFinite(w.start) && w.start >= 0 && w.start <= timerMax,
            `start ${w.start} in ${text}`,
          )
          if (w.end !== null)
            assert.ok(
              Number.isFinite(w.end) && w.end >= w.start && w.end - w.start <= timerMax,
              `end ${w.end} in ${text}`,
            )
        }
      },
    ),
    1000,
  )
})

// --- The whole command line ------------------------------------------------------------------------

const families = ['latency', 'jitter', 'bandwidth', 'packet-loss', 'blackhole', 'http-response'] as const
const numberish = fc.oneof(
  fc.constantFrom(
    '0',
    '1',
    '5',
    '0.5',
    '100',
    '-1',
    '1e3',
    'NaN',
    'Infinity',
    '',
    'x',
    '200',
    '599',
    '600',
    '3e9',
  ),
  fc.double({ noNaN: true }).map(String),
  fc.nat({ max: 10_000 }).map(String),
)
const flagValues: Record<string, fc.Arbitrary<string>> = {
  side: fc.constantFrom('client', 'server', 'both', ''),
  direction: fc.constantFrom('ingress', 'egress', 'both', 'up'),
  distribution: fc.constantFrom('normal', 'uniform', 'pareto', 'pareto-normal', 'fixed'),
  unit: fc.constantFrom('bps', 'kbps', 'Mbps', 'gbps', 'tbps'),
  sched: scheduleText,
  body: fc.string({ maxLength: 10 }),
}
const familyOptions: Record<(typeof families)[number], string[]> = {
  latency: ['mean', 'stddev', 'distribution', 'shape', 'scale', 'min', 'max', 'side', 'direction', 'sched'],
  jitter: ['amplitude', 'frequency', 'side', 'direction', 'sched'],
  bandwidth: ['rate', 'unit', 'side', 'direction', 'sched'],
  'packet-loss': ['rate', 'correlation', 'side', 'direction', 'sched'],
  blackhole: ['side', 'direction', 'sched'],
  'http-response': ['status', 'body', 'trigger-probability', 'sched'],
}

/** fault's flags for one family: --with-X and some of its options, with values good and bad. */
const familyFlags = fc.constantFrom(...families).chain((family) =>
  fc
    .tuple(
      fc.boolean(),
      fc
        .subarray(familyOptions[family])
        .chain((opts) =>
          fc.tuple(...opts.map((o) => (flagValues[o] ?? numberish).map((v) => [`--${family}-${o}`, v]))),
        ),
      fc.boolean(),
    )
    .map(([withIt, opts, perRw]) => [
      ...(withIt ? [`--with-${family}`] : []),
      ...opts.flat(),
      ...(family === 'latency' && perRw ? ['--latency-per-read-write'] : []),
    ]),
)

const argv = fc
  .tuple(
    fc.array(fc.oneof({ weight: 4, arbitrary: validMapping.map(mappingText) }, mappingNoise), {
      maxLength: 3,
    }),
    fc.array(familyFlags, { maxLength: 4 }),
    fc.option(fc.constantFrom('30s', '10', '0', '1.5', '5m', 'x', '25d', '-1s', '9'.repeat(30))),
    fc.option(
      fc.constantFrom(
        ['--upstream-insecure'],
        ['--upstream-ca', '/nonexistent/ca.pem'],
        ['--bogus'],
        ['extra'],
      ),
    ),
  )
  .map(([maps, flags, duration, extra]) => [
    ...maps.flatMap((m) => ['--proxy', m]),
    ...flags.flat(),
    ...(duration === null ? [] : ['--duration', duration]),
    ...(extra ?? []),
  ])

test('any sluice proxy command line: ERR_USAGE, or a config that normalises and runs', async () => {
  let internal = 40000
  await checkAsync(
    fc.asyncProperty(argv, async (args) => {
      let plan: Awaited<ReturnType<typeof proxyPlan>>
      try {
        plan = await proxyPlan(args, async () => internal++)
      } catch (err) {
        coded(err, ['ERR_USAGE'])
        return
      }
      assert.ok(plan)
      for (const f of plan.faults) assert.ok(typeof f.type === 'string')
      try {
        const config = normalizeConfigObject(plan.doc, '<command line>', plan.runDuration)
        assert.ok(config.apps.length >= plan.mappings.length)
      } catch (err) {
        coded(err, ['ERR_CONFIG_INVALID'])
        // The one config error flags cannot rule out: two mappings on one listen address.
        const issues = (err as { issues: { message: string }[] }).issues
        for (const i of issues) assert.match(i.message, /used by two apps|listed twice/, i.message)
      }
    }),
    1000,
  )
})

test('any argv for a command: its values, or ERR_USAGE naming the help', () => {
  const word = fc.oneof(
    fc.constantFrom(
      '-c',
      '--config',
      '--json',
      '-h',
      '--help',
      '--',
      '-',
      '--x',
      '-cz',
      '--config=a',
      '--json=1',
    ),
    fc.string({ maxLength: 6 }),
  )
  check(
    fc.property(
      fc.array(word, { maxLength: 6 }),
      fc.boolean(),
      fc.string({ maxLength: 8 }),
      fc.nat({ max: 3 }),
      (args, positionals, n, min) => {
        try {
          const { values } = parse(
            'check',
            args,
            { config: { type: 'string', short: 'c' }, json: { type: 'boolean' } },
            positionals,
          )
          if (values.config !== undefined) assert.equal(typeof values.config, 'string')
        } catch (err) {
          coded(err, ['ERR_USAGE'])
          assert.match((err as Error).message, /\(see: sluice check --help\)$/)
        }
        try {
          const v = intFlag('count', n, 7, min)
          assert.ok(Number.isInteger(v) && v >= min)
        } catch (err) {
          coded(err, ['ERR_USAGE'])
        }
      },
    ),
    1000,
  )
})
