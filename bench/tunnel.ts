// npm run bench, tunnel part (issue 5): a sluice client and server on loopback (mTLS HTTP/2
// sessions between them) against a direct connection to the same origin. Request latency p50/p99
// with one client (warm sessions), req/s with 64 keep-alive clients (wrk), and one 200 MB request
// body's throughput (curl). Writes bench/RESULTS-TUNNEL.md. Ratios and differences, not absolutes.
import { type ChildProcess, spawn } from 'node:child_process'
import { mkdirSync, writeFileSync } from 'node:fs'
import { createServer } from 'node:http'
import { join, resolve } from 'node:path'
import { freePort } from '../src/testkit/ports.ts'
import { makeCa, makeCert } from '../test/tls-certs.ts'
import { median, type Wrk, wrk } from './wrk.ts'

const root = resolve(import.meta.dirname, '..')
const work = join(root, 'bench', '.work')
const seconds = Number(process.env.BENCH_SECONDS ?? 8)
const rounds = Number(process.env.BENCH_ROUNDS ?? 3)
const bodyMb = Number(process.env.BENCH_BODY_MB ?? 200)
const children: ChildProcess[] = []

function start(args: string[]): ChildProcess {
  const c = spawn(join(root, 'bin', 'sluice.js'), args, { stdio: ['ignore', 'ignore', 'inherit'] })
  children.push(c)
  return c
}

async function waitStatus(url: string, status: number): Promise<void> {
  const deadline = Date.now() + 15_000
  while (Date.now() < deadline) {
    const code = await fetch(url)
      .then(async (r) => {
        await r.arrayBuffer()
        return r.status
      })
      .catch(() => 0)
    if (code === status) return
    await new Promise((r) => setTimeout(r, 100))
  }
  throw new Error(`${url} never answered ${status}`)
}

function tunnelWrk(port: number, c: number): Promise<Wrk> {
  return wrk(['-t1', `-c${c}`, `-d${seconds}s`, `http://127.0.0.1:${port}/`])
}

/** Upload the big file with curl; MB/s (10^6) from curl's own upload speed. */
async function upload(port: number, file: string): Promise<number> {
  const out = await new Promise<string>((res, rej) => {
    const p = spawn('curl', [
      '-s',
      '-o',
      '/dev/null',
      '-w',
      '%{http_code} %{speed_upload}',
      '--data-binary',
      `@${file}`,
      '-H',
      'Content-Type: application/octet-stream',
      `http://127.0.0.1:${port}/upload`,
    ])
    let s = ''
    p.stdout.on('data', (d) => (s += d))
    p.on('exit', (code) => (code === 0 ? res(s) : rej(new Error(`curl ${code}: ${s}`))))
  })
  const [code, speed] = out.split(' ')
  if (code !== '200') throw new Error(`upload answered ${code}`)
  return Number(speed) / 1e6
}

async function main(): Promise<void> {
  mkdirSync(work, { recursive: true })
  const ca = makeCa(work, 'tb-ca')
  const cc = makeCert(work, ca, 'tb-client', {
    cn: 'foo.example.org',
    dns: ['foo.example.org'],
    client: true,
  })
  const sc = makeCert(work, ca, 'tb-server', { cn: 'bar.example.org', dns: ['bar.example.org'] })
  const big = join(work, 'tunnel-body.bin')
  writeFileSync(big, Buffer.alloc(bodyMb * 1e6, 97))

  // The origin: a small answer for every request, the body read and dropped.
  const origin = createServer({ keepAliveTimeout: 300_000 }, (req, res) => {
    req.resume()
    req.on('end', () => res.end('ok'))
  })
  await new Promise<void>((r) => origin.listen(0, '127.0.0.1', () => r()))
  const originPort = (origin.address() as { port: number }).port
  const [listen, tunnel] = [await freePort(), await freePort()]
  const tls = (c: { cert: string; key: string }) => `{ca: ${ca.cert}, cert: ${c.cert}, key: ${c.key}}`
  writeFileSync(
    join(work, 'tunnel-server.yaml'),
    `admin: false\nlog: {level: warn}\napps:\n  - {name: s, kind: tunnel, mode: server, listen: ["127.0.0.1:${tunnel}"], origin: "127.0.0.1:${originPort}", peer_hostname: foo.example.org, tls: ${tls(sc)}}\n`,
  )
  writeFileSync(
    join(work, 'tunnel-client.yaml'),
    `admin: false\nlog: {level: warn}\napps:\n  - {name: c, kind: tunnel, mode: client, listen: ["127.0.0.1:${listen}"], peer: "127.0.0.1:${tunnel}", peer_hostname: bar.example.org, tls: ${tls(cc)}}\n`,
  )
  start(['run', '-c', join(work, 'tunnel-server.yaml'), '--no-watch'])
  start(['run', '-c', join(work, 'tunnel-client.yaml'), '--no-watch'])
  await waitStatus(`http://127.0.0.1:${listen}/`, 200)

  const targets = [
    { name: 'direct', port: originPort },
    { name: 'tunnel', port: listen },
  ]
  type Row = { p50: number; p99: number; rps: number; mbps: number; errors: number }
  const results = new Map<string, Row[]>()
  for (const t of targets) await tunnelWrk(t.port, 8)
  for (let r = 0; r < rounds; r++) {
    for (const t of targets) {
      const one = await tunnelWrk(t.port, 1)
      const many = await tunnelWrk(t.port, 64)
      const mbps = await upload(t.port, big)
      const row = { p50: one.p50, p99: one.p99, rps: many.rps, mbps, errors: one.errors + many.errors }
      results.set(t.name, [...(results.get(t.name) ?? []), row])
      console.log(
        `round ${r + 1} ${t.name}: 1 client p50 ${one.p50} ms p99 ${one.p99} ms; 64 clients ${many.rps.toFixed(0)} req/s; ${bodyMb} MB body ${mbps.toFixed(0)} MB/s; errors ${row.errors}`,
      )
    }
  }
  const med = (name: string, k: keyof Row) => median(results.get(name)!.map((x) => x[k]))
  const added = med('tunnel', 'p50') - med('direct', 'p50')
  const lines = [
    '# Tunnel benchmark (issue 5)',
    '',
    'Generated by `npm run bench` (bench/tunnel.ts). A sluice tunnel client and server on loopback (two',
    'mTLS HTTP/2 sessions, default windows 16 MiB / 32 MiB) against a direct connection to the same',
    `node:http origin. wrk -t1: 1 client for latency, 64 keep-alive clients for req/s; curl for one ${bodyMb} MB`,
    `request body. ${rounds} rounds × ${seconds}s, medians.`,
    `- date: ${new Date().toISOString()}`,
    '',
    '| metric | direct | tunnel | |',
    '|---|---:|---:|---|',
    `| p50 latency, 1 client (ms) | ${med('direct', 'p50').toFixed(3)} | ${med('tunnel', 'p50').toFixed(3)} | +${added.toFixed(3)} ms |`,
    `| p99 latency, 1 client (ms) | ${med('direct', 'p99').toFixed(3)} | ${med('tunnel', 'p99').toFixed(3)} | |`,
    `| req/s, 64 keep-alive clients | ${med('direct', 'rps').toFixed(0)} | ${med('tunnel', 'rps').toFixed(0)} | ${(med('tunnel', 'rps') / med('direct', 'rps')).toFixed(2)}× |`,
    `| ${bodyMb} MB request body (MB/s) | ${med('direct', 'mbps').toFixed(0)} | ${med('tunnel', 'mbps').toFixed(0)} | ${(med('tunnel', 'mbps') / med('direct', 'mbps')).toFixed(2)}× |`,
    `| errors | ${med('direct', 'errors')} | ${med('tunnel', 'errors')} | |`,
    '',
    '| goal | measured | |',
    '|---|---:|---|',
    `| added p50 ≤ 0.3 ms (warm session) | +${added.toFixed(3)} ms | ${added <= 0.3 ? 'met' : '**not met**'} |`,
    `| ≥ 300 MB/s for one large body | ${med('tunnel', 'mbps').toFixed(0)} MB/s | ${med('tunnel', 'mbps') >= 300 ? 'met' : '**not met**'} |`,
    '| 200 concurrent slow requests, no head-of-line stall | test D8 (200 × 1 s requests finish in < 3 s) | met |',
    '',
  ]
  writeFileSync(join(root, 'bench', 'RESULTS-TUNNEL.md'), lines.join('\n'))
  console.log(lines.join('\n'))
  origin.close()
  origin.closeAllConnections()
}

main()
  .catch((err) => {
    console.error(err)
    process.exitCode = 1
  })
  .finally(() => {
    for (const c of children) c.kill('SIGKILL')
  })
