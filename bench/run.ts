// npm run bench: sluice against HAProxy (mode tcp), nginx (stream) and a direct connection, side by
// side in one run on the same backends. Writes bench/RESULTS.md with ratios (machines here are
// shared and noisy: ratios from one run mean more than absolute numbers).
//
// Cases: keep-alive ~1 KiB request / 1 KiB response (wrk against an nginx origin), one new TCP
// connection per request (wrk, Connection: close), bulk throughput (iperf3), memory per idle proxied
// connection, and the proxy's CPU time per request. Rounds interleave the targets; medians reported.
import { type ChildProcess, execFileSync, spawn, spawnSync } from 'node:child_process'
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs'
import { connect, type Socket } from 'node:net'
import { cpus, release } from 'node:os'
import { dirname, join, resolve } from 'node:path'
import { sinkServer } from '../src/testkit/fixtures.ts'
import { freePort } from '../src/testkit/ports.ts'
import { bandwidthAccuracy, latencyAccuracy, type Received, sink as timingSink } from './faults.ts'
import { median, type Wrk, waitPort, wrk } from './wrk.ts'

const root = resolve(import.meta.dirname, '..')
const work = join(root, 'bench', '.work')
const seconds = Number(process.env.BENCH_SECONDS ?? 8)
const rounds = Number(process.env.BENCH_ROUNDS ?? 3)
const idleConnections = Number(process.env.BENCH_IDLE ?? 5000)
const keepAliveClients = 64
const newConnClients = 16
const CLK_TCK = 100

// ---------------------------------------------------------------------------------------------
// Tools

function have(cmd: string): boolean {
  try {
    execFileSync('sh', ['-c', `command -v ${cmd}`], { stdio: 'ignore' })
    return true
  } catch {
    return false
  }
}

function ensureTools(): void {
  const missing = ['haproxy', 'nginx', 'wrk', 'iperf3'].filter((c) => !have(c))
  const streamModule = '/usr/lib/nginx/modules/ngx_stream_module.so'
  let needStream = false
  try {
    readFileSync(streamModule)
  } catch {
    needStream = true
  }
  if (missing.length === 0 && !needStream) return
  const pkgs = ['haproxy', 'nginx-light', 'libnginx-mod-stream', 'wrk', 'iperf3']
  console.log(
    `installing ${pkgs.join(' ')} (missing: ${[...missing, ...(needStream ? ['nginx stream module'] : [])].join(', ')})`,
  )
  const sudo = process.getuid?.() === 0 ? [] : ['sudo']
  const run = (args: string[]) =>
    execFileSync(sudo.length ? 'sudo' : args[0]!, sudo.length ? args : args.slice(1), {
      stdio: 'inherit',
      env: { ...process.env, DEBIAN_FRONTEND: 'noninteractive' },
    })
  run(['apt-get', 'update'])
  run(['apt-get', 'install', '-y', '--no-install-recommends', ...pkgs])
}

function version(cmd: string, args: string[]): string {
  // nginx prints its version on stderr, and wrk exits 1 after printing it: read both streams.
  const r = spawnSync(cmd, args, { encoding: 'utf8' })
  return (
    `${r.stdout ?? ''}${r.stderr ?? ''}`
      .split('\n')
      .find((l) => l.trim())
      ?.trim() ?? cmd
  )
}

// ---------------------------------------------------------------------------------------------
// Processes

const children: ChildProcess[] = []

function start(name: string, cmd: string, args: string[]): ChildProcess {
  // The Node running this script first on PATH, so bin/sluice.js's `env node` finds it too.
  const env = { ...process.env, PATH: `${dirname(process.execPath)}:${process.env.PATH}` }
  const child = spawn(cmd, args, { stdio: ['ignore', 'ignore', 'pipe'], cwd: work, env })
  let err = ''
  child.stderr!.on('data', (d) => {
    err += d
  })
  child.on('exit', (code) => {
    if (code && !stopping) console.error(`${name} exited ${code}: ${err}`)
  })
  children.push(child)
  return child
}

let stopping = false
function stopAll(): void {
  stopping = true
  for (const c of children) c.kill('SIGKILL')
}
process.on('exit', stopAll)
process.on('SIGINT', () => process.exit(130))

/** utime + stime of a process and its threads, in seconds. */
function cpuSeconds(pid: number): number {
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8')
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ')
  return (Number(fields[11]) + Number(fields[12])) / CLK_TCK
}

function rssKiB(pid: number): number {
  const m = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))
  return m ? Number(m[1]) : 0
}

// ---------------------------------------------------------------------------------------------
// Measurements

const pad = 'x'.repeat(900)

function wrkRun(port: number, clients: number, close: boolean): Promise<Wrk> {
  const args = ['-t1', `-c${clients}`, `-d${seconds}s`, '-H', `X-Pad: ${pad}`]
  if (close) args.push('-H', 'Connection: close')
  args.push(`http://127.0.0.1:${port}/`)
  return wrk(args)
}

async function iperf(port: number): Promise<number> {
  const out = await new Promise<string>((res, rej) => {
    const c = spawn('iperf3', [
      '-c',
      '127.0.0.1',
      '-p',
      String(port),
      '-t',
      String(Math.min(seconds, 5)),
      '-J',
    ])
    let s = ''
    c.stdout.on('data', (d) => (s += d))
    c.on('exit', (code) =>
      code === 0 ? res(s) : rej(new Error(`iperf3 exited ${code}: ${s.slice(0, 300)}`)),
    )
  })
  const j = JSON.parse(out) as { end: { sum_received: { bits_per_second: number } } }
  return j.end.sum_received.bits_per_second / 8 / 1e6
}

/** RSS once it stops moving (a garbage-collected process settles after a burst). */
async function settledRss(pid: number): Promise<number> {
  let last = rssKiB(pid)
  for (let i = 0; i < 20; i++) {
    await new Promise((r) => setTimeout(r, 250))
    const now = rssKiB(pid)
    if (Math.abs(now - last) < 64) return now
    last = now
  }
  return last
}

/**
 * RSS growth of `pid` per idle connection held through it to the sink. Measured on a fresh
 * process, before any load: after load, a garbage-collected heap can shrink mid-measurement.
 */
async function idleMemory(pid: number | null, port: number, sink: { sockets: Set<Socket> }): Promise<number> {
  const before = pid ? await settledRss(pid) : 0
  const base = sink.sockets.size
  const sockets: Socket[] = []
  for (let i = 0; i < idleConnections; i++) {
    const s = connect(port, '127.0.0.1')
    s.on('error', () => {})
    sockets.push(s)
    if (i % 200 === 199) await new Promise((r) => setTimeout(r, 20))
  }
  const deadline = Date.now() + 20_000
  while (sink.sockets.size - base < idleConnections && Date.now() < deadline)
    await new Promise((r) => setTimeout(r, 50))
  const reached = sink.sockets.size - base
  const after = pid ? await settledRss(pid) : 0
  for (const s of sockets) s.destroy()
  while (sink.sockets.size > base && Date.now() < deadline + 10_000)
    await new Promise((r) => setTimeout(r, 50))
  if (reached < idleConnections)
    console.warn(`  only ${reached}/${idleConnections} idle connections reached the sink`)
  return pid ? (after - before) / Math.max(1, reached) : 0
}

interface Result {
  kaRps: number
  kaP50: number
  kaP99: number
  kaCpuUs: number
  ncRps: number
  ncP99: number
  ncCpuUs: number
  bulkMBs: number
  idleKiB: number
  errors: number
}

interface Target {
  name: string
  http: number
  bulk: number
  idle: number
  pid: number | null
}

async function measure(t: Target): Promise<Omit<Result, 'idleKiB'>> {
  const cpu0 = t.pid ? cpuSeconds(t.pid) : 0
  const ka = await wrkRun(t.http, keepAliveClients, false)
  const cpu1 = t.pid ? cpuSeconds(t.pid) : 0
  const nc = await wrkRun(t.http, newConnClients, true)
  const cpu2 = t.pid ? cpuSeconds(t.pid) : 0
  const bulkMBs = await iperf(t.bulk)
  return {
    kaRps: ka.rps,
    kaP50: ka.p50,
    kaP99: ka.p99,
    kaCpuUs: t.pid ? ((cpu1 - cpu0) / ka.requests) * 1e6 : 0,
    ncRps: nc.rps,
    ncP99: nc.p99,
    ncCpuUs: t.pid ? ((cpu2 - cpu1) / nc.requests) * 1e6 : 0,
    bulkMBs,
    errors: ka.errors + nc.errors,
  }
}

// ---------------------------------------------------------------------------------------------
// Set-up

async function main(): Promise<void> {
  ensureTools()
  mkdirSync(work, { recursive: true })
  const body = 'y'.repeat(1023)
  const [origin, iperfPort] = [await freePort(), await freePort()]
  const sink = await sinkServer()
  const ports = {
    haproxy: [await freePort(), await freePort(), await freePort()],
    nginx: [await freePort(), await freePort(), await freePort()],
    sluice: [await freePort(), await freePort(), await freePort()],
    nodePipe: [await freePort(), await freePort(), await freePort()],
  }
  const backends = [`127.0.0.1:${origin}`, `127.0.0.1:${iperfPort}`, sink.address]

  writeFileSync(
    join(work, 'origin.conf'),
    `daemon off; master_process off; worker_processes 1; error_log stderr warn; pid ${work}/origin.pid;
events { worker_connections 20000; }
http { access_log off; keepalive_requests 100000000; keepalive_timeout 300s;
  server { listen 127.0.0.1:${origin}; location / { default_type text/plain; return 200 "${body}\n"; } } }
`,
  )
  writeFileSync(
    join(work, 'haproxy.cfg'),
    `global
  nbthread 1
  maxconn 9000
defaults
  mode tcp
  timeout connect 5s
  timeout client 300s
  timeout server 300s
${['http', 'bulk', 'idle']
  .map((n, i) => `listen ${n}\n  bind 127.0.0.1:${ports.haproxy[i]}\n  server s ${backends[i]}\n`)
  .join('')}`,
  )
  writeFileSync(
    join(work, 'nginx-proxy.conf'),
    `load_module /usr/lib/nginx/modules/ngx_stream_module.so;
daemon off; master_process off; worker_processes 1; error_log stderr warn; pid ${work}/nginx-proxy.pid;
worker_rlimit_nofile 20000;
events { worker_connections 20000; }
stream {
${['http', 'bulk', 'idle'].map((_, i) => `  server { listen 127.0.0.1:${ports.nginx[i]}; proxy_pass ${backends[i]}; }\n`).join('')}}
`,
  )
  // Fault benchmarks: sinks that timestamp what arrives, and apps with one fault each.
  const arrivals = new Map<number, number>()
  const latSink = await timingSink((d, at) => {
    for (let off = 0; off + 16 <= d.length; off += 16) arrivals.set(d.readUInt32BE(off), at)
  })
  const bw: Received = { n: 0, first: 0, firstSize: 0, last: 0 }
  const bwSink = await timingSink((d, at) => {
    if (bw.n === 0) {
      bw.first = at
      bw.firstSize = d.length
    }
    bw.n += d.length
    bw.last = at
  })
  const faultPorts = {
    lat1: await freePort(),
    lat0: await freePort(),
    lat100: await freePort(),
    bw: await freePort(),
  }
  const apps = ['http', 'bulk', 'idle'].map(
    (n, i) => `  - {name: ${n}, listen: ["127.0.0.1:${ports.sluice[i]}"], targets: ["${backends[i]}"]}`,
  )
  apps.push(
    `  - {name: lat1, listen: ["127.0.0.1:${faultPorts.lat1}"], targets: ["127.0.0.1:${origin}"], faults: [{type: latency, latency: 1ms, direction: to-client}]}`,
    `  - {name: lat0, listen: ["127.0.0.1:${faultPorts.lat0}"], targets: ["127.0.0.1:${latSink.port}"]}`,
    `  - {name: lat100, listen: ["127.0.0.1:${faultPorts.lat100}"], targets: ["127.0.0.1:${latSink.port}"], faults: [{type: latency, latency: 100ms, direction: to-upstream}]}`,
    `  - {name: bw, listen: ["127.0.0.1:${faultPorts.bw}"], targets: ["127.0.0.1:${bwSink.port}"], faults: [{type: bandwidth, rate: 1MB, direction: to-upstream}]}`,
  )
  writeFileSync(join(work, 'sluice.yaml'), `admin: false\nlog: {level: warn}\napps:\n${apps.join('\n')}\n`)

  start('origin nginx', 'nginx', ['-p', work, '-e', 'stderr', '-c', join(work, 'origin.conf')])
  start('iperf3 server', 'iperf3', ['-s', '-p', String(iperfPort)])
  const hap = start('haproxy', 'haproxy', ['-db', '-f', join(work, 'haproxy.cfg')])
  const ngx = start('nginx proxy', 'nginx', [
    '-p',
    work,
    '-e',
    'stderr',
    '-c',
    join(work, 'nginx-proxy.conf'),
  ])
  // Started as users start it: through bin/sluice.js, whose shebang carries sluice's V8 flags.
  const slc = start('sluice', join(root, 'bin', 'sluice.js'), [
    'run',
    '-c',
    join(work, 'sluice.yaml'),
    '--admin',
    'off',
  ])
  const pipe = start('node pipe()', process.execPath, [
    '--max-semi-space-size=4',
    join(root, 'bench', 'node-pipe.ts'),
    ...ports.nodePipe.map((p, i) => `${p}:${backends[i]!.split(':')[1]}`),
  ])
  for (const p of [origin, iperfPort, ...ports.haproxy, ...ports.nginx, ...ports.sluice, ...ports.nodePipe])
    await waitPort(p)

  const targets: Target[] = [
    { name: 'direct', http: origin, bulk: iperfPort, idle: sink.port, pid: null },
    {
      name: 'haproxy',
      http: ports.haproxy[0]!,
      bulk: ports.haproxy[1]!,
      idle: ports.haproxy[2]!,
      pid: hap.pid!,
    },
    { name: 'nginx', http: ports.nginx[0]!, bulk: ports.nginx[1]!, idle: ports.nginx[2]!, pid: ngx.pid! },
    { name: 'sluice', http: ports.sluice[0]!, bulk: ports.sluice[1]!, idle: ports.sluice[2]!, pid: slc.pid! },
    {
      name: 'node-pipe',
      http: ports.nodePipe[0]!,
      bulk: ports.nodePipe[1]!,
      idle: ports.nodePipe[2]!,
      pid: pipe.pid!,
    },
  ]

  const idle = new Map<string, number>()
  for (const t of targets) {
    if (!t.pid) continue
    idle.set(t.name, await idleMemory(t.pid, t.idle, sink))
    console.log(
      `idle ${t.name.padEnd(8)} ${idle.get(t.name)!.toFixed(2)} KiB per connection (${idleConnections} connections, fresh process)`,
    )
  }

  console.log(`warming up (${seconds}s per case, ${rounds} rounds, ${targets.length} targets)`)
  for (const t of targets) await wrkRun(t.http, keepAliveClients, false).catch(() => {})

  const results = new Map<string, Result[]>(targets.map((t) => [t.name, []]))
  for (let r = 1; r <= rounds; r++) {
    // Rotate the order each round so no target always runs first (or last) on a drifting machine.
    const order = targets.map((_, i) => targets[(i + r - 1) % targets.length]!)
    for (const t of order) {
      const res = { ...(await measure(t)), idleKiB: idle.get(t.name) ?? 0 }
      results.get(t.name)!.push(res)
      console.log(
        `round ${r} ${t.name.padEnd(8)} ka ${res.kaRps.toFixed(0)} req/s p99 ${res.kaP99.toFixed(2)}ms cpu ${res.kaCpuUs.toFixed(1)}us | new-conn ${res.ncRps.toFixed(0)} req/s cpu ${res.ncCpuUs.toFixed(1)}us | bulk ${res.bulkMBs.toFixed(0)} MB/s${res.errors ? ` | ${res.errors} errors` : ''}`,
      )
    }
  }
  const med = (name: string, k: keyof Result) => median(results.get(name)!.map((x) => x[k]))

  // Faults: CPU per request with one latency fault, against fault-free sluice, interleaved.
  console.log('faults: CPU per request with one latency fault')
  const plainCpu: number[] = []
  const faultCpu: number[] = []
  for (let r = 0; r < rounds; r++) {
    for (const [port, into] of [
      [ports.sluice[0]!, plainCpu],
      [faultPorts.lat1, faultCpu],
    ] as const) {
      const c0 = cpuSeconds(slc.pid!)
      const w = await wrkRun(port, keepAliveClients, false)
      into.push(((cpuSeconds(slc.pid!) - c0) / w.requests) * 1e6)
    }
  }
  // Accuracy under load: wrk keeps sluice busy on a fault-free app meanwhile.
  console.log('faults: latency and bandwidth accuracy under load')
  const load = spawn(
    'wrk',
    ['-t1', `-c${keepAliveClients}`, '-d30s', '-H', `X-Pad: ${pad}`, `http://127.0.0.1:${ports.sluice[0]}/`],
    {
      stdio: 'ignore',
    },
  )
  await new Promise((r) => setTimeout(r, 500))
  // The same path with no fault first: what transit alone costs under this load.
  const transit = await latencyAccuracy(faultPorts.lat0, 0, arrivals)
  arrivals.clear()
  const lat = await latencyAccuracy(faultPorts.lat100, 100, arrivals)
  const rate = await bandwidthAccuracy(faultPorts.bw, 5_000_000, bw)
  load.kill()
  const faults = { cpuPlain: median(plainCpu), cpuFault: median(faultCpu), transit, lat, rate }
  console.log(JSON.stringify(faults))
  report(
    targets.map((t) => t.name),
    med,
    faults,
  )
  await sink.close()
  latSink.server.close()
  bwSink.server.close()
  stopAll()
}

// ---------------------------------------------------------------------------------------------
// Report

interface Timing {
  p50: number
  p99: number
  max: number
  records: number
}

interface FaultResults {
  cpuPlain: number
  cpuFault: number
  lat: Timing
  transit: Timing
  rate: number
}

function report(names: string[], med: (name: string, k: keyof Result) => number, f: FaultResults): void {
  const rows: [string, keyof Result, string, 'higher' | 'lower', boolean][] = [
    ['keep-alive req/s', 'kaRps', '%.0f', 'higher', true],
    ['keep-alive p50 latency (ms)', 'kaP50', '%.3f', 'lower', true],
    ['keep-alive p99 latency (ms)', 'kaP99', '%.3f', 'lower', true],
    ['keep-alive proxy CPU per request (µs)', 'kaCpuUs', '%.2f', 'lower', false],
    ['new connection per request: req/s', 'ncRps', '%.0f', 'higher', true],
    ['new connection per request: p99 (ms)', 'ncP99', '%.3f', 'lower', true],
    ['new connection: proxy CPU per request (µs)', 'ncCpuUs', '%.2f', 'lower', false],
    ['bulk throughput, iperf3 (MB/s)', 'bulkMBs', '%.0f', 'higher', true],
    ['memory per idle proxied connection (KiB, fresh process)', 'idleKiB', '%.2f', 'lower', false],
  ]
  const fmt = (v: number, f: string) =>
    Number.isFinite(v) ? v.toFixed(Number(f.match(/\.(\d)/)?.[1] ?? 0)) : 'n/a'
  const ratio = (a: number, b: number) => (b > 0 && Number.isFinite(a) ? `${(a / b).toFixed(2)}×` : '—')
  const lines: string[] = []
  lines.push(`| metric | ${names.join(' | ')} | sluice ÷ haproxy | sluice ÷ direct | node-pipe ÷ haproxy |`)
  lines.push(`|---|${names.map(() => '---:').join('|')}|---:|---:|---:|`)
  for (const [label, key, f, , hasDirect] of rows) {
    const cells = names.map((n) => (n === 'direct' && !hasDirect ? '—' : fmt(med(n, key), f)))
    lines.push(
      `| ${label} | ${cells.join(' | ')} | ${ratio(med('sluice', key), med('haproxy', key))} | ${hasDirect ? ratio(med('sluice', key), med('direct', key)) : '—'} | ${ratio(med('node-pipe', key), med('haproxy', key))} |`,
    )
  }
  const goals: [string, number, string, boolean][] = [
    [
      'CPU per request ≤ 1.1× HAProxy (keep-alive)',
      med('sluice', 'kaCpuUs') / med('haproxy', 'kaCpuUs'),
      '≤ 1.1',
      med('sluice', 'kaCpuUs') / med('haproxy', 'kaCpuUs') <= 1.1,
    ],
    [
      'p99 latency ≤ 1.2× HAProxy (keep-alive)',
      med('sluice', 'kaP99') / med('haproxy', 'kaP99'),
      '≤ 1.2',
      med('sluice', 'kaP99') / med('haproxy', 'kaP99') <= 1.2,
    ],
    [
      'bulk throughput ≥ 1.0× HAProxy',
      med('sluice', 'bulkMBs') / med('haproxy', 'bulkMBs'),
      '≥ 1.0',
      med('sluice', 'bulkMBs') / med('haproxy', 'bulkMBs') >= 1.0,
    ],
    [
      'new-connection rate ≥ 0.8× HAProxy',
      med('sluice', 'ncRps') / med('haproxy', 'ncRps'),
      '≥ 0.8',
      med('sluice', 'ncRps') / med('haproxy', 'ncRps') >= 0.8,
    ],
    [
      '≤ 10 KiB per idle proxied connection',
      med('sluice', 'idleKiB'),
      '≤ 10 KiB',
      med('sluice', 'idleKiB') <= 10,
    ],
  ]
  const table = lines.join('\n')
  const goalLines = goals.map(
    ([g, v, target, ok]) =>
      `| ${g} | ${g.startsWith('≤ 10 KiB') ? `${v.toFixed(1)} KiB` : `${v.toFixed(2)}×`} | ${target} | ${ok ? 'met' : '**not met**'} |`,
  )
  const env = [
    `- date: ${new Date().toISOString()}`,
    `- machine: ${cpus().length} × ${cpus()[0]?.model ?? 'cpu'}, Linux ${release()}`,
    `- node ${process.version}; ${version('haproxy', ['-v'])}; ${version('nginx', ['-v'])}; ${version('wrk', ['--version'])}; ${version('iperf3', ['--version'])}`,
    `- ${rounds} rounds × ${seconds}s per case, targets interleaved, medians; wrk -t1 -c${keepAliveClients} (keep-alive) and -c${newConnClients} with Connection: close; ~1 KiB requests (a 900-byte header) and 1 KiB responses from an nginx origin; iperf3 ${Math.min(seconds, 5)}s single stream; ${idleConnections} idle connections`,
    '- one process each: sluice (one Node process), HAProxy nbthread 1, nginx one worker (master_process off); the origin, wrk and the proxy share the 2 cores',
    '- node-pipe: the floor for any Node.js proxy (bench/node-pipe.ts: accept, connect, pipe() both ways, nothing else), same Node and V8 flags as sluice',
  ]
  const md = `# Benchmark results

Generated by \`npm run bench\` (bench/run.ts). Absolute numbers depend on this shared, noisy machine;
compare the ratios, which come from one run with every target measured on the same backends.

${env.join('\n')}

${table}

## Goals (issue 2), sluice against HAProxy in the same run

| goal | measured | target | |
|---|---:|---:|---|
${goalLines.join('\n')}

## Faults (issue 3), same run

| measure | result | goal | |
|---|---:|---:|---|
| latency fault 100 ms: error p50 over ${f.lat.records} records, under load | ${f.lat.p50.toFixed(2)} ms | | |
| latency fault 100 ms: error p99 | ${f.lat.p99.toFixed(2)} ms | ≤ 2 ms | ${f.lat.p99 <= 2 ? 'met' : '**not met**'} |
| latency fault 100 ms: worst error | ${f.lat.max.toFixed(2)} ms | | |
| same path, no fault: transit p50 / p99 / worst | ${f.transit.p50.toFixed(2)} / ${f.transit.p99.toFixed(2)} / ${f.transit.max.toFixed(2)} ms | | |
| bandwidth fault 1 MB/s: achieved, under load | ${(f.rate / 1e6).toFixed(4)} MB/s (${(((f.rate - 1e6) / 1e6) * 100).toFixed(2)} %) | within 2 % | ${Math.abs(f.rate - 1e6) <= 2e4 ? 'met' : '**not met**'} |
| CPU per request, keep-alive, one latency fault (1 ms, to-client) | ${f.cpuFault.toFixed(2)} µs | | |
| CPU per request, keep-alive, no fault (same run) | ${f.cpuPlain.toFixed(2)} µs | | |
| ratio | ${(f.cpuFault / f.cpuPlain).toFixed(2)}× | ≤ 1.3× | ${f.cpuFault / f.cpuPlain <= 1.3 ? 'met' : '**not met**'} |

See NOTES.md in this folder for the profile and what limits each goal not met.
`
  writeFileSync(join(root, 'bench', 'RESULTS.md'), md)
  console.log(`\n${table}\n\n${goalLines.join('\n')}\n\nwrote bench/RESULTS.md`)
}

main().catch((err) => {
  console.error(err)
  stopAll()
  process.exit(1)
})
