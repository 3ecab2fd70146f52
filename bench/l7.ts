// npm run bench, L7 part (issue 4): sluice's http dispatch against nginx proxy_pass (upstream
// keepalive), HAProxy mode http with a header ACL, the http-proxy npm package, and a direct
// connection, in one run on one nginx origin. 1 KiB responses over keep-alive (wrk), then a 1 MiB
// response body. Writes the "L7" section of bench/RESULTS-L7.md. Ratios, not absolute numbers.
import { type ChildProcess, spawn } from 'node:child_process'
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs'
import { join, resolve } from 'node:path'
import { freePort } from '../src/testkit/ports.ts'
import { median, type Wrk, waitPort, wrk } from './wrk.ts'

const root = resolve(import.meta.dirname, '..')
const work = join(root, 'bench', '.work')
const seconds = Number(process.env.BENCH_SECONDS ?? 8)
const rounds = Number(process.env.BENCH_ROUNDS ?? 3)
const clients = 64
const children: ChildProcess[] = []

function start(cmd: string, args: string[]): ChildProcess {
  const c = spawn(cmd, args, { stdio: ['ignore', 'ignore', 'inherit'] })
  children.push(c)
  return c
}

function cpu(pid: number): number {
  const f = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1]!.split(' ')
  return (Number(f[11]) + Number(f[12])) / 100
}

function l7wrk(port: number, path: string, c: number): Promise<Wrk> {
  return wrk(['-t1', `-c${c}`, `-d${seconds}s`, '-H', 'environment: dev', `http://127.0.0.1:${port}${path}`])
}

interface Row {
  rps: number
  p99: number
  cpuUs: number
  bigRps: number
  errors: number
}

async function main(): Promise<void> {
  mkdirSync(work, { recursive: true })
  const origin = await freePort()
  const p = {
    nginx: await freePort(),
    haproxy: await freePort(),
    sluice: await freePort(),
    httpProxy: await freePort(),
  }
  const small = 'y'.repeat(1023)
  writeFileSync(join(work, 'l7-big.bin'), Buffer.alloc(1 << 20, 120))
  writeFileSync(
    join(work, 'l7-origin.conf'),
    `daemon off; master_process off; worker_processes 1; error_log stderr warn; pid ${work}/l7-origin.pid;
events { worker_connections 20000; }
http { access_log off; keepalive_requests 100000000; keepalive_timeout 300s;
  server { listen 127.0.0.1:${origin};
    location = /big { alias ${work}/l7-big.bin; default_type application/octet-stream; }
    location / { default_type text/plain; return 200 "${small}\\n"; } } }
`,
  )
  writeFileSync(
    join(work, 'l7-nginx.conf'),
    `daemon off; master_process off; worker_processes 1; error_log stderr warn; pid ${work}/l7-nginx.pid;
events { worker_connections 20000; }
http { access_log off; keepalive_requests 100000000; keepalive_timeout 300s;
  upstream o { server 127.0.0.1:${origin}; keepalive 128; }
  server { listen 127.0.0.1:${p.nginx};
    location / { proxy_pass http://o; proxy_http_version 1.1; proxy_set_header Connection ""; proxy_buffering off; } } }
`,
  )
  writeFileSync(
    join(work, 'l7-haproxy.cfg'),
    `global
  nbthread 1
defaults
  mode http
  timeout connect 5s
  timeout client 300s
  timeout server 300s
  option http-keep-alive
frontend f
  bind 127.0.0.1:${p.haproxy}
  acl dev req.hdr(environment) -m str dev
  use_backend b if dev
  default_backend b
backend b
  server s 127.0.0.1:${origin}
`,
  )
  writeFileSync(
    join(work, 'l7-sluice.yaml'),
    `admin: false
log: {level: warn}
apps:
  - name: l7
    kind: http
    listen: ["127.0.0.1:${p.sluice}"]
    destination: http://127.0.0.1:${origin}
    rules:
      - match: {environment: dev}
        headers: {set: {dispatched: "true"}}
`,
  )
  writeFileSync(
    join(work, 'l7-http-proxy.mjs'),
    `import http from 'node:http'
import httpProxy from 'http-proxy'
const agent = new http.Agent({ keepAlive: true, maxSockets: 256 })
const proxy = httpProxy.createProxyServer({ agent })
proxy.on('error', (e, req, res) => { res.writeHead(502); res.end() })
http.createServer((req, res) => {
  if (req.headers.environment === 'dev') req.headers.dispatched = 'true'
  proxy.web(req, res, { target: 'http://127.0.0.1:${origin}' })
}).listen(${p.httpProxy}, '127.0.0.1')
`,
  )
  start('nginx', ['-p', work, '-e', 'stderr', '-c', join(work, 'l7-origin.conf')])
  const ngx = start('nginx', ['-p', work, '-e', 'stderr', '-c', join(work, 'l7-nginx.conf')])
  const hap = start('haproxy', ['-db', '-f', join(work, 'l7-haproxy.cfg')])
  const slc = start(join(root, 'bin', 'sluice.js'), [
    'run',
    '-c',
    join(work, 'l7-sluice.yaml'),
    '--admin',
    'off',
  ])
  const hp = start(process.execPath, [join(work, 'l7-http-proxy.mjs')])
  for (const port of [origin, ...Object.values(p)]) await waitPort(port)

  const targets = [
    { name: 'direct', port: origin, pid: null as number | null },
    { name: 'nginx', port: p.nginx, pid: ngx.pid! },
    { name: 'haproxy', port: p.haproxy, pid: hap.pid! },
    { name: 'sluice', port: p.sluice, pid: slc.pid! },
    { name: 'http-proxy', port: p.httpProxy, pid: hp.pid! },
  ]
  const results = new Map<string, Row[]>()
  for (const t of targets) await l7wrk(t.port, '/', 8) // warm up pools and JITs
  for (let r = 0; r < rounds; r++) {
    for (const t of targets) {
      const before = t.pid ? cpu(t.pid) : 0
      const a = await l7wrk(t.port, '/', clients)
      const used = t.pid ? cpu(t.pid) - before : 0
      const b = await l7wrk(t.port, '/big', 16)
      const row = {
        rps: a.rps,
        p99: a.p99,
        cpuUs: t.pid ? (used / a.requests) * 1e6 : 0,
        bigRps: b.rps,
        errors: a.errors + b.errors,
      }
      results.set(t.name, [...(results.get(t.name) ?? []), row])
      console.log(
        `round ${r + 1} ${t.name}: ${a.rps.toFixed(0)} req/s, p99 ${a.p99} ms, ${row.cpuUs.toFixed(1)} µs CPU/req, 1 MiB: ${b.rps.toFixed(0)} req/s (${b.transfer}), errors ${row.errors}`,
      )
    }
  }
  const med = (name: string, k: keyof Row) => median(results.get(name)!.map((x) => x[k]))
  const names = targets.map((t) => t.name)
  const f = (x: number, d = 0) => (Number.isFinite(x) ? x.toFixed(d) : '—')
  const ratio = (a: number, b: number) => (b > 0 ? `${(a / b).toFixed(2)}×` : '—')
  const lines = [
    '# L7 benchmark (issue 4)',
    '',
    'Generated by `npm run bench` (bench/l7.ts). One nginx origin (1 KiB and 1 MiB responses); wrk -t1',
    `-c${clients} keep-alive for 1 KiB, -c16 for 1 MiB, ${rounds} rounds × ${seconds}s, medians. One process each:`,
    'nginx (one worker, upstream keepalive 128), HAProxy (mode http, nbthread 1, header ACL), sluice (one',
    'Node process, one header rule), the http-proxy npm package (keep-alive agent).',
    `- date: ${new Date().toISOString()}`,
    '',
    `| metric | ${names.join(' | ')} | sluice ÷ nginx | sluice ÷ http-proxy |`,
    `|---|${names.map(() => '---:').join('|')}|---:|---:|`,
    `| 1 KiB keep-alive req/s | ${names.map((n) => f(med(n, 'rps'))).join(' | ')} | ${ratio(med('sluice', 'rps'), med('nginx', 'rps'))} | ${ratio(med('sluice', 'rps'), med('http-proxy', 'rps'))} |`,
    `| p99 latency (ms) | ${names.map((n) => f(med(n, 'p99'), 2)).join(' | ')} | ${ratio(med('sluice', 'p99'), med('nginx', 'p99'))} | |`,
    `| proxy CPU per request (µs) | ${names.map((n) => (n === 'direct' ? '—' : f(med(n, 'cpuUs'), 1))).join(' | ')} | ${ratio(med('sluice', 'cpuUs'), med('nginx', 'cpuUs'))} | ${ratio(med('sluice', 'cpuUs'), med('http-proxy', 'cpuUs'))} |`,
    `| 1 MiB responses/s | ${names.map((n) => f(med(n, 'bigRps'))).join(' | ')} | ${ratio(med('sluice', 'bigRps'), med('nginx', 'bigRps'))} | |`,
    `| errors | ${names.map((n) => f(med(n, 'errors'))).join(' | ')} | | |`,
    '',
    '| goal | measured | |',
    '|---|---:|---|',
    `| CPU per request ≤ 2× nginx | ${ratio(med('sluice', 'cpuUs'), med('nginx', 'cpuUs'))} | ${med('sluice', 'cpuUs') <= 2 * med('nginx', 'cpuUs') ? 'met' : '**not met**'} |`,
    `| req/s ≥ 0.6× nginx | ${ratio(med('sluice', 'rps'), med('nginx', 'rps'))} | ${med('sluice', 'rps') >= 0.6 * med('nginx', 'rps') ? 'met' : '**not met**'} |`,
    `| req/s ≥ 4× http-proxy | ${ratio(med('sluice', 'rps'), med('http-proxy', 'rps'))} | ${med('sluice', 'rps') >= 4 * med('http-proxy', 'rps') ? 'met' : '**not met**'} |`,
    `| p99 ≤ 1.5× nginx | ${ratio(med('sluice', 'p99'), med('nginx', 'p99'))} | ${med('sluice', 'p99') <= 1.5 * med('nginx', 'p99') ? 'met' : '**not met**'} |`,
    '',
  ]
  writeFileSync(join(root, 'bench', 'RESULTS-L7.md'), lines.join('\n'))
  console.log(lines.join('\n'))
}

main()
  .catch((err) => {
    console.error(err)
    process.exitCode = 1
  })
  .finally(() => {
    for (const c of children) c.kill('SIGKILL')
  })
