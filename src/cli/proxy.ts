// `sluice proxy`: fault's command line. `--proxy MAPPING` (repeatable) plus fault's flags
// (--with-latency, --latency-mean, …, --duration) build a config in memory, run on the same engine
// as `sluice run` (admin API included), and end after --duration.
import { readFileSync } from 'node:fs'
import { createServer } from 'node:net'
import { resolve } from 'node:path'
import { startEngine } from '../api/engine.ts'
import type { FaultDirection } from '../config/faults.ts'
import { type Mapping, mappingGrammar, type Protocol, parseMapping, tlsProtocols } from '../config/mapping.ts'
import { normalizeConfigObject } from '../config/normalize.ts'
import { parseSchedule, resolveSchedule } from '../config/schedule.ts'
import { maxDuration, parseDuration, plainNumber } from '../config/units.ts'
import { SluiceError } from '../errors.ts'
import { flushLogger } from '../observe/logger.ts'
import { exitCode, parse, printError } from './args.ts'
import { handleRunningSignals, overrides } from './run.ts'

export const proxyHelp = `Usage: sluice proxy --proxy MAPPING [--proxy MAPPING ...] [fault flags] [options]

Forward each mapping, injecting the faults the flags describe (fault's command line).

Mappings (${mappingGrammar}):
  --proxy "9090=127.0.0.1:6379"              TCP
  --proxy "9090=https://www.google.com"      TLS to the remote (port 443 implied); clear text locally
  --proxy "5433=psqls://db.internal"         PostgreSQL SSLRequest, then TLS (port 5432 implied)
  --proxy "127.0.0.1:8443=tls://host:9443"   listen on one address

Options:
  --duration D              stop after D (e.g. 30s, 5m); schedules may then use percentages
  --upstream-ca FILE        trust this CA (PEM) for TLS to the remote, besides the system CAs
  --upstream-insecure       do not verify the remote's certificate (tests, self-signed)
  --admin ADDR|off          admin and Toxiproxy API (default 127.0.0.1:8474)
  --log-level L, --log-format F

Faults (each applies to every mapping; SIDE client|server, DIRECTION ingress|egress|both;
default side server and direction ingress, i.e. on data coming back from the remote):
  --with-latency   --latency-mean MS --latency-stddev MS --latency-distribution normal|uniform|pareto|pareto-normal
                   --latency-min MS --latency-max MS --latency-shape N --latency-scale MS
                   --latency-per-read-write (every chunk; default: once per direction)
                   --latency-side SIDE --latency-direction DIRECTION --latency-sched SCHED
  --with-jitter    --jitter-amplitude MS (20) --jitter-frequency F (5) --jitter-side --jitter-direction --jitter-sched
  --with-bandwidth --bandwidth-rate N (1000) --bandwidth-unit bps|kbps|mbps|gbps (bytes per second, 1000-based)
                   --bandwidth-side --bandwidth-direction --bandwidth-sched
  --with-packet-loss --packet-loss-rate R (0.05) --packet-loss-correlation C (0)
                   --packet-loss-side --packet-loss-direction --packet-loss-sched
  --with-blackhole --blackhole-side --blackhole-direction --blackhole-sched
  --with-http-response --http-response-status N (500) --http-response-body TEXT ("")
                   --http-response-trigger-probability P (1) --http-response-sched
                   (http and https mappings: answer a share of requests without forwarding them)

http:// and https:// mappings forward HTTP/1.1 requests (Host becomes the remote's). Latency there
is added once per request (before the response; side client + direction ingress: before the request);
the byte-level faults (jitter, bandwidth, packet loss, blackhole, --latency-per-read-write) act on
the bytes to and from the remote.

SCHED: windows "start:T,duration:T" separated by ";", T a duration or a percentage of --duration.
`

const families = ['latency', 'jitter', 'bandwidth', 'packet-loss', 'blackhole', 'http-response'] as const

const str = { type: 'string' } as const
const bool = { type: 'boolean' } as const

const options = {
  proxy: { type: 'string', multiple: true },
  duration: str,
  'upstream-ca': str,
  'upstream-insecure': bool,
  admin: str,
  'log-level': str,
  'log-format': str,
  'with-latency': bool,
  'latency-per-read-write': bool,
  'latency-side': str,
  'latency-direction': str,
  'latency-distribution': str,
  'latency-mean': str,
  'latency-stddev': str,
  'latency-shape': str,
  'latency-scale': str,
  'latency-min': str,
  'latency-max': str,
  'latency-sched': str,
  'with-jitter': bool,
  'jitter-side': str,
  'jitter-direction': str,
  'jitter-amplitude': str,
  'jitter-frequency': str,
  'jitter-sched': str,
  'with-bandwidth': bool,
  'bandwidth-side': str,
  'bandwidth-direction': str,
  'bandwidth-rate': str,
  'bandwidth-unit': str,
  'bandwidth-sched': str,
  'with-packet-loss': bool,
  'packet-loss-side': str,
  'packet-loss-direction': str,
  'packet-loss-rate': str,
  'packet-loss-correlation': str,
  'packet-loss-sched': str,
  'with-blackhole': bool,
  'blackhole-side': str,
  'blackhole-direction': str,
  'blackhole-sched': str,
  'with-http-response': bool,
  'http-response-status': str,
  'http-response-body': str,
  'http-response-trigger-probability': str,
  'http-response-sched': str,
  'http-response-side': str,
  'http-response-direction': str,
} as const

type Values = Record<string, string | boolean | string[] | undefined>

const usage = (m: string) => new SluiceError('ERR_USAGE', m)

function num(
  v: Values,
  flag: string,
  opts: { min?: number; max?: number; positive?: boolean; def?: number } = {},
): number | undefined {
  const raw = v[flag]
  if (raw === undefined) return opts.def
  const n = Number(raw)
  const min = opts.min ?? 0
  if (
    !Number.isFinite(n) ||
    n < min ||
    (opts.positive && n <= 0) ||
    (opts.max !== undefined && n > opts.max)
  ) {
    const range = opts.positive
      ? `greater than 0${opts.max !== undefined ? ` and at most ${opts.max}` : ''}`
      : opts.max !== undefined
        ? `between ${min} and ${opts.max}`
        : `at least ${min}`
    throw usage(`--${flag} must be a number ${range}, not "${raw}"`)
  }
  return n
}

/** fault's side and direction → sluice's direction. */
export function directionFor(
  side: string | undefined,
  direction: string | undefined,
  family: string,
): FaultDirection {
  const s = side ?? 'server'
  const d = direction ?? 'ingress'
  if (s !== 'server' && s !== 'client') throw usage(`--${family}-side must be client or server, not "${s}"`)
  if (d !== 'ingress' && d !== 'egress' && d !== 'both') {
    throw usage(`--${family}-direction must be ingress, egress or both, not "${d}"`)
  }
  if (d === 'both') return 'both'
  // Server side: ingress is what comes back from the remote. Client side: ingress is what the client sends.
  if (s === 'server') return d === 'ingress' ? 'to-client' : 'to-upstream'
  return d === 'ingress' ? 'to-upstream' : 'to-client'
}

/** Milliseconds as a duration that reads back the same (5e-7 is not a duration, 0.0000005ms is). */
const ms = (n: number) => `${plainNumber(n)}ms`
/** A flag in milliseconds: at most the longest duration. */
const msMax = maxDuration

/** The faults fault's flags describe, as native fault documents. */
export function faultsFromFlags(v: Values, runDuration: number | null): Record<string, unknown>[] {
  const out: Record<string, unknown>[] = []
  for (const family of families) {
    if (!v[`with-${family}`]) continue
    const sched = v[`${family}-sched`] as string | undefined
    if (sched !== undefined) {
      const windows = parseSchedule(sched)
      const resolved = typeof windows === 'string' ? windows : resolveSchedule(windows, runDuration)
      if (typeof resolved === 'string') throw usage(`--${family}-sched: ${resolved}`)
    }
    const common: Record<string, unknown> = {
      direction: directionFor(v[`${family}-side`] as string, v[`${family}-direction`] as string, family),
      ...(sched !== undefined ? { schedule: sched } : {}),
    }
    if (family === 'latency') {
      const distribution = (v['latency-distribution'] as string | undefined) ?? 'normal'
      const doc: Record<string, unknown> = {
        type: 'latency',
        ...common,
        distribution,
        mode: v['latency-per-read-write'] ? 'per-chunk' : 'once',
      }
      if (distribution === 'normal' || distribution === 'pareto-normal') {
        const mean = num(v, 'latency-mean', { positive: true, max: msMax })
        if (mean === undefined)
          throw usage(`--latency-distribution ${distribution} needs --latency-mean (ms)`)
        doc.latency = ms(mean)
        doc.stddev = ms(num(v, 'latency-stddev', { def: 0, max: msMax })!)
      }
      if (distribution === 'uniform') {
        const min = num(v, 'latency-min', { max: msMax })
        const max = num(v, 'latency-max', { max: msMax })
        if (min === undefined || max === undefined)
          throw usage('--latency-distribution uniform needs --latency-min and --latency-max (ms)')
        if (min > max) throw usage(`--latency-min (${min}) must not be greater than --latency-max (${max})`)
        doc.min = ms(min)
        doc.max = ms(max)
      }
      if (distribution === 'pareto' || distribution === 'pareto-normal') {
        const shape = num(v, 'latency-shape', { positive: true })
        const scale = num(v, 'latency-scale', { positive: true, max: msMax })
        if (shape === undefined || scale === undefined) {
          throw usage(`--latency-distribution ${distribution} needs --latency-shape and --latency-scale (ms)`)
        }
        doc.shape = shape
        doc.scale = ms(scale)
      }
      if (!['normal', 'uniform', 'pareto', 'pareto-normal'].includes(distribution)) {
        throw usage(
          `--latency-distribution must be normal, uniform, pareto or pareto-normal, not "${distribution}"`,
        )
      }
      out.push(doc)
    } else if (family === 'jitter') {
      out.push({
        type: 'jitter',
        ...common,
        amplitude: ms(num(v, 'jitter-amplitude', { def: 20, max: msMax })!),
        frequency: num(v, 'jitter-frequency', { def: 5 }),
      })
    } else if (family === 'bandwidth') {
      const units: Record<string, number> = { bps: 1, kbps: 1e3, mbps: 1e6, gbps: 1e9 }
      const unitText = ((v['bandwidth-unit'] as string | undefined) ?? 'bps').toLowerCase()
      const unit = units[unitText]
      if (unit === undefined)
        throw usage(`--bandwidth-unit must be bps, kbps, mbps or gbps (bytes per second), not "${unitText}"`)
      const rate = num(v, 'bandwidth-rate', { positive: true, def: 1000 })!
      out.push({ type: 'bandwidth', ...common, rate: Math.max(1, Math.round(rate * unit)) })
    } else if (family === 'packet-loss') {
      out.push({
        type: 'packet_loss',
        ...common,
        rate: num(v, 'packet-loss-rate', { max: 1, def: 0.05 }),
        correlation: num(v, 'packet-loss-correlation', { max: 1, def: 0 }),
      })
    } else if (family === 'http-response') {
      const status = num(v, 'http-response-status', { min: 200, max: 599, def: 500 })!
      if (!Number.isInteger(status))
        throw usage(`--http-response-status must be a whole number, not "${v['http-response-status']}"`)
      out.push({
        type: 'http_error',
        ...(sched !== undefined ? { schedule: sched } : {}),
        status,
        body: (v['http-response-body'] as string | undefined) ?? '',
        probability: num(v, 'http-response-trigger-probability', { max: 1, def: 1 }),
      })
    } else {
      out.push({ type: 'blackhole', ...common })
    }
  }
  return out
}

/** Faults an http/https mapping applies per request; the rest act on the bytes to the remote. */
function perRequest(f: Record<string, unknown>): boolean {
  return f.type === 'http_error' || (f.type === 'latency' && f.mode === 'once')
}

const httpProtocols: readonly Protocol[] = ['http', 'https']

/** Whether a mapping needs an internal byte-level hop (an http mapping with byte-level faults). */
export function needsBytePort(m: Mapping, faults: Record<string, unknown>[]): boolean {
  return httpProtocols.includes(m.protocol) && faults.some((f) => !perRequest(f))
}

/**
 * The native config for the mappings and faults. tcp, tls and psql mappings are tcp apps. http and
 * https mappings are http apps (Host rewritten to the remote's, nothing added); when byte-level faults
 * are asked for too, the http app sends to a tcp app on `bytePorts.get(listen key)` (127.0.0.1) that
 * carries those faults and the TLS to the remote. Apps are named `proxy-PORT`; a second mapping on
 * the same port (another address) is `proxy-PORT-2`, and so on.
 */
export function proxyConfigDoc(
  mappings: Mapping[],
  faults: Record<string, unknown>[],
  tls: { caFile: string | null; insecure: boolean },
  bytePorts: ReadonlyMap<string, number> = new Map(),
): Record<string, unknown> {
  const tlsDoc = {
    ...(tls.caFile ? { ca_file: tls.caFile } : {}),
    ...(tls.insecure ? { insecure: true } : {}),
  }
  const apps: Record<string, unknown>[] = []
  const names = new Set<string>()
  for (const m of mappings) {
    let name = `proxy-${m.listen.port}`
    for (let n = 2; names.has(name); n++) name = `proxy-${m.listen.port}-${n}`
    names.add(name)
    const listen = [m.listen.host === null ? m.listen.port : m.listen.key]
    const hostPart = m.host.includes(':') ? `[${m.host}]` : m.host
    const address = `${hostPart}:${m.port}`
    const tcpApp = (appName: string, appListen: unknown[], appFaults: Record<string, unknown>[]) => {
      const target: Record<string, unknown> = { address }
      if (tlsProtocols.includes(m.protocol)) target.tls = tlsDoc
      if (m.protocol === 'psqls') target.starttls = 'postgres'
      return {
        name: appName,
        listen: appListen,
        targets: [target],
        // No passive ejection: a fault session should see every failure, not skip the one target.
        passive: false,
        faults: appFaults,
        // The client side stays clear text: a client asking for SSL is told no, sluice does the TLS.
        ...(m.protocol === 'psqls' ? { postgres_client_ssl: 'refuse' } : {}),
      }
    }
    if (!httpProtocols.includes(m.protocol)) {
      apps.push(
        tcpApp(
          name,
          listen,
          faults.filter((f) => f.type !== 'http_error'),
        ),
      )
      continue
    }
    const remote = `${m.protocol}://${address}`
    const http: Record<string, unknown> = {
      name,
      kind: 'http',
      listen,
      destination: remote,
      // A fault proxy stays out of the way: no X-Forwarded-* or Forwarded added.
      forwarded: {
        x_forwarded_for: false,
        x_forwarded_proto: false,
        x_forwarded_host: false,
        forwarded: false,
      },
      faults: faults.filter(perRequest),
    }
    if (m.protocol === 'https' && Object.keys(tlsDoc).length) http.tls = tlsDoc
    const bytePort = bytePorts.get(m.listen.key)
    if (needsBytePort(m, faults)) {
      if (bytePort === undefined) throw new Error(`no internal port for ${m.text}`)
      const implied = m.protocol === 'https' ? 443 : 80
      http.destination = `http://127.0.0.1:${bytePort}`
      http.headers = { set: { Host: m.port === implied ? hostPart : address } }
      apps.push(
        http,
        tcpApp(
          `${name}-bytes`,
          [`127.0.0.1:${bytePort}`],
          faults.filter((f) => !perRequest(f)),
        ),
      )
    } else apps.push(http)
  }
  return { drain_timeout: '2s', apps }
}

/** A port free on 127.0.0.1 right now, from the kernel. */
function kernelPort(): Promise<number> {
  return new Promise((resolveP, reject) => {
    const srv = createServer()
    srv.once('error', reject)
    srv.listen(0, '127.0.0.1', () => {
      const { port } = srv.address() as { port: number }
      srv.close(() => resolveP(port))
    })
  })
}

/** What `sluice proxy`'s arguments describe, before anything listens. */
export interface ProxyPlan {
  mappings: Mapping[]
  faults: Record<string, unknown>[]
  runDuration: number | null
  /** The native config document, as given to normalisation. */
  doc: Record<string, unknown>
  /** The engine-wide flags, for overrides(). */
  flags: { admin?: string; logLevel?: string; logFormat?: string }
}

/**
 * Read `sluice proxy`'s arguments into the config it runs (null for --help). Throws ERR_USAGE naming
 * the flag at fault; `freePort` gives the internal ports http mappings with byte-level faults need.
 */
export async function proxyPlan(
  argv: string[],
  freePort: () => Promise<number> = kernelPort,
): Promise<ProxyPlan | null> {
  const { values } = parse('proxy', argv, options)
  if (values.help) return null
  const texts = (values.proxy as string[] | undefined) ?? []
  if (texts.length === 0) throw usage(`sluice proxy needs at least one --proxy MAPPING (${mappingGrammar})`)
  const mappings: Mapping[] = []
  for (const text of texts) {
    const m = parseMapping(text)
    if (typeof m === 'string') throw usage(m)
    mappings.push(m)
  }
  let runDuration: number | null = null
  if (values.duration !== undefined) {
    const d = parseDuration(/^\d+(\.\d+)?$/.test(values.duration) ? `${values.duration}s` : values.duration)
    if (typeof d === 'string' || d <= 0)
      throw usage(`--duration must be a duration such as 30s or 5m, not "${values.duration}"`)
    runDuration = d
  }
  const caFile = values['upstream-ca'] ? resolve(values['upstream-ca']) : null
  if (caFile) {
    try {
      readFileSync(caFile)
    } catch (err) {
      throw usage(
        `--upstream-ca: cannot read ${caFile} (${(err as NodeJS.ErrnoException).code ?? (err as Error).message})`,
      )
    }
  }
  const faults = faultsFromFlags(values as Values, runDuration)
  if (
    faults.some((f) => f.type === 'http_error') &&
    !mappings.some((m) => httpProtocols.includes(m.protocol))
  )
    throw usage(
      '--with-http-response answers HTTP requests: it needs at least one http:// or https:// mapping',
    )
  const bytePorts = new Map<string, number>()
  for (const m of mappings) if (needsBytePort(m, faults)) bytePorts.set(m.listen.key, await freePort())
  const doc = proxyConfigDoc(
    mappings,
    faults,
    { caFile, insecure: Boolean(values['upstream-insecure']) },
    bytePorts,
  )
  const flags = { admin: values.admin, logLevel: values['log-level'], logFormat: values['log-format'] }
  return { mappings, faults, runDuration, doc, flags }
}

export async function proxy(argv: string[]): Promise<number | null> {
  const plan = await proxyPlan(argv)
  if (!plan) {
    process.stdout.write(proxyHelp)
    return 0
  }
  const { mappings, faults, runDuration, doc, flags } = plan
  let running: Awaited<ReturnType<typeof startEngine>>
  try {
    const config = normalizeConfigObject(doc, '<command line>', runDuration)
    const over = overrides(flags)
    running = await startEngine({ config }, { file: null, overrides: over })
  } catch (err) {
    printError(err)
    return exitCode(err)
  }
  const { controller, admin, log } = running
  for (const m of mappings) {
    log.info(
      {
        listen: m.listen.key,
        remote: `${m.protocol}://${m.host}:${m.port}`,
        faults: faults.map((f) => f.type),
      },
      `proxy ${m.listen.key} → ${m.protocol}://${m.host}:${m.port}`,
    )
  }
  const stop = handleRunningSignals(running)
  if (runDuration !== null) {
    setTimeout(async () => {
      log.info({ durationMs: runDuration }, '--duration reached: stopping')
      stop()
      await controller.shutdown()
      await admin.close()
      await flushLogger(log)
      process.exit(0)
    }, runDuration)
  }
  return null
}
