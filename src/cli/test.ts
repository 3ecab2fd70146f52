// `sluice test ping|balancer|simulate|serve`: check a proxy from the outside (what fproxy's ftest
// does, plus latency percentiles and a progress bar), and run the fixtures it needs.

import { parseDuration } from '../config/units.ts'
import { SluiceError } from '../errors.ts'
import { type Addr, balancer, parseAddr, ping, simulate } from '../testkit/client.ts'
import { echoServer, type Fixture, httpOrigin, identServer, sinkServer } from '../testkit/fixtures.ts'
import { ms, Progress } from '../testkit/stats.ts'
import { intFlag, parse, print } from './args.ts'

export const testHelp = `Usage: sluice test <ping|balancer|simulate|serve> ...

  sluice test ping ADDR [-n COUNT] [-i INTERVAL] [--payload TEXT] [--expect TEXT] [--timeout T] [--json]
      Connect, write, read COUNT times; print dial/write/read times per round and percentiles.
      The reply must echo the payload (default "ping\\n"), or contain --expect.

  sluice test balancer ADDR [--expect A,B,A,B] [-n COUNT] [--send TEXT] [--timeout T] [--json]
      Open COUNT connections one after another and read each first reply line (ident backends
      greet with their name). With --expect, check the replies follow that sequence (repeated).

  sluice test simulate ADDR [-c CLIENTS] [-n REQUESTS] [--payload TEXT] [--reuse] [--timeout T] [--json]
      CLIENTS concurrent clients, each doing REQUESTS echo round trips (a new connection each,
      or one kept connection with --reuse). Prints throughput, errors and latency percentiles.

  sluice test serve echo|ident|sink|http [--listen ADDR] [--name NAME]
      Run a fixture server: echo, ident (greets with NAME then echoes), sink (swallows), or an
      HTTP origin answering "hello from NAME".

ADDR is host:port, :port or port (host 127.0.0.1). Exit status is 0 when every round succeeded.
`

function addr(positionals: string[], command: string): Addr {
  const text = positionals[0]
  if (!text) throw new SluiceError('ERR_USAGE', `sluice test ${command} needs an address (host:port)`)
  const a = parseAddr(text)
  if (typeof a === 'string') throw new SluiceError('ERR_USAGE', a)
  return a
}

function timeoutFlag(v: string | undefined): number {
  if (v === undefined) return 5000
  const t = parseDuration(v)
  if (typeof t === 'string') throw new SluiceError('ERR_USAGE', `--timeout: ${t}`)
  return t
}

const unescapeArg = (s: string) => s.replace(/\\n/g, '\n').replace(/\\r/g, '\r').replace(/\\t/g, '\t')
const out = (s = '') => process.stdout.write(`${s}\n`)

export async function test(argv: string[]): Promise<number | null> {
  const [sub, ...rest] = argv
  if (!sub || sub === '--help' || sub === '-h' || sub === 'help') {
    process.stdout.write(testHelp)
    return sub ? 0 : 2
  }
  if (sub === 'ping') return testPing(rest)
  if (sub === 'balancer') return testBalancer(rest)
  if (sub === 'simulate') return testSimulate(rest)
  if (sub === 'serve') return serve(rest)
  throw new SluiceError('ERR_USAGE', `unknown test "${sub}" (ping, balancer, simulate, serve)`)
}

async function testPing(argv: string[]): Promise<number> {
  const { values, positionals } = parse(
    'test ping',
    argv,
    {
      count: { type: 'string', short: 'n' },
      interval: { type: 'string', short: 'i' },
      payload: { type: 'string' },
      expect: { type: 'string' },
      timeout: { type: 'string' },
      json: { type: 'boolean' },
    },
    true,
  )
  if (values.help) return print(testHelp)
  const a = addr(positionals, 'ping')
  const interval = values.interval === undefined ? 200 : parseDuration(values.interval)
  if (typeof interval === 'string') throw new SluiceError('ERR_USAGE', `--interval: ${interval}`)
  const json = values.json
  const { rounds, latency } = await ping(a, {
    count: intFlag('count', values.count, 5, 1),
    intervalMs: interval,
    payload: Buffer.from(unescapeArg(values.payload ?? 'ping\n')),
    expect: values.expect === undefined ? null : unescapeArg(values.expect),
    timeout: timeoutFlag(values.timeout),
    onRound: json
      ? undefined
      : (r) =>
          out(
            r.ok
              ? `seq=${r.seq} dial=${ms(r.dialMs)} write=${ms(r.writeMs)} read=${ms(r.readMs)} total=${ms(r.totalMs)}`
              : `seq=${r.seq} FAILED: ${r.error}${r.reply ? ` (got ${JSON.stringify(r.reply.slice(0, 60))})` : ''}`,
          ),
  })
  const failed = rounds.filter((r) => !r.ok).length
  const s = latency.summary()
  if (json)
    out(
      JSON.stringify(
        { address: `${a.host}:${a.port}`, ok: rounds.length - failed, failed, latencyMs: s, rounds },
        null,
        2,
      ),
    )
  else {
    out(`--- ${a.host}:${a.port}: ${rounds.length} rounds, ${rounds.length - failed} ok, ${failed} failed`)
    if (s.count)
      out(`total min/p50/p90/p99/max = ${ms(s.min)}/${ms(s.p50)}/${ms(s.p90)}/${ms(s.p99)}/${ms(s.max)}`)
  }
  return failed ? 1 : 0
}

async function testBalancer(argv: string[]): Promise<number> {
  const { values, positionals } = parse(
    'test balancer',
    argv,
    {
      expect: { type: 'string' },
      count: { type: 'string', short: 'n' },
      send: { type: 'string' },
      timeout: { type: 'string' },
      json: { type: 'boolean' },
    },
    true,
  )
  if (values.help) return print(testHelp)
  const a = addr(positionals, 'balancer')
  const expect = values.expect ? values.expect.split(',').map((s) => s.trim()) : []
  const count = intFlag('count', values.count, expect.length || 10, 1)
  const json = values.json
  const r = await balancer(a, {
    expect,
    count,
    send: Buffer.from(unescapeArg(values.send ?? '')),
    timeout: timeoutFlag(values.timeout),
    onRound: json
      ? undefined
      : (round, expected) => {
          const line =
            round.error && !round.reply ? `<${round.error}>` : (round.reply.split('\n')[0] ?? '').trim()
          const mark =
            expected === null ? '' : line === expected ? '  ok' : `  MISMATCH (expected ${expected})`
          out(`#${round.seq} → ${line}${mark}`)
        },
  })
  if (json) out(JSON.stringify({ address: `${a.host}:${a.port}`, ...r }, null, 2))
  else {
    out(
      `--- ${count} connections: ${Object.entries(r.counts)
        .map(([k, v]) => `${k}=${v}`)
        .join(' ')}`,
    )
    if (expect.length)
      out(r.mismatches.length ? `${r.mismatches.length} replies out of sequence` : 'sequence as expected')
  }
  return r.mismatches.length || r.errors ? 1 : 0
}

async function testSimulate(argv: string[]): Promise<number> {
  const { values, positionals } = parse(
    'test simulate',
    argv,
    {
      clients: { type: 'string', short: 'c' },
      requests: { type: 'string', short: 'n' },
      payload: { type: 'string' },
      reuse: { type: 'boolean' },
      timeout: { type: 'string' },
      json: { type: 'boolean' },
    },
    true,
  )
  if (values.help) return print(testHelp)
  const a = addr(positionals, 'simulate')
  const clients = intFlag('clients', values.clients, 10, 1)
  const requests = intFlag('requests', values.requests, 100, 1)
  const progress = new Progress(clients * requests)
  const r = await simulate(a, {
    clients,
    requests,
    payload: Buffer.from(unescapeArg(values.payload ?? 'hello world\n')),
    reuse: Boolean(values.reuse),
    timeout: timeoutFlag(values.timeout),
    onProgress: (done, errors) => progress.update(done, `errors=${errors}`),
  })
  progress.done()
  const s = r.latency.summary()
  const failed = Object.values(r.errors).reduce((x, y) => x + y, 0)
  if (values.json) {
    out(
      JSON.stringify(
        {
          address: `${a.host}:${a.port}`,
          clients,
          requests,
          ok: r.ok,
          failed,
          errors: r.errors,
          perSecond: r.perSecond,
          elapsedMs: r.elapsedMs,
          latencyMs: s,
        },
        null,
        2,
      ),
    )
  } else {
    out(
      `${clients} clients × ${requests} requests${values.reuse ? ' (kept connections)' : ' (new connection each)'} → ${a.host}:${a.port}`,
    )
    out(
      `ok ${r.ok}, failed ${failed}${
        failed
          ? ` (${Object.entries(r.errors)
              .map(([k, v]) => `${k}: ${v}`)
              .join(', ')})`
          : ''
      }`,
    )
    out(`${r.perSecond.toFixed(0)} req/s over ${(r.elapsedMs / 1000).toFixed(2)}s`)
    if (s.count)
      out(`latency min/p50/p90/p99/max = ${ms(s.min)}/${ms(s.p50)}/${ms(s.p90)}/${ms(s.p99)}/${ms(s.max)}`)
  }
  return failed ? 1 : 0
}

async function serve(argv: string[]): Promise<number | null> {
  const { values, positionals } = parse(
    'test serve',
    argv,
    { listen: { type: 'string' }, name: { type: 'string' } },
    true,
  )
  if (values.help) return print(testHelp)
  const kind = positionals[0]
  const a = values.listen ? parseAddr(values.listen) : { host: '127.0.0.1', port: 0 }
  if (typeof a === 'string') throw new SluiceError('ERR_USAGE', `--listen: ${a}`)
  const opts = { host: a.host, port: a.port, name: values.name ?? kind ?? 'fixture' }
  let f: Fixture
  if (kind === 'echo') f = await echoServer(opts)
  else if (kind === 'ident') f = await identServer(opts)
  else if (kind === 'sink') f = await sinkServer(opts)
  else if (kind === 'http') f = await httpOrigin(opts)
  else throw new SluiceError('ERR_USAGE', 'sluice test serve needs a kind: echo, ident, sink or http')
  out(`${kind} server "${f.name}" listening on ${f.address}`)
  const stop = () => f.close().then(() => process.exit(0))
  process.on('SIGINT', stop)
  process.on('SIGTERM', stop)
  return null
}
