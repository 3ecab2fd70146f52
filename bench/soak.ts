// npm run soak (issue 11): sluice under sustained churn, bounded in time, all on loopback. One sluice
// child process (`node dist/cli/main.js run -c FILE`, admin API on 127.0.0.1) carries four phases,
// each with its own budget:
//   1. reloads (targets alternate, a listen port comes and goes) while 64 keep-alive clients echo and
//      others open new connections: none refused or reset on the ports every config keeps;
//   2. faults added, changed and removed (native and Toxiproxy APIs) over 50 streaming connections:
//      no byte lost, duplicated or reordered (sha256 per connection), API latency kept apart from data;
//   3. short connections (clean close, RST, refused target): fds and RSS back to their baseline;
//   4. slowloris and header floods on an http app and a tunnel client front: slow clients cut at the
//      header timeout, fds bounded, a normal client served meanwhile.
// `--quick` (or SOAK_QUICK=1) scales everything down (about a minute); `--phases 1,3` runs a subset.
// Writes bench/SOAK.md (quick mode: bench/SOAK-quick.md, which is not committed); exits 1 when a
// goal is not met. Backends run as `sluice test serve` child processes; the clients run here.
import { type ChildProcess, spawn } from 'node:child_process'
import { createCipheriv, createHash } from 'node:crypto'
import { mkdirSync, readdirSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs'
import { Agent, request as httpRequest } from 'node:http'
import { connect, type Socket } from 'node:net'
import { cpus, release, totalmem } from 'node:os'
import { join, resolve } from 'node:path'
import { freePort } from '../src/testkit/ports.ts'
import { Latency } from '../src/testkit/stats.ts'
import { type Cert, makeCa, makeCert } from '../test/tls-certs.ts'
import { waitPort } from './wrk.ts'

const root = resolve(import.meta.dirname, '..')
const cli = join(root, 'dist', 'cli', 'main.js')
const work = join(root, 'bench', '.work', 'soak')
const quick = process.argv.includes('--quick') || process.env.SOAK_QUICK === '1'
/** `--phases 1,3` (or `--phases=1,3`): run only those phases. */
const only = new Set(
  (() => {
    const i = process.argv.findIndex((a) => a === '--phases' || a.startsWith('--phases='))
    if (i < 0) return []
    const v = process.argv[i]!.includes('=') ? process.argv[i]!.slice(9) : (process.argv[i + 1] ?? '')
    return v.split(',').filter(Boolean).map(Number)
  })(),
)
const runPhase = (n: number) => only.size === 0 || only.has(n)

/** Everything that scales between the quick and the full run. */
const M = quick
  ? {
      reloads: 10,
      keepAliveClients: 64,
      newConnWorkers: 8,
      reloadGapMs: 150,
      phase1BudgetMs: 30_000,
      faultOps: 50,
      streams: 50,
      streamBytes: [512 * 1024, 1024 * 1024] as const,
      churnWindowMs: 6_000,
      phase2BudgetMs: 40_000,
      shortConns: 5_000,
      shortConcurrency: 32,
      warmup: 500,
      settleMs: 3_000,
      phase3BudgetMs: 60_000,
      slowClients: 20,
      flooders: 2,
      attackMs: 10_000,
      phase4BudgetMs: 40_000,
      totalBudgetMs: 150_000,
    }
  : {
      reloads: 100,
      keepAliveClients: 64,
      newConnWorkers: 8,
      reloadGapMs: 250,
      phase1BudgetMs: 150_000,
      faultOps: 1_000,
      streams: 50,
      streamBytes: [2 * 1024 * 1024, 4 * 1024 * 1024] as const,
      churnWindowMs: 60_000,
      phase2BudgetMs: 180_000,
      shortConns: 100_000,
      shortConcurrency: 64,
      warmup: 2_000,
      settleMs: 10_000,
      phase3BudgetMs: 300_000,
      slowClients: 200,
      flooders: 4,
      attackMs: 60_000,
      phase4BudgetMs: 150_000,
      totalBudgetMs: 15 * 60_000,
    }
const HEADER_TIMEOUT_MS = 2_000
/** A slow client counts as cut at the header timeout when it is closed within this much after it. */
const CUT_GRACE_MS = 1_500

const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms))
const now = () => performance.now()
const addr = (port: number) => `127.0.0.1:${port}`
const fmtMs = (v: number) => `${v < 10 ? v.toFixed(2) : v.toFixed(1)} ms`
const pct = (a: number, b: number) => `${b ? (((a - b) / b) * 100).toFixed(1) : '0'} %`
const log = (s: string) => console.log(s)

function mulberry32(seed: number): () => number {
  let a = seed >>> 0
  return () => {
    a = (a + 0x6d2b79f5) >>> 0
    let t = a
    t = Math.imul(t ^ (t >>> 15), t | 1)
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61)
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296
  }
}

function bump(m: Record<string, number>, k: string, by = 1): void {
  m[k] = (m[k] ?? 0) + by
}
const sumOf = (m: Record<string, number>) => Object.values(m).reduce((a, b) => a + b, 0)
const listOf = (m: Record<string, number>) =>
  Object.keys(m).length
    ? Object.entries(m)
        .sort((a, b) => b[1] - a[1])
        .map(([k, v]) => `${k} ${v}`)
        .join(', ')
    : 'none'

// ---------------------------------------------------------------------------------------------
// Child processes: sluice and the fixture servers

const children: ChildProcess[] = []
let stopping = false
function killAll(): void {
  stopping = true
  for (const c of children) if (c.exitCode === null && c.signalCode === null) c.kill('SIGKILL')
}
process.on('exit', killAll)
process.on('SIGINT', () => process.exit(130))

/** A `sluice test serve KIND` backend on 127.0.0.1:port. */
async function serve(kind: 'echo' | 'ident' | 'http', port: number, name?: string): Promise<void> {
  const c = spawn(
    process.execPath,
    [cli, 'test', 'serve', kind, '--listen', addr(port), ...(name ? ['--name', name] : [])],
    { stdio: ['ignore', 'ignore', 'inherit'] },
  )
  children.push(c)
  c.on('exit', (code, sig) => {
    if (!stopping) console.error(`backend ${kind} ${name ?? ''} on ${port} exited (${code ?? sig})`)
  })
  await waitPort(port)
}

interface StatusApp {
  name: string
  activeConnections: number
  listeners: { address: string; activeConnections: number }[]
  targets: { address: string }[]
  faults: unknown[]
  sessions?: { up?: boolean }[]
}
interface Status {
  lastReload: { result: string; at: string; error?: string } | null
  apps: StatusApp[]
  draining: { address: string; app: string; activeConnections: number }[]
}

/** sluice as a child process: its JSON log lines counted by level and message, its /proc figures. */
class Sluice {
  readonly child: ChildProcess
  readonly pid: number
  admin = { host: '127.0.0.1', port: 0 }
  started = false
  exit: string | null = null
  readonly counts = new Map<string, number>()
  readonly tail: string[] = []
  #buf = ''

  constructor(file: string) {
    // The V8 flag bin/sluice.js's shebang passes, so sluice runs as users start it.
    this.child = spawn(
      process.execPath,
      [
        '--max-semi-space-size=4',
        cli,
        'run',
        '-c',
        file,
        '--admin',
        '127.0.0.1:0',
        '--log-format',
        'json',
        '--log-level',
        'info',
      ],
      { stdio: ['ignore', 'ignore', 'pipe'] },
    )
    children.push(this.child)
    this.pid = this.child.pid!
    this.child.stderr!.setEncoding('utf8').on('data', (d: string) => this.#lines(d))
    this.child.on('exit', (code, sig) => {
      this.exit = `exited ${code ?? sig}`
      if (!stopping) console.error(`sluice ${this.exit}; last log lines:\n${this.tail.join('\n')}`)
    })
  }

  #lines(d: string): void {
    this.#buf += d
    let nl = this.#buf.indexOf('\n')
    while (nl >= 0) {
      const line = this.#buf.slice(0, nl)
      this.#buf = this.#buf.slice(nl + 1)
      nl = this.#buf.indexOf('\n')
      this.tail.push(line.slice(0, 400))
      if (this.tail.length > 30) this.tail.shift()
      if (!line.startsWith('{')) continue
      try {
        const l = JSON.parse(line) as { level?: number; msg?: string; admin?: string }
        const level = l.level === undefined ? '?' : l.level >= 50 ? 'error' : l.level >= 40 ? 'warn' : 'info'
        const key = `${level} ${l.msg}`
        this.counts.set(key, (this.counts.get(key) ?? 0) + 1)
        if (typeof l.admin === 'string') {
          const i = l.admin.lastIndexOf(':')
          this.admin = { host: l.admin.slice(0, i), port: Number(l.admin.slice(i + 1)) }
        }
        if (String(l.msg).startsWith('sluice started')) this.started = true
      } catch {}
    }
  }

  async ready(timeoutMs = 15_000): Promise<void> {
    const deadline = now() + timeoutMs
    while (!(this.started && this.admin.port) && !this.exit && now() < deadline) await sleep(25)
    if (!this.started || !this.admin.port)
      throw new Error(`sluice did not start (${this.exit ?? 'timeout'}):\n${this.tail.join('\n')}`)
  }

  get alive(): boolean {
    return this.exit === null
  }

  /** Log line counts since `since` (a copy of `counts`), by "level message". */
  since(since: Map<string, number>): Record<string, number> {
    const out: Record<string, number> = {}
    for (const [k, v] of this.counts) if (v - (since.get(k) ?? 0) > 0) out[k] = v - (since.get(k) ?? 0)
    return out
  }

  fds(): number {
    return readdirSync(`/proc/${this.pid}/fd`).length
  }

  rssKiB(): number {
    const m = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${this.pid}/status`, 'utf8'))
    return m ? Number(m[1]) : 0
  }

  /** One admin API call; a new connection unless `agent` keeps one. */
  call(
    method: string,
    path: string,
    body?: unknown,
    agent?: Agent,
  ): Promise<{ status: number; text: string; ms: number }> {
    return new Promise((res, rej) => {
      const data = body === undefined ? null : Buffer.from(JSON.stringify(body))
      const t0 = now()
      const req = httpRequest(
        {
          ...this.admin,
          method,
          path,
          agent: agent ?? false,
          timeout: 10_000,
          headers: data ? { 'content-type': 'application/json', 'content-length': data.length } : {},
        },
        (r) => {
          const chunks: Buffer[] = []
          r.on('data', (c: Buffer) => chunks.push(c))
          r.on('end', () =>
            res({ status: r.statusCode ?? 0, text: Buffer.concat(chunks).toString(), ms: now() - t0 }),
          )
          r.on('error', rej)
        },
      )
      req.on('timeout', () => req.destroy(new Error(`admin ${method} ${path} timed out`)))
      req.on('error', rej)
      req.end(data ?? undefined)
    })
  }

  async status(): Promise<Status> {
    const r = await this.call('GET', '/status')
    return JSON.parse(r.text) as Status
  }

  /** V8 heap used and total (MiB), from the standard metrics. */
  async heap(): Promise<{ used: number; total: number }> {
    const m = (await this.call('GET', '/metrics')).text
    const g = (n: string) => Number(new RegExp(`^${n} (\\S+)`, 'm').exec(m)?.[1] ?? Number.NaN) / 2 ** 20
    return { used: g('nodejs_heap_size_used_bytes'), total: g('nodejs_heap_size_total_bytes') }
  }

  /** fds and RSS once settled: the least of `n` samples `everyMs` apart (no forced GC). */
  async settled(n = 5, everyMs = 500): Promise<{ fds: number; rss: number }> {
    let fds = Number.POSITIVE_INFINITY
    let rss = Number.POSITIVE_INFINITY
    for (let i = 0; i < n; i++) {
      if (i) await sleep(everyMs)
      fds = Math.min(fds, this.fds())
      rss = Math.min(rss, this.rssKiB())
    }
    return { fds, rss }
  }
}

// ---------------------------------------------------------------------------------------------
// Client sockets

/** A socket with buffered reads: wait for a condition with a deadline; its first failure is kept. */
class Conn {
  readonly s: Socket
  buf: Buffer = Buffer.alloc(0)
  failure: string | null = null
  ended = false
  closed = false
  drains = 0
  #wake: (() => void) | null = null

  constructor(s: Socket) {
    this.s = s
    s.on('data', (d: Buffer) => {
      this.buf = this.buf.length ? Buffer.concat([this.buf, d]) : d
      this.#notify()
    })
    s.on('end', () => {
      this.ended = true
      this.#notify()
    })
    s.on('error', (e: NodeJS.ErrnoException) => {
      this.failure ??= e.code ?? e.message
      this.#notify()
    })
    s.on('close', () => {
      this.closed = true
      this.#notify()
    })
    s.on('drain', () => {
      this.drains++
      this.#notify()
    })
  }

  get done(): boolean {
    return this.failure !== null || this.ended || this.closed
  }

  /** Resolves true once `cond()` holds, false on the deadline or when the socket ends or fails first. */
  async until(cond: () => boolean, timeoutMs: number): Promise<boolean> {
    const deadline = now() + timeoutMs
    while (!cond()) {
      if (this.done) return cond()
      const left = deadline - now()
      if (left <= 0) return false
      await new Promise<void>((r) => {
        const t = setTimeout(r, left)
        this.#wake = () => {
          clearTimeout(t)
          r()
        }
      })
      this.#wake = null
    }
    return true
  }

  #notify(): void {
    const w = this.#wake
    this.#wake = null
    w?.()
  }

  take(n: number): Buffer {
    const out = this.buf.subarray(0, n)
    this.buf = this.buf.subarray(n)
    return out
  }

  /** Why it is over: the socket error, or how it ended. */
  get why(): string {
    return this.failure ?? (this.ended ? 'closed by the peer' : this.closed ? 'closed' : 'timeout')
  }
}

function open(port: number, timeoutMs = 5000): Promise<Conn> {
  return new Promise((res, rej) => {
    const s = connect({ host: '127.0.0.1', port, noDelay: true })
    const c = new Conn(s)
    const t = setTimeout(() => {
      s.destroy()
      rej(Object.assign(new Error('connect timeout'), { code: 'ETIMEDOUT' }))
    }, timeoutMs)
    s.once('connect', () => {
      clearTimeout(t)
      res(c)
    })
    s.once('error', (e) => {
      clearTimeout(t)
      rej(e)
    })
  })
}

const codeOf = (e: unknown) => (e as NodeJS.ErrnoException).code ?? (e as Error).message

/** refused / reset / other, for counting failures on a kept port. */
function kindOf(code: string): 'refused' | 'reset' | 'other' {
  if (code === 'ECONNREFUSED') return 'refused'
  if (code === 'ECONNRESET' || code === 'EPIPE') return 'reset'
  return 'other'
}

/** GET / through an HTTP front; status and body. */
function httpGet(
  port: number,
  agent: Agent | false,
  timeoutMs = 5000,
): Promise<{ status: number; body: string }> {
  return new Promise((res, rej) => {
    const req = httpRequest(
      {
        host: '127.0.0.1',
        port,
        path: '/',
        agent,
        timeout: timeoutMs,
        headers: agent ? {} : { connection: 'close' },
      },
      (r) => {
        let body = ''
        r.setEncoding('utf8')
        r.on('data', (d: string) => (body += d))
        r.on('end', () => res({ status: r.statusCode ?? 0, body }))
        r.on('error', rej)
      },
    )
    req.on('timeout', () => req.destroy(Object.assign(new Error('request timeout'), { code: 'ETIMEDOUT' })))
    req.on('error', rej)
    req.end()
  })
}

// ---------------------------------------------------------------------------------------------
// Set-up: ports, backends, certificates, the config file

interface Row {
  measure: string
  value: string
  goal?: string
  met?: boolean
}
interface PhaseResult {
  n: number
  title: string
  load: string
  rows: Row[]
  ms: number
  error?: string
}
const passed = (p: PhaseResult) => !p.error && p.rows.every((r) => r.met !== false)

interface Env {
  sluice: Sluice
  file: string
  ports: {
    kept: number[]
    churn: number
    identA: number
    identB: number
    faults: number
    echo: number
    short: number[]
    refused: number
    dead: number
    web: number
    origin: number
    tsrv: number
    tcli: number
  }
  ca: Cert
  client: Cert
  server: Cert
  /** The reload generation written last. */
  gen: number
}

function configDoc(env: Env, gen: number): object {
  const p = env.ports
  const tls = (c: Cert) => ({ ca: env.ca.cert, cert: c.cert, key: c.key })
  return {
    log: { level: 'info' },
    drain_timeout: '5s',
    apps: [
      {
        name: 'reload',
        listen: [...p.kept, ...(gen % 2 ? [p.churn] : [])].map(addr),
        targets: [addr(gen % 2 ? p.identB : p.identA)],
      },
      { name: 'faults', listen: [addr(p.faults)], targets: [addr(p.echo)] },
      { name: 'short', listen: p.short.map(addr), targets: [addr(p.echo)] },
      { name: 'refused', listen: [addr(p.refused)], targets: [addr(p.dead)] },
      {
        name: 'web',
        kind: 'http',
        listen: [addr(p.web)],
        destination: `http://${addr(p.origin)}`,
        timeouts: { header: `${HEADER_TIMEOUT_MS}ms` },
      },
      {
        name: 'tsrv',
        kind: 'tunnel',
        mode: 'server',
        listen: [addr(p.tsrv)],
        origin: addr(p.origin),
        peer_hostname: 'foo.example.org',
        tls: tls(env.server),
      },
      {
        name: 'tcli',
        kind: 'tunnel',
        mode: 'client',
        listen: [addr(p.tcli)],
        peer: addr(p.tsrv),
        peer_hostname: 'bar.example.org',
        tls: tls(env.client),
        timeouts: { header: `${HEADER_TIMEOUT_MS}ms` },
      },
    ],
  }
}

/** Replace the config file at once (write then rename, as editors save), as generation `gen`. */
function writeConfig(env: Env, gen: number): void {
  const tmp = `${env.file}.tmp`
  writeFileSync(tmp, `${JSON.stringify(configDoc(env, gen), null, 1)}\n`)
  renameSync(tmp, env.file)
  env.gen = gen
}

async function setup(): Promise<Env> {
  rmSync(work, { recursive: true, force: true })
  mkdirSync(work, { recursive: true })
  const ca = makeCa(work, 'soak-ca')
  const client = makeCert(work, ca, 'soak-client', {
    cn: 'foo.example.org',
    dns: ['foo.example.org'],
    client: true,
  })
  const server = makeCert(work, ca, 'soak-server', { cn: 'bar.example.org', dns: ['bar.example.org'] })
  const fp = freePort
  const ports = {
    kept: [await fp(), await fp()],
    churn: await fp(),
    identA: await fp(),
    identB: await fp(),
    faults: await fp(),
    echo: await fp(),
    short: [await fp(), await fp(), await fp(), await fp()],
    refused: await fp(),
    dead: await fp(),
    web: await fp(),
    origin: await fp(),
    tsrv: await fp(),
    tcli: await fp(),
  }
  await Promise.all([
    serve('ident', ports.identA, 'A'),
    serve('ident', ports.identB, 'B'),
    serve('echo', ports.echo),
    serve('http', ports.origin, 'origin'),
  ])
  const env: Env = {
    sluice: null as unknown as Sluice,
    file: join(work, 'sluice.json'),
    ports,
    ca,
    client,
    server,
    gen: 0,
  }
  writeConfig(env, 0)
  env.sluice = new Sluice(env.file)
  await env.sluice.ready()
  return env
}

// ---------------------------------------------------------------------------------------------
// Phase 1: reloads under traffic

async function phase1(env: Env): Promise<PhaseResult> {
  const { sluice, ports } = env
  const t0 = now()
  const deadline = t0 + M.phase1BudgetMs
  const logs0 = new Map(sluice.counts)
  const stop = { done: false }
  const name = (gen: number) => (gen % 2 ? 'B' : 'A')
  // What new connections may expect: the generation in force, or null while a reload is in flux.
  const state = { gen: env.gen as number | null }

  const ka = {
    established: 0,
    rounds: 0,
    broken: {} as Record<string, number>,
    connectFail: {} as Record<string, number>,
  }
  const keepAlive = async (id: number): Promise<void> => {
    const port = ports.kept[id % ports.kept.length]!
    let c: Conn
    try {
      c = await open(port)
    } catch (e) {
      bump(ka.connectFail, codeOf(e))
      return
    }
    if (!(await c.until(() => c.buf.includes(10), 5000))) {
      bump(ka.broken, `no greeting: ${c.why}`)
      c.s.destroy()
      return
    }
    c.take(c.buf.indexOf(10) + 1)
    ka.established++
    const rng = mulberry32(1000 + id)
    let seq = 0
    while (!stop.done) {
      const len = 16 + Math.floor(rng() * 500)
      const head = `${id}:${seq++}:`
      const msg = Buffer.from(head.padEnd(len, String.fromCharCode(97 + (seq % 26))))
      c.s.write(msg)
      if (!(await c.until(() => c.buf.length >= msg.length, 5000))) {
        bump(ka.broken, c.why)
        break
      }
      if (!c.take(msg.length).equals(msg)) {
        bump(ka.broken, 'wrong echo')
        break
      }
      ka.rounds++
      await sleep(10)
    }
    c.s.destroy()
  }

  const nc = {
    attempts: 0,
    ok: 0,
    refused: 0,
    reset: 0,
    other: {} as Record<string, number>,
    byTarget: {} as Record<string, number>,
    stale: 0,
  }
  const newConns = async (id: number): Promise<void> => {
    let n = 0
    while (!stop.done) {
      const port = ports.kept[(id + n++) % ports.kept.length]!
      const gen = state.gen
      nc.attempts++
      let c: Conn
      try {
        c = await open(port)
      } catch (e) {
        const k = kindOf(codeOf(e))
        if (k === 'other') bump(nc.other, `connect: ${codeOf(e)}`)
        else nc[k]++
        continue
      }
      const fail = (what: string) => {
        const k = kindOf(c.why)
        if (k === 'other') bump(nc.other, `${what}: ${c.why}`)
        else nc[k]++
        c.s.destroy()
      }
      if (!(await c.until(() => c.buf.includes(10), 5000))) {
        fail('greeting')
        continue
      }
      const target = c
        .take(c.buf.indexOf(10) + 1)
        .toString()
        .trim()
      bump(nc.byTarget, target)
      if (gen !== null && gen === state.gen && target !== name(gen)) nc.stale++
      const msg = Buffer.from(`hello ${id} ${n}\n`)
      c.s.write(msg)
      if (!(await c.until(() => c.buf.length >= msg.length, 5000))) {
        fail('echo')
        continue
      }
      if (!c.take(msg.length).equals(msg)) {
        bump(nc.other, 'wrong echo')
        c.s.destroy()
        continue
      }
      c.s.end()
      await c.until(() => c.closed, 2000)
      c.s.destroy()
      nc.ok++
      await sleep(5)
    }
  }

  const churn = { accepted: 0, refused: 0, other: {} as Record<string, number> }
  const churnPort = async (): Promise<void> => {
    while (!stop.done) {
      try {
        const c = await open(ports.churn, 2000)
        churn.accepted++
        c.s.destroy()
      } catch (e) {
        if (codeOf(e) === 'ECONNREFUSED') churn.refused++
        else bump(churn.other, codeOf(e))
      }
      await sleep(20)
    }
  }

  log(
    `phase 1: ${M.keepAliveClients} keep-alive clients, ${M.newConnWorkers} new-connection loops, ${M.reloads} reloads`,
  )
  const kaDone = Promise.all(Array.from({ length: M.keepAliveClients }, (_, i) => keepAlive(i)))
  const waitStart = now()
  while (
    ka.established + sumOf(ka.broken) + sumOf(ka.connectFail) < M.keepAliveClients &&
    now() - waitStart < 10_000
  )
    await sleep(20)
  const loops = Promise.all([...Array.from({ length: M.newConnWorkers }, (_, i) => newConns(i)), churnPort()])

  const applyMs = new Latency()
  let applied = 0
  let statusErrors = 0
  for (let k = 1; k <= M.reloads && now() < deadline && sluice.alive; k++) {
    const gen = env.gen + 1
    state.gen = null
    const w0 = now()
    writeConfig(env, gen)
    const listen = [...ports.kept, ...(gen % 2 ? [ports.churn] : [])].map(addr).sort().join(',')
    const target = addr(gen % 2 ? ports.identB : ports.identA)
    let seen = false
    while (now() - w0 < 5000 && sluice.alive) {
      try {
        const st = await sluice.status()
        const app = st.apps.find((a) => a.name === 'reload')
        if (
          app &&
          app.listeners
            .map((l) => l.address)
            .sort()
            .join(',') === listen &&
          app.targets.map((t) => t.address).join(',') === target
        ) {
          seen = true
          break
        }
      } catch {
        statusErrors++
      }
      await sleep(20)
    }
    if (seen) {
      applied++
      applyMs.record(now() - w0)
    }
    state.gen = gen
    if (k % Math.max(1, Math.round(M.reloads / 10)) === 0)
      log(
        `  reload ${k}/${M.reloads}: applied ${applied}; keep-alive rounds ${ka.rounds}, new connections ${nc.ok} ok / ${nc.refused} refused / ${nc.reset} reset`,
      )
    await sleep(M.reloadGapMs)
  }
  await sleep(500)
  stop.done = true
  await Promise.race([Promise.all([kaDone, loops]), sleep(10_000)])
  const logs = sluice.since(logs0)
  const reloadedLines = logs['info config reloaded'] ?? 0
  const rejected = logs['error config rejected; the running config stays in force'] ?? 0
  const a = applyMs.summary()
  const kaBroken = sumOf(ka.broken) + sumOf(ka.connectFail)
  const otherFail = sumOf(nc.other)
  const rows: Row[] = [
    {
      measure: 'reloads applied (seen in /status within 5 s of the write)',
      value: `${applied}/${M.reloads}`,
      goal: `${M.reloads}/${M.reloads}`,
      met: applied === M.reloads,
    },
    {
      measure: 'time from the write to /status showing it: p50 / p99 / max',
      value: `${fmtMs(a.p50)} / ${fmtMs(a.p99)} / ${fmtMs(a.max)}`,
    },
    {
      measure: '"config reloaded" log lines',
      value: String(reloadedLines),
      goal: String(M.reloads),
      met: reloadedLines === M.reloads,
    },
    { measure: 'reloads rejected', value: String(rejected), goal: '0', met: rejected === 0 },
    {
      measure: `keep-alive clients (kept ports) broken: reset, closed, wrong echo, timeout`,
      value: `${kaBroken}/${M.keepAliveClients}${kaBroken ? ` (${listOf({ ...ka.broken, ...ka.connectFail })})` : ''}`,
      goal: '0',
      met: kaBroken === 0 && ka.established === M.keepAliveClients,
    },
    { measure: 'keep-alive echo rounds completed', value: String(ka.rounds) },
    { measure: 'new connections to kept ports', value: `${nc.attempts} (${nc.ok} echoed)` },
    {
      measure: 'new connections to kept ports refused',
      value: String(nc.refused),
      goal: '0',
      met: nc.refused === 0,
    },
    {
      measure: 'new connections to kept ports reset',
      value: String(nc.reset),
      goal: '0',
      met: nc.reset === 0,
    },
    {
      measure: 'new connections, other failures (timeout, early close, wrong echo)',
      value: otherFail ? `${otherFail} (${listOf(nc.other)})` : '0',
      goal: '0',
      met: otherFail === 0,
    },
    { measure: 'new connections per target (targets alternate A/B each reload)', value: listOf(nc.byTarget) },
    {
      measure: 'new connections reaching the previous target after /status showed the new one',
      value: String(nc.stale),
    },
    {
      measure: 'the port that comes and goes: connections accepted / refused',
      value: `${churn.accepted} / ${churn.refused}${sumOf(churn.other) ? `; other: ${listOf(churn.other)}` : ''}`,
    },
  ]
  if (statusErrors) rows.push({ measure: '/status calls that failed', value: String(statusErrors) })
  return {
    n: 1,
    title: 'Reloads under traffic',
    load: `${M.reloads} reloads (config rewritten by rename; targets alternate between two ident backends; a third listen port added and removed every other reload), ${M.reloadGapMs} ms apart after each is seen in /status; meanwhile ${M.keepAliveClients} keep-alive clients on the 2 kept ports echo 16–515 byte messages (10 ms pause per round), ${M.newConnWorkers} loops open new connections (greeting, echo, close) to the kept ports, and one loop connects to the coming-and-going port every 20 ms.`,
    rows,
    ms: now() - t0,
  }
}

// ---------------------------------------------------------------------------------------------
// Phase 2: fault churn over streaming connections

const ZERO = Buffer.alloc(1 << 20)

/** A seeded pseudo-random byte stream (AES-128-CTR keystream): the same bytes however it is cut. */
function keystream(seed: number): (n: number) => Buffer {
  const key = createHash('sha256').update(`sluice-soak-${seed}`).digest().subarray(0, 16)
  const c = createCipheriv('aes-128-ctr', key, Buffer.alloc(16))
  return (n: number) => {
    if (n <= ZERO.length) return c.update(ZERO.subarray(0, n))
    const parts: Buffer[] = []
    for (let off = 0; off < n; off += ZERO.length)
      parts.push(c.update(ZERO.subarray(0, Math.min(ZERO.length, n - off))))
    return Buffer.concat(parts)
  }
}

interface StreamResult {
  size: number
  sent: number
  received: number
  sentHash: string
  receivedHash: string
  firstMismatch: number | null
  error: string | null
  done: boolean
}

/** Send `size` seeded bytes through `port` (an echo behind), paced over `windowMs`; check what comes back. */
function stream(
  port: number,
  seed: number,
  size: number,
  windowMs: number,
  deadline: number,
): Promise<StreamResult> {
  return new Promise((res) => {
    const rng = mulberry32(seed)
    const gen = keystream(seed)
    const expect = keystream(seed)
    const sentHash = createHash('sha256')
    const recvHash = createHash('sha256')
    const r: StreamResult = {
      size,
      sent: 0,
      received: 0,
      sentHash: '',
      receivedHash: '',
      firstMismatch: null,
      error: null,
      done: false,
    }
    const s = connect({ host: '127.0.0.1', port, noDelay: true })
    let t0 = 0
    let finished = false
    const finish = (error: string | null) => {
      if (finished) return
      finished = true
      clearTimeout(guard)
      r.error = error
      r.sentHash = sentHash.digest('hex')
      r.receivedHash = recvHash.digest('hex')
      s.destroy()
      res(r)
    }
    const guard = setTimeout(() => finish('not finished by the deadline'), Math.max(0, deadline - now()))
    const tick = () => {
      if (finished) return
      const allowed = Math.min(size, Math.ceil((size * (now() - t0)) / windowMs))
      while (r.sent < allowed) {
        const n = Math.min(allowed - r.sent, 8192 + Math.floor(rng() * 56 * 1024))
        const data = gen(n)
        sentHash.update(data)
        r.sent += n
        if (!s.write(data)) {
          s.once('drain', tick)
          return
        }
      }
      if (r.sent >= size) s.end()
      else setTimeout(tick, 20)
    }
    s.on('connect', () => {
      t0 = now()
      tick()
    })
    s.on('data', (d: Buffer) => {
      recvHash.update(d)
      if (r.firstMismatch === null) {
        const exp = expect(d.length)
        if (!exp.equals(d)) {
          let i = 0
          while (i < d.length && d[i] === exp[i]) i++
          r.firstMismatch = r.received + i
        }
      }
      r.received += d.length
    })
    s.on('end', () => {
      r.done = true
      finish(null)
    })
    s.on('error', (e: NodeJS.ErrnoException) => finish(e.code ?? e.message))
    s.on('close', () => finish('closed before the end of the echo'))
  })
}

type Api = 'native' | 'toxiproxy'
type FaultType = 'latency' | 'jitter' | 'bandwidth' | 'slicer'
interface LiveFault {
  name: string
  api: Api
  type: FaultType
}

/** Fault fields in the native format (`withType`: for a POST). Latency faults hold data 100–300 ms. */
function nativeFields(type: FaultType, rng: () => number, withType: boolean): Record<string, unknown> {
  const dirs = ['to-client', 'to-upstream', 'both']
  const f: Record<string, unknown> = withType ? { type } : {}
  if (withType || rng() < 0.2) f.direction = dirs[Math.floor(rng() * 3)]
  if (rng() < 0.2) f.probability = Math.round(rng() * 100) / 100
  if (type === 'latency') {
    f.latency = `${100 + Math.floor(rng() * 200)}ms`
    f.jitter = `${Math.floor(rng() * 20)}ms`
  } else if (type === 'jitter') {
    f.amplitude = `${5 + Math.floor(rng() * 25)}ms`
    f.frequency = rng() < 0.5 ? 1 : 0.5
  } else if (type === 'bandwidth') f.rate = 1_000_000 + Math.floor(rng() * 15_000_000)
  else {
    f.average_size = 512 + Math.floor(rng() * 7680)
    f.size_variation = Math.floor(rng() * 256)
    f.delay = rng() < 0.5 ? 0 : '100us'
  }
  return f
}

/** The same in Toxiproxy's toxic attributes (ms, KB/s, µs). */
function toxicAttributes(type: FaultType, rng: () => number): Record<string, unknown> {
  if (type === 'latency') return { latency: 100 + Math.floor(rng() * 200), jitter: Math.floor(rng() * 20) }
  if (type === 'jitter') return { amplitude: 5 + Math.floor(rng() * 25), frequency: rng() < 0.5 ? 1 : 0.5 }
  if (type === 'bandwidth') return { rate: 1000 + Math.floor(rng() * 15_000) }
  return {
    average_size: 512 + Math.floor(rng() * 7680),
    size_variation: Math.floor(rng() * 256),
    delay: rng() < 0.5 ? 0 : 100,
  }
}

async function phase2(env: Env): Promise<PhaseResult> {
  const { sluice, ports } = env
  const t0 = now()
  const deadline = t0 + M.phase2BudgetMs
  const rng = mulberry32(42)
  const sizes = Array.from(
    { length: M.streams },
    () => M.streamBytes[0] + Math.floor(rng() * (M.streamBytes[1] - M.streamBytes[0])),
  )
  log(
    `phase 2: ${M.streams} streams (${(sizes.reduce((a, b) => a + b, 0) / 1e6).toFixed(0)} MB in all) paced over ${M.churnWindowMs / 1000}s, ${M.faultOps} fault changes`,
  )
  const streams = Promise.all(
    sizes.map((size, i) => stream(ports.faults, 7000 + i, size, M.churnWindowMs, deadline)),
  )
  const agent = new Agent({ keepAlive: true, maxSockets: 1 })
  const lat = { all: new Latency(), native: new Latency(), toxiproxy: new Latency() }
  const ops: Record<string, number> = {}
  const unexpected: Record<string, number> = {}
  const live: LiveFault[] = []
  const types: FaultType[] = ['latency', 'jitter', 'bandwidth', 'slicer']
  let serial = 0
  const gap = M.churnWindowMs / M.faultOps
  const c0 = now()
  for (let i = 0; i < M.faultOps && now() < deadline && sluice.alive; i++) {
    const due = c0 + i * gap
    if (due > now()) await sleep(due - now())
    const left = M.faultOps - i
    const roll = rng()
    // Never fewer changes left than faults in force, so the last ones remove whatever is left.
    let action: 'add' | 'change' | 'remove'
    if (left <= live.length) action = 'remove'
    else if (live.length === 0) action = 'add'
    else if (left === live.length + 1) action = 'change'
    else if (live.length >= 4) action = roll < 0.6 ? 'change' : 'remove'
    else action = roll < 0.4 ? 'add' : roll < 0.75 ? 'change' : 'remove'
    let api: Api
    let method: string
    let path: string
    let body: unknown
    let want: number
    if (action === 'add') {
      const type = types[Math.floor(rng() * types.length)]!
      // Adds alternate between the two APIs; a fault is changed and removed through the one that added it.
      api = serial % 2 === 0 ? 'native' : 'toxiproxy'
      const name = `${api === 'native' ? 'n' : 't'}${++serial}-${type}`
      live.push({ name, api, type })
      if (api === 'native') {
        ;[method, path, body, want] = [
          'POST',
          '/apps/faults/faults',
          { name, ...nativeFields(type, rng, true) },
          201,
        ]
      } else {
        const toxicity = rng() < 0.2 ? Math.round(rng() * 100) / 100 : 1
        ;[method, path, want] = ['POST', '/proxies/faults/toxics', 200]
        body = {
          name,
          type,
          stream: rng() < 0.5 ? 'upstream' : 'downstream',
          toxicity,
          attributes: toxicAttributes(type, rng),
        }
      }
    } else {
      const idx = Math.floor(rng() * live.length)
      const f = live[idx]!
      api = f.api
      if (action === 'change') {
        if (api === 'native')
          [method, path, body, want] = [
            'PATCH',
            `/apps/faults/faults/${f.name}`,
            nativeFields(f.type, rng, false),
            200,
          ]
        else
          [method, path, body, want] = [
            'PATCH',
            `/proxies/faults/toxics/${f.name}`,
            {
              attributes: toxicAttributes(f.type, rng),
              ...(rng() < 0.2 ? { toxicity: Math.round(rng() * 100) / 100 } : {}),
            },
            200,
          ]
      } else {
        live.splice(idx, 1)
        ;[method, path, body, want] = [
          'DELETE',
          api === 'native' ? `/apps/faults/faults/${f.name}` : `/proxies/faults/toxics/${f.name}`,
          undefined,
          204,
        ]
      }
    }
    bump(ops, `${action} (${api})`)
    try {
      const r = await sluice.call(method, path, body, agent)
      lat.all.record(r.ms)
      lat[api].record(r.ms)
      if (r.status !== want) bump(unexpected, `${method} ${r.status}: ${r.text.slice(0, 120)}`)
    } catch (e) {
      bump(unexpected, `${method}: ${codeOf(e)}`)
    }
    if ((i + 1) % Math.max(1, Math.round(M.faultOps / 10)) === 0)
      log(
        `  fault change ${i + 1}/${M.faultOps}: p99 ${fmtMs(lat.all.percentile(99))}, ${live.length} in force`,
      )
  }
  const opsDone = sumOf(ops)
  // What is left in force (the churn ends by removing every fault it added).
  let leftOver = -1
  let fired = 0
  try {
    const r = await sluice.call('GET', '/apps/faults/faults', undefined, agent)
    leftOver = (JSON.parse(r.text) as { faults: unknown[] }).faults.length
    const m = await sluice.call('GET', '/metrics', undefined, agent)
    for (const line of m.text.split('\n'))
      if (line.startsWith('sluice_faults_applied_total{') && line.includes('app="faults"'))
        fired += Number(line.slice(line.lastIndexOf(' ') + 1))
  } catch {}
  agent.destroy()
  log('  waiting for the streams to finish')
  const results = await streams
  let lost = 0
  let duplicated = 0
  let mismatched = 0
  let incomplete = 0
  let checked = 0
  const errors: Record<string, number> = {}
  const mismatches: string[] = []
  results.forEach((r, i) => {
    checked += r.received
    if (!r.done) {
      incomplete++
      bump(errors, r.error ?? 'unfinished')
    }
    if (r.received < r.sent) lost += r.sent - r.received
    if (r.received > r.sent) duplicated += r.received - r.sent
    if (r.sentHash !== r.receivedHash) {
      mismatched++
      if (mismatches.length < 5)
        mismatches.push(
          `#${i}: sent ${r.sent}, got ${r.received}, first difference at ${r.firstMismatch ?? (r.received < r.sent ? r.received : 'none')}`,
        )
    }
  })
  const s = lat.all.summary()
  const n = lat.native.summary()
  const t = lat.toxiproxy.summary()
  const total = results.reduce((a, r) => a + r.sent, 0)
  const rows: Row[] = [
    {
      measure: 'fault changes made (add / change / remove)',
      value: `${opsDone}: ${listOf(ops)}`,
      goal: String(M.faultOps),
      met: opsDone === M.faultOps,
    },
    {
      measure: 'API calls answered otherwise than expected (201/200/204)',
      value: sumOf(unexpected) ? `${sumOf(unexpected)}: ${listOf(unexpected)}` : '0',
      goal: '0',
      met: sumOf(unexpected) === 0,
    },
    {
      measure: 'faults left in force after the churn',
      value: String(leftOver),
      goal: '0',
      met: leftOver === 0,
    },
    { measure: 'times the faults acted (sluice_faults_applied_total)', value: String(fired) },
    {
      measure: 'streams finished (echo complete, then EOF)',
      value: `${M.streams - incomplete}/${M.streams}${incomplete ? ` (${listOf(errors)})` : ''}`,
      goal: `${M.streams}/${M.streams}`,
      met: incomplete === 0,
    },
    { measure: 'bytes sent / bytes checked on return', value: `${total} / ${checked}` },
    {
      measure: 'streams whose sha256 differs (lost, duplicated or reordered)',
      value: mismatched ? `${mismatched}: ${mismatches.join('; ')}` : '0',
      goal: '0',
      met: mismatched === 0,
    },
    {
      measure: 'bytes lost / duplicated',
      value: `${lost} / ${duplicated}`,
      goal: '0 / 0',
      met: lost === 0 && duplicated === 0,
    },
    {
      measure: 'API call latency, all: p50 / p99 / max',
      value: `${fmtMs(s.p50)} / ${fmtMs(s.p99)} / ${fmtMs(s.max)}`,
      goal: 'p99 < 50 ms, max < 100 ms (the least hold of a latency fault)',
      met: s.count > 0 && s.p99 < 50 && s.max < 100,
    },
    {
      measure: 'API call latency, native: p50 / p99 / max',
      value: `${fmtMs(n.p50)} / ${fmtMs(n.p99)} / ${fmtMs(n.max)} (${n.count} calls)`,
    },
    {
      measure: 'API call latency, Toxiproxy: p50 / p99 / max',
      value: `${fmtMs(t.p50)} / ${fmtMs(t.p99)} / ${fmtMs(t.max)} (${t.count} calls)`,
    },
  ]
  return {
    n: 2,
    title: 'Fault churn over streaming connections',
    load: `${M.streams} connections through a tcp app to an echo backend, each sending a seeded pseudo-random stream of ${M.streamBytes[0] / 1048576}–${M.streamBytes[1] / 1048576} MiB (AES-CTR keystream, chunks of 8–64 KiB) paced over ${M.churnWindowMs / 1000} s, then a half-close; meanwhile ${M.faultOps} fault changes, one at a time, evenly over the same ${M.churnWindowMs / 1000} s, half through the native API and half through the Toxiproxy API (one keep-alive admin connection): latency 100–300 ms ± up to 20 ms, jitter 5–30 ms, bandwidth 1–16 MB/s, slicer 0.5–8 KiB pieces; random directions, sometimes a probability below 1; at most 4 in force; the last changes remove what is left.`,
    rows,
    ms: now() - t0,
  }
}

// ---------------------------------------------------------------------------------------------
// Phase 3: short connections, fds and RSS

async function phase3(env: Env): Promise<PhaseResult> {
  const { sluice, ports } = env
  const t0 = now()
  const deadline = t0 + M.phase3BudgetMs
  const out = {
    clean: { ok: 0, fail: {} as Record<string, number> },
    rst: { ok: 0, fail: {} as Record<string, number> },
    refused: { ok: 0, fail: {} as Record<string, number> },
  }
  const payload = Buffer.from('0123456789abcdef0123456789abcdef')
  const one = async (i: number): Promise<void> => {
    const kind = i % 3 === 0 ? 'clean' : i % 3 === 1 ? 'rst' : 'refused'
    const port = kind === 'refused' ? ports.refused : ports.short[i % ports.short.length]!
    let c: Conn
    try {
      c = await open(port)
    } catch (e) {
      // sluice accepts, finds no target and resets: the reset can beat the connect event.
      if (kind === 'refused' && codeOf(e) === 'ECONNRESET') out.refused.ok++
      else bump(out[kind].fail, `connect ${codeOf(e)}`)
      return
    }
    if (kind === 'clean') {
      c.s.write(payload)
      const ok = await c.until(() => c.buf.length >= payload.length, 5000)
      if (!ok || !c.buf.subarray(0, payload.length).equals(payload)) {
        bump(out.clean.fail, ok ? 'wrong echo' : c.why)
        c.s.destroy()
        return
      }
      c.s.end()
      const closed = await c.until(() => c.ended, 5000)
      c.s.destroy()
      if (closed) out.clean.ok++
      else bump(out.clean.fail, `close: ${c.why}`)
    } else if (kind === 'rst') {
      c.s.write(payload)
      // Half reset at once, half after the echo came back.
      if (i % 2 === 0 && !(await c.until(() => c.buf.length >= payload.length, 5000))) {
        bump(out.rst.fail, c.why)
        c.s.destroy()
        return
      }
      c.s.resetAndDestroy()
      out.rst.ok++
    } else {
      c.s.write('refused?')
      // sluice accepts, finds no target, resets the client: nothing may come back.
      const over = await c.until(() => false, 5000).then(() => c.done)
      if (over && c.buf.length === 0) out.refused.ok++
      else bump(out.refused.fail, c.buf.length ? 'data came back' : 'not closed within 5 s')
      c.s.destroy()
    }
  }
  let mid: number | null = null
  const runMany = async (from: number, count: number, conc: number, progress: boolean) => {
    let next = from
    const end = from + count
    let lastLog = now()
    const started = now()
    await Promise.all(
      Array.from({ length: conc }, async () => {
        while (next < end && now() < deadline && sluice.alive) {
          await one(next++)
          if (progress && mid === null && next - from >= count / 2) mid = sluice.rssKiB()
          if (progress && now() - lastLog > 5000) {
            lastLog = now()
            const done = next - from
            log(
              `  ${done}/${count} connections, ${Math.round(done / ((now() - started) / 1000))}/s; sluice fds ${sluice.fds()}, RSS ${(sluice.rssKiB() / 1024).toFixed(1)} MiB`,
            )
          }
        }
      }),
    )
    return Math.min(next, end) - from
  }
  log(
    `phase 3: ${M.shortConns} short connections (clean / RST / refused target), ${M.shortConcurrency} at a time`,
  )
  const atStart = await sluice.settled(3, 300)
  await runMany(0, M.warmup, M.shortConcurrency, false)
  await sleep(2000)
  const before = await sluice.settled()
  const heapBefore = await sluice.heap().catch(() => ({ used: Number.NaN, total: Number.NaN }))
  log(
    `  baseline after ${M.warmup} warm-up connections: ${before.fds} fds, RSS ${(before.rss / 1024).toFixed(1)} MiB`,
  )
  for (const k of Object.keys(out) as (keyof typeof out)[]) out[k] = { ok: 0, fail: {} }
  let peakFds = 0
  let peakRss = 0
  const sampler = setInterval(() => {
    try {
      peakFds = Math.max(peakFds, sluice.fds())
      peakRss = Math.max(peakRss, sluice.rssKiB())
    } catch {}
  }, 250)
  const m0 = now()
  const done = await runMany(M.warmup, M.shortConns, M.shortConcurrency, true)
  const rate = done / ((now() - m0) / 1000)
  clearInterval(sampler)
  log(`  ${done} connections at ${Math.round(rate)}/s; settling ${M.settleMs / 1000}s`)
  await sleep(M.settleMs)
  const after = await sluice.settled()
  const heapAfter = await sluice.heap().catch(() => ({ used: Number.NaN, total: Number.NaN }))
  let openConns = -1
  try {
    const st = await sluice.status()
    openConns = st.apps
      .filter((a) => a.name === 'short' || a.name === 'refused')
      .reduce((n, a) => n + a.activeConnections, 0)
  } catch {}
  const fdOk = Math.abs(after.fds - before.fds) <= before.fds * 0.05
  const rssOk = Math.abs(after.rss - before.rss) <= before.rss * 0.05
  const cleanFail = sumOf(out.clean.fail)
  const rows: Row[] = [
    {
      measure: 'connections made',
      value: `${done} at ${Math.round(rate)}/s`,
      goal: String(M.shortConns),
      met: done === M.shortConns,
    },
    {
      measure: 'clean close: echoed and closed',
      value: `${out.clean.ok}${cleanFail ? `; failed ${cleanFail} (${listOf(out.clean.fail)})` : ''}`,
      goal: 'all',
      met: cleanFail === 0,
    },
    {
      measure: 'abrupt RST (resetAndDestroy, half of them after the echo)',
      value: `${out.rst.ok}${sumOf(out.rst.fail) ? `; failed ${sumOf(out.rst.fail)} (${listOf(out.rst.fail)})` : ''}`,
    },
    {
      measure: 'refused target: accepted, then reset with nothing sent back',
      value: `${out.refused.ok}${sumOf(out.refused.fail) ? `; otherwise ${sumOf(out.refused.fail)} (${listOf(out.refused.fail)})` : ''}`,
    },
    {
      measure: "sluice's open connections on these apps after the settle (/status)",
      value: String(openConns),
      goal: '0',
      met: openConns === 0,
    },
    {
      measure: 'fds: phase start / baseline (after warm-up) / peak / after',
      value: `${atStart.fds} / ${before.fds} / ${peakFds} / ${after.fds}`,
    },
    {
      measure: 'fds after against baseline',
      value: `${after.fds - before.fds >= 0 ? '+' : ''}${after.fds - before.fds} (${pct(after.fds, before.fds)})`,
      goal: '±5 %',
      met: fdOk,
    },
    {
      measure: 'RSS: phase start / baseline / peak / after (MiB)',
      value: [atStart.rss, before.rss, peakRss, after.rss].map((k) => (k / 1024).toFixed(1)).join(' / '),
    },
    { measure: 'RSS after against baseline', value: pct(after.rss, before.rss), goal: '±5 %', met: rssOk },
    {
      measure: 'RSS halfway through the load → after (growth in the second half: a leak keeps growing)',
      value:
        mid === null
          ? 'n/a'
          : `${(mid / 1024).toFixed(1)} → ${(after.rss / 1024).toFixed(1)} MiB (${pct(after.rss, mid)})`,
    },
    {
      measure: 'V8 heap used / total, baseline → after (MiB, /metrics)',
      value: `${heapBefore.used.toFixed(1)} / ${heapBefore.total.toFixed(1)} → ${heapAfter.used.toFixed(1)} / ${heapAfter.total.toFixed(1)}`,
    },
  ]
  return {
    n: 3,
    title: 'Short connections: fds and memory',
    load: `${M.shortConns} connections, ${M.shortConcurrency} at a time, in turn: clean (32 bytes echoed, FIN, wait for the close), abrupt RST with socket.resetAndDestroy() (half at once, half after the echo), and to an app whose only target refuses. Spread over 4 listen ports. Baseline: the least of 5 samples (0.5 s apart) after ${M.warmup} warm-up connections and a 2 s pause; after: the same, ${M.settleMs / 1000} s after the last connection (no forced GC). fds from /proc/PID/fd, RSS from VmRSS.`,
    rows,
    ms: now() - t0,
  }
}

// ---------------------------------------------------------------------------------------------
// Phase 4: slowloris and header floods

interface FrontStats {
  slow: {
    lifetimes: number[]
    cutInTime: number
    cutLate: number
    held: number
    answers: Record<string, number>
    connectFail: Record<string, number>
  }
  flood: {
    conns: number
    cut: number
    notCut: number
    answers: Record<string, number>
    msToCut: number[]
    connectFail: Record<string, number>
  }
  normal: { ok: number; fail: Record<string, number>; lat: Latency }
}

function newFront(): FrontStats {
  return {
    slow: { lifetimes: [], cutInTime: 0, cutLate: 0, held: 0, answers: {}, connectFail: {} },
    flood: { conns: 0, cut: 0, notCut: 0, answers: {}, msToCut: [], connectFail: {} },
    normal: { ok: 0, fail: {}, lat: new Latency() },
  }
}

const statusLine = (b: Buffer) => {
  const line = b.subarray(0, Math.max(0, b.indexOf(13))).toString('latin1')
  return line.startsWith('HTTP/') ? line.split(' ').slice(0, 2).join(' ') : b.length ? 'garbage' : 'nothing'
}

/** One header byte a second, reconnecting when cut, until `stop`. */
async function slowClient(
  port: number,
  st: FrontStats['slow'],
  stop: { done: boolean },
  id: number,
): Promise<void> {
  const prefix = `GET / HTTP/1.1\r\nHost: soak\r\nUser-Agent: slowloris-${id}\r\nX-Slow: `
  await sleep((id * 37) % 1000)
  while (!stop.done) {
    let c: Conn
    try {
      c = await open(port)
    } catch (e) {
      bump(st.connectFail, codeOf(e))
      await sleep(1000)
      continue
    }
    const t0 = now()
    let i = 0
    while (!stop.done && !c.done) {
      c.s.write(i < prefix.length ? prefix[i]! : 'a')
      i++
      await c.until(() => false, 1000)
    }
    const life = now() - t0
    if (c.done) {
      st.lifetimes.push(life)
      if (life <= HEADER_TIMEOUT_MS + CUT_GRACE_MS) st.cutInTime++
      else st.cutLate++
      bump(st.answers, c.buf.length ? statusLine(c.buf) : c.why)
    } else if (life > HEADER_TIMEOUT_MS + CUT_GRACE_MS) {
      // Open past its deadline when the attack stopped: sluice did not cut it.
      st.held++
      st.lifetimes.push(life)
    }
    // (Younger than the deadline when the attack stopped: still in time, not counted.)
    c.s.destroy()
  }
}

/** Connections that send a huge header line (or a flood of header fields) as fast as they can. */
async function flooder(
  port: number,
  st: FrontStats['flood'],
  stop: { done: boolean },
  id: number,
): Promise<void> {
  const cap = 1024 * 1024
  const line = Buffer.alloc(64 * 1024, 'a')
  const fields = Buffer.from('X-F: v\r\n'.repeat(8192))
  let n = 0
  while (!stop.done) {
    let c: Conn
    try {
      c = await open(port)
    } catch (e) {
      bump(st.connectFail, codeOf(e))
      await sleep(100)
      continue
    }
    st.conns++
    const manyFields = (id + n++) % 2 === 1
    c.s.write(`GET / HTTP/1.1\r\nHost: soak\r\n${manyFields ? '' : 'X-Flood: '}`)
    const t0 = now()
    let sent = 0
    while (!stop.done && sent < cap && !c.done) {
      const d0 = c.drains
      const ok = c.s.write(manyFields ? fields : line)
      sent += line.length
      if (!ok) await c.until(() => c.drains > d0, 5000)
    }
    const cut = await c.until(() => c.ended || c.closed, 5000).then(() => c.done)
    if (cut) {
      st.cut++
      st.msToCut.push(now() - t0)
      bump(
        st.answers,
        `${manyFields ? 'many fields' : 'one huge line'}: ${c.buf.length ? statusLine(c.buf) : c.why}`,
      )
    } else if (!stop.done) st.notCut++
    c.s.destroy()
    await sleep(10)
  }
}

async function normalClient(
  port: number,
  st: FrontStats['normal'],
  stop: { done: boolean },
  keepAlive: boolean,
) {
  const agent = keepAlive ? new Agent({ keepAlive: true, maxSockets: 1 }) : false
  while (!stop.done) {
    const t0 = now()
    try {
      const r = await httpGet(port, agent)
      if (r.status === 200 && r.body.startsWith('hello from')) {
        st.ok++
        st.lat.record(now() - t0)
      } else bump(st.fail, `status ${r.status}`)
    } catch (e) {
      bump(st.fail, codeOf(e))
    }
    await sleep(50)
  }
  if (agent) agent.destroy()
}

async function phase4(env: Env): Promise<PhaseResult> {
  const { sluice, ports } = env
  const t0 = now()
  const fronts = { http: { port: ports.web, st: newFront() }, tunnel: { port: ports.tcli, st: newFront() } }
  // The tunnel's sessions must be up before the attack starts.
  for (const f of Object.values(fronts)) {
    const until = now() + 15_000
    while (now() < until) {
      const r = await httpGet(f.port, false).catch(() => null)
      if (r?.status === 200) break
      await sleep(200)
    }
  }
  // The normal clients' upstream keep-alive connections (one or two per front) belong to the
  // baseline: run them for a moment first.
  {
    const warm = { done: false }
    const w = Object.values(fronts).flatMap((f) => {
      const st = newFront().normal
      return [normalClient(f.port, st, warm, true), normalClient(f.port, st, warm, false)]
    })
    await sleep(1000)
    warm.done = true
    await Promise.all(w)
  }
  await sleep(500)
  const before = await sluice.settled(3, 300)
  const rssBefore = before.rss
  let rssPeak = before.rss
  log(
    `phase 4: ${M.slowClients} slow clients and ${M.flooders} flooders on each front for ${M.attackMs / 1000}s; baseline ${before.fds} fds`,
  )
  let peak = before.fds
  const sampler = setInterval(() => {
    try {
      peak = Math.max(peak, sluice.fds())
      rssPeak = Math.max(rssPeak, sluice.rssKiB())
    } catch {}
  }, 250)
  const stop = { done: false }
  const tasks: Promise<void>[] = []
  for (const f of Object.values(fronts)) {
    for (let i = 0; i < M.slowClients; i++) tasks.push(slowClient(f.port, f.st.slow, stop, i))
    for (let i = 0; i < M.flooders; i++) tasks.push(flooder(f.port, f.st.flood, stop, i))
    tasks.push(normalClient(f.port, f.st.normal, stop, true), normalClient(f.port, f.st.normal, stop, false))
  }
  const a0 = now()
  const attackEnd = Math.min(a0 + M.attackMs, t0 + M.phase4BudgetMs - 20_000)
  while (now() < attackEnd && sluice.alive) {
    await sleep(Math.min(5000, attackEnd - now()))
    const fd = sluice.fds()
    log(
      `  ${Math.round((now() - a0) / 1000)}s: sluice fds ${fd} (peak ${peak}); http slow cut ${fronts.http.st.slow.cutInTime + fronts.http.st.slow.cutLate}, floods ${fronts.http.st.flood.conns}, normal ok ${fronts.http.st.normal.ok}; tunnel slow cut ${fronts.tunnel.st.slow.cutInTime + fronts.tunnel.st.slow.cutLate}, floods ${fronts.tunnel.st.flood.conns}, normal ok ${fronts.tunnel.st.normal.ok}`,
    )
  }
  stop.done = true
  await Promise.race([Promise.all(tasks), sleep(15_000)])
  clearInterval(sampler)
  await sleep(quick ? 2000 : 5000)
  const after = await sluice.settled(5, 400)
  let leftOpen = -1
  try {
    const st = await sluice.status()
    leftOpen = st.apps
      .filter((a) => a.name === 'web' || a.name === 'tcli')
      .reduce((n, a) => n + a.listeners.reduce((k, l) => k + l.activeConnections, 0), 0)
  } catch {}
  // Each slow client holds one socket in sluice; each flood and normal connection one, plus an upstream.
  const bound = before.fds + 2 * M.slowClients + 2 * (2 * M.flooders) + 2 * 2 * 2 + 32
  const rows: Row[] = []
  for (const [name, f] of Object.entries(fronts)) {
    const s = f.st.slow
    const total = s.cutInTime + s.cutLate + s.held
    const sorted = [...s.lifetimes].sort((x, y) => x - y)
    const q = (p: number) =>
      sorted.length ? sorted[Math.min(sorted.length - 1, Math.floor(p * sorted.length))]! : 0
    const fl = f.st.flood
    const nl = f.st.normal.lat.summary()
    const nf = sumOf(f.st.normal.fail)
    const label = name === 'http' ? 'http app' : 'tunnel client'
    rows.push(
      {
        measure: `${label}: slow connections cut within the header timeout (${HEADER_TIMEOUT_MS / 1000} s + ${CUT_GRACE_MS / 1000} s)`,
        value: `${s.cutInTime}/${total}; cut later ${s.cutLate}; still open at the end ${s.held}`,
        goal: 'all',
        met: total > 0 && s.cutInTime === total,
      },
      {
        measure: `${label}: slow connection lifetime p50 / max; what they got`,
        value: `${(q(0.5) / 1000).toFixed(1)} s / ${(q(1) / 1000).toFixed(1)} s; ${listOf(s.answers)}${sumOf(s.connectFail) ? `; connect failures ${listOf(s.connectFail)}` : ''}`,
      },
      {
        measure: `${label}: flood connections cut by sluice`,
        value: `${fl.cut}/${fl.cut + fl.notCut}; ${listOf(fl.answers)}${sumOf(fl.connectFail) ? `; connect failures ${listOf(fl.connectFail)}` : ''}`,
        goal: 'all',
        met: fl.cut > 0 && fl.notCut === 0,
      },
      {
        measure: `${label}: flood connection, first byte to answer or close: p50 / max`,
        value: (() => {
          const m = [...fl.msToCut].sort((x, y) => x - y)
          return m.length ? `${fmtMs(m[Math.floor(m.length / 2)]!)} / ${fmtMs(m[m.length - 1]!)}` : 'n/a'
        })(),
      },
      {
        measure: `${label}: normal client requests served; failures`,
        value: `${f.st.normal.ok}; ${nf ? listOf(f.st.normal.fail) : '0'}`,
        goal: '> 0; 0',
        met: f.st.normal.ok > 0 && nf === 0,
      },
      {
        measure: `${label}: normal client latency p50 / p99 / max`,
        value: `${fmtMs(nl.p50)} / ${fmtMs(nl.p99)} / ${fmtMs(nl.max)}`,
        goal: 'p99 < 500 ms',
        met: nl.count > 0 && nl.p99 < 500,
      },
    )
  }
  rows.push(
    {
      measure: 'sluice fds: before / peak during / after',
      value: `${before.fds} / ${peak} / ${after.fds}`,
      goal: `peak ≤ ${bound} (baseline + one per attacker and client socket + 32)`,
      met: peak <= bound,
    },
    {
      measure: 'client connections still open in sluice after the attack (/status, both fronts)',
      value: String(leftOpen),
      goal: '0',
      met: leftOpen === 0,
    },
    {
      measure: 'sluice RSS: before / peak / after (MiB)',
      value: [rssBefore, rssPeak, after.rss].map((k) => (k / 1024).toFixed(1)).join(' / '),
    },
    {
      measure: 'fds after against before',
      value: `${after.fds - before.fds >= 0 ? '+' : ''}${after.fds - before.fds} (${pct(after.fds, before.fds)})`,
      goal: '±5 %',
      met: Math.abs(after.fds - before.fds) <= before.fds * 0.05,
    },
  )
  return {
    n: 4,
    title: 'Slowloris and header floods',
    load: `On each front (an http app with timeouts.header ${HEADER_TIMEOUT_MS / 1000}s, and a tunnel client whose sessions go to a tunnel server app in the same process, both before the same HTTP origin), for ${M.attackMs / 1000} s: ${M.slowClients} slow clients sending one header byte a second (reconnecting when cut), ${M.flooders} flooders sending a request head with one huge header line or thousands of header fields, 64 KiB at a time up to 1 MiB (10 ms pause between connections), and two normal clients (one keep-alive, one new connection per request) doing GET / every 50 ms. The tunnel client has the same timeouts.header. A slow connection younger than the deadline when the attack stops is not counted. The clients all run in the soak's own process.`,
    rows,
    ms: now() - t0,
  }
}

// ---------------------------------------------------------------------------------------------
// Report

function twReuse(): string {
  try {
    return readFileSync('/proc/sys/net/ipv4/tcp_tw_reuse', 'utf8').trim()
  } catch {
    return 'unknown'
  }
}

function report(results: PhaseResult[], env: Env | null, totalMs: number, exit: string): string {
  const cpu = cpus()
  const lines = [
    `# Soak (issue 11)${quick ? ' — QUICK MODE (scaled down; not the figures of record)' : ''}`,
    '',
    'Generated by `npm run soak` (bench/soak.ts). One sluice child process (`node --max-semi-space-size=4',
    'dist/cli/main.js run -c sluice.json --admin 127.0.0.1:0`) carries all four phases in turn; the',
    'backends are `sluice test serve` child processes; every client runs in the soak process; all on',
    'loopback. Each phase has its own time budget.',
    '',
    `- date: ${new Date().toISOString()}`,
    `- machine: ${cpu.length} × ${cpu[0]?.model ?? 'cpu'}, ${(totalmem() / 2 ** 30).toFixed(1)} GiB, Linux ${release()}`,
    `- node ${process.version}; net.ipv4.tcp_tw_reuse ${twReuse()} (2, the default, lets loopback connects reuse TIME_WAIT ports: phases 1 and 3 open tens of thousands of connections)`,
    `- mode: ${quick ? 'quick (`--quick`)' : 'full'}${only.size ? `; phases ${[...only].join(', ')} only` : ''}`,
    `- total time: ${(totalMs / 1000).toFixed(0)} s; sluice afterwards: ${exit}`,
    '',
    '| phase | result | time |',
    '|---|---|---:|',
    ...results.map(
      (p) => `| ${p.n}. ${p.title} | ${passed(p) ? 'PASS' : '**FAIL**'} | ${(p.ms / 1000).toFixed(1)} s |`,
    ),
    '',
  ]
  for (const p of results) {
    lines.push(`## ${p.n}. ${p.title}: ${passed(p) ? 'PASS' : 'FAIL'}`, '', p.load, '')
    if (p.error) lines.push(`Aborted: ${p.error}`, '')
    lines.push('| measure | value | goal | |', '|---|---|---|---|')
    for (const r of p.rows)
      lines.push(
        `| ${r.measure} | ${r.value.replace(/\|/g, '\\|')} | ${r.goal ?? ''} | ${r.met === undefined ? '' : r.met ? 'met' : '**not met**'} |`,
      )
    lines.push('')
  }
  if (env) lines.push(`sluice pid ${env.sluice.pid}; config file ${env.file} (bench/.work, not kept).`, '')
  return lines.join('\n')
}

// ---------------------------------------------------------------------------------------------

async function main(): Promise<number> {
  const start = now()
  const watchdog = setTimeout(() => {
    console.error(`soak exceeded its total budget (${M.totalBudgetMs / 1000} s); stopping`)
    killAll()
    process.exit(1)
  }, M.totalBudgetMs)
  watchdog.unref()
  log(`soak: ${quick ? 'quick' : 'full'} mode, node ${process.version}, ${cpus().length} cores`)
  const env = await setup()
  log(`sluice pid ${env.sluice.pid}, admin ${env.sluice.admin.host}:${env.sluice.admin.port}`)
  const phases: [number, (e: Env) => Promise<PhaseResult>, number, string][] = [
    [1, phase1, M.phase1BudgetMs, 'Reloads under traffic'],
    [2, phase2, M.phase2BudgetMs, 'Fault churn over streaming connections'],
    [3, phase3, M.phase3BudgetMs, 'Short connections: fds and memory'],
    [4, phase4, M.phase4BudgetMs, 'Slowloris and header floods'],
  ]
  const results: PhaseResult[] = []
  for (const [n, fn, budget, title] of phases) {
    if (!runPhase(n)) continue
    const p0 = now()
    const logs0 = new Map(env.sluice.counts)
    let r: PhaseResult
    if (!env.sluice.alive) {
      r = { n, title, load: '', rows: [], ms: 0, error: `not run: sluice ${env.sluice.exit}` }
    } else {
      // Each phase stops itself within its budget; this is the backstop.
      r = await Promise.race([
        fn(env).catch(
          (e: Error): PhaseResult => ({
            n,
            title,
            load: '',
            rows: [],
            ms: now() - p0,
            error: e.stack ?? e.message,
          }),
        ),
        sleep(budget + 30_000).then(
          (): PhaseResult => ({
            n,
            title,
            load: '',
            rows: [],
            ms: now() - p0,
            error: `over its budget of ${budget / 1000} s`,
          }),
        ),
      ])
      if (!env.sluice.alive) r.error = `sluice ${env.sluice.exit} during the phase`
      const noisy = Object.entries(env.sluice.since(logs0)).filter(([k]) => !k.startsWith('info'))
      r.rows.push({
        measure: "sluice's warn and error log lines during the phase",
        value: noisy.length
          ? listOf(Object.fromEntries(noisy.sort((a, b) => b[1] - a[1]).slice(0, 6))) +
            (noisy.length > 6 ? `, and ${noisy.length - 6} other messages` : '')
          : 'none',
      })
    }
    results.push(r)
    for (const row of r.rows)
      log(
        `  ${row.met === false ? '✗' : row.met ? '✓' : ' '} ${row.measure}: ${row.value}${row.goal ? ` (goal ${row.goal})` : ''}`,
      )
    if (r.error) log(`  error: ${r.error}`)
    log(`phase ${n} ${passed(r) ? 'PASS' : 'FAIL'}: ${title} (${(r.ms / 1000).toFixed(1)} s)`)
  }
  // A clean stop: SIGTERM drains (drain_timeout 5s) and exits 0.
  let exit = `already ${env.sluice.exit}`
  if (env.sluice.alive) {
    stopping = true
    env.sluice.child.kill('SIGTERM')
    const t = now()
    while (env.sluice.alive && now() - t < 10_000) await sleep(50)
    exit = env.sluice.alive ? 'still running 10 s after SIGTERM' : `${env.sluice.exit} on SIGTERM`
  }
  const md = report(results, env, now() - start, exit)
  const out = join(root, 'bench', quick ? 'SOAK-quick.md' : only.size ? 'SOAK-partial.md' : 'SOAK.md')
  writeFileSync(out, md)
  killAll()
  const ok = results.every(passed)
  log(
    `\nsoak ${ok ? 'PASS' : 'FAIL'}: ${results.filter(passed).length}/${results.length} phases met every goal; wrote ${out.slice(root.length + 1)}`,
  )
  return ok ? 0 : 1
}

main().then(
  (code) => process.exit(code),
  (err) => {
    console.error(err)
    killAll()
    process.exit(1)
  },
)
