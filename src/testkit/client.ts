// The clients behind `sluice test`: ping (timed dial/write/read round trips), balancer (check the
// sequence of backends a proxy picks) and simulate (N concurrent clients, latency percentiles).
import { connect, type Socket } from 'node:net'
import { Latency } from './stats.ts'

export interface Addr {
  host: string
  port: number
}

/** One timed round trip: connect, write the payload, read the reply. */
export interface Round {
  seq: number
  ok: boolean
  dialMs: number
  writeMs: number
  readMs: number
  totalMs: number
  reply: string
  error: string | null
}

interface RoundOptions {
  payload: Buffer
  /** Reply is complete when it holds this text; default: as many bytes as the payload (echo). */
  expect: string | null
  /** With no payload and no expect: the reply is complete at the first newline or EOF. */
  timeout: number
}

/** Read from `s` until `done(buf)` or EOF or timeout. */
function readReply(s: Socket, done: (buf: Buffer) => boolean, timeout: number): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = []
    let len = 0
    const finish = (err: Error | null) => {
      s.removeListener('data', onData)
      s.removeListener('end', onEnd)
      s.removeListener('error', finish)
      clearTimeout(timer)
      if (err) reject(err)
      else resolve(Buffer.concat(chunks, len))
    }
    const onData = (d: Buffer) => {
      chunks.push(d)
      len += d.length
      if (done(Buffer.concat(chunks, len))) finish(null)
    }
    const onEnd = () => finish(null)
    const timer = setTimeout(
      () => finish(Object.assign(new Error(`no reply within ${timeout}ms`), { code: 'ETIMEDOUT' })),
      timeout,
    )
    s.on('data', onData)
    s.once('end', onEnd)
    s.once('error', finish)
  })
}

function open(addr: Addr, timeout: number): Promise<Socket> {
  return new Promise((resolve, reject) => {
    const s = connect({ host: addr.host, port: addr.port, noDelay: true })
    const timer = setTimeout(() => {
      s.destroy()
      reject(Object.assign(new Error(`connect timed out after ${timeout}ms`), { code: 'ETIMEDOUT' }))
    }, timeout)
    s.once('connect', () => {
      clearTimeout(timer)
      s.removeAllListeners('error')
      resolve(s)
    })
    s.once('error', (err) => {
      clearTimeout(timer)
      reject(err)
    })
  })
}

function completeWhen(o: RoundOptions): (buf: Buffer) => boolean {
  if (o.expect !== null) {
    const e = o.expect
    return (b) => b.toString('latin1').includes(e)
  }
  if (o.payload.length) return (b) => b.length >= o.payload.length
  return (b) => b.includes(10)
}

/** One round trip on a new connection. */
export async function round(addr: Addr, seq: number, o: RoundOptions): Promise<Round> {
  const t0 = performance.now()
  const r: Round = { seq, ok: false, dialMs: 0, writeMs: 0, readMs: 0, totalMs: 0, reply: '', error: null }
  let s: Socket | null = null
  try {
    s = await open(addr, o.timeout)
    const t1 = performance.now()
    r.dialMs = t1 - t0
    const reply = readReply(s, completeWhen(o), o.timeout)
    if (o.payload.length)
      await new Promise<void>((res, rej) => s!.write(o.payload, (e) => (e ? rej(e) : res())))
    const t2 = performance.now()
    r.writeMs = t2 - t1
    const buf = await reply
    r.readMs = performance.now() - t2
    r.reply = buf.toString('utf8')
    r.ok =
      o.expect !== null
        ? r.reply.includes(o.expect)
        : o.payload.length
          ? buf.subarray(0, o.payload.length).equals(o.payload)
          : buf.length > 0
    if (!r.ok) r.error = buf.length ? 'unexpected reply' : 'closed without reply'
  } catch (err) {
    const e = err as NodeJS.ErrnoException
    r.error = e.code ?? e.message
  } finally {
    s?.destroy()
  }
  r.totalMs = performance.now() - t0
  return r
}

export interface PingOptions extends RoundOptions {
  count: number
  intervalMs: number
  onRound?: (r: Round) => void
}

/** `count` round trips, `intervalMs` apart. */
export async function ping(addr: Addr, o: PingOptions): Promise<{ rounds: Round[]; latency: Latency }> {
  const rounds: Round[] = []
  const latency = new Latency()
  for (let i = 1; i <= o.count; i++) {
    const r = await round(addr, i, o)
    rounds.push(r)
    if (r.ok) latency.record(r.totalMs)
    o.onRound?.(r)
    if (i < o.count && o.intervalMs > 0) await new Promise((res) => setTimeout(res, o.intervalMs))
  }
  return { rounds, latency }
}

export interface BalancerOptions {
  /** Replies expected in order (repeated cyclically); empty: just count who answered. */
  expect: string[]
  count: number
  send: Buffer
  timeout: number
  onRound?: (r: Round, expected: string | null) => void
}

export interface BalancerResult {
  replies: string[]
  counts: Record<string, number>
  mismatches: { seq: number; expected: string; got: string }[]
  errors: number
}

/** Open `count` connections one after another and compare each first reply line with the expected sequence. */
export async function balancer(addr: Addr, o: BalancerOptions): Promise<BalancerResult> {
  const res: BalancerResult = { replies: [], counts: {}, mismatches: [], errors: 0 }
  for (let i = 0; i < o.count; i++) {
    const r = await round(addr, i + 1, { payload: o.send, expect: null, timeout: o.timeout })
    const line = r.error && !r.reply ? `<${r.error}>` : (r.reply.split('\n')[0] ?? '').trim()
    if (r.error && !r.reply) res.errors++
    res.replies.push(line)
    res.counts[line] = (res.counts[line] ?? 0) + 1
    const expected = o.expect.length ? o.expect[i % o.expect.length]! : null
    if (expected !== null && expected !== line) res.mismatches.push({ seq: i + 1, expected, got: line })
    o.onRound?.(r, expected)
  }
  return res
}

export interface SimulateOptions {
  clients: number
  /** Round trips per client. */
  requests: number
  payload: Buffer
  /** Keep one connection per client for all its requests (else a new connection each). */
  reuse: boolean
  timeout: number
  onProgress?: (done: number, errors: number) => void
}

export interface SimulateResult {
  ok: number
  errors: Record<string, number>
  latency: Latency
  elapsedMs: number
  perSecond: number
}

/** N concurrent clients, each doing `requests` echo round trips. */
export async function simulate(addr: Addr, o: SimulateOptions): Promise<SimulateResult> {
  const latency = new Latency()
  const errors: Record<string, number> = {}
  let ok = 0
  let failed = 0
  const fail = (code: string) => {
    errors[code] = (errors[code] ?? 0) + 1
    failed++
  }
  const started = performance.now()
  const roundOpts = { payload: o.payload, expect: null, timeout: o.timeout }
  const client = async () => {
    if (!o.reuse) {
      for (let i = 0; i < o.requests; i++) {
        const r = await round(addr, i, roundOpts)
        if (r.ok) {
          ok++
          latency.record(r.totalMs)
        } else fail(r.error ?? 'error')
        o.onProgress?.(ok + failed, failed)
      }
      return
    }
    let s: Socket
    try {
      s = await open(addr, o.timeout)
    } catch (err) {
      for (let i = 0; i < o.requests; i++) fail((err as NodeJS.ErrnoException).code ?? 'error')
      return
    }
    const want = o.payload.length
    for (let i = 0; i < o.requests; i++) {
      const t0 = performance.now()
      try {
        const reply = readReply(s, (b) => b.length >= want, o.timeout)
        s.write(o.payload)
        const buf = await reply
        if (buf.length >= want && buf.subarray(0, want).equals(o.payload)) {
          ok++
          latency.record(performance.now() - t0)
        } else {
          fail(buf.length ? 'unexpected reply' : 'closed')
          break
        }
      } catch (err) {
        fail((err as NodeJS.ErrnoException).code ?? 'error')
        break
      }
      o.onProgress?.(ok + failed, failed)
    }
    s.destroy()
  }
  await Promise.all(Array.from({ length: o.clients }, client))
  const elapsedMs = performance.now() - started
  return { ok, errors, latency, elapsedMs, perSecond: ok / (elapsedMs / 1000) }
}

/** Parse "host:port", ":port" or "port" (host defaults to 127.0.0.1). */
export function parseAddr(text: string): Addr | string {
  const t = text.trim()
  if (/^\d+$/.test(t)) return { host: '127.0.0.1', port: Number(t) }
  const m = /^(?:\[([^\]]+)\]|([^:]*)):(\d+)$/.exec(t)
  if (!m) return `"${text}" is not host:port`
  const port = Number(m[3])
  if (port < 1 || port > 65535) return `port ${port} is out of range`
  return { host: m[1] ?? (m[2] || '127.0.0.1'), port }
}
