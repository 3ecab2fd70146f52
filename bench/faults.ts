// Fault benchmarks, run by bench/run.ts in the same run as the proxy comparison: how exact latency
// and bandwidth faults are under load, and what one latency fault costs in CPU per request.
import { connect, createServer, type Server } from 'node:net'

export interface AccuracyResult {
  /** Lateness of each record beyond the configured latency (ms): p50, p99, max. */
  latencyErrorP50: number
  latencyErrorP99: number
  latencyErrorMax: number
  records: number
  /** Bytes per second achieved against the configured rate, and the relative error. */
  bandwidthRate: number
  bandwidthErrorPct: number
}

/** A sink on loopback that calls `onData` for every chunk. */
export function sink(onData: (d: Buffer, at: number) => void): Promise<{ port: number; server: Server }> {
  return new Promise((resolve) => {
    const server = createServer((c) => {
      c.setNoDelay(true)
      c.on('data', (d: Buffer) => onData(d, performance.now()))
      c.on('error', () => {})
    })
    server.listen(0, '127.0.0.1', () =>
      resolve({ port: (server.address() as { port: number }).port, server }),
    )
  })
}

const percentile = (xs: number[], p: number) => {
  const s = [...xs].sort((a, b) => a - b)
  return s[Math.min(s.length - 1, Math.floor((p / 100) * s.length))]!
}

/**
 * Send `count` 16-byte records, one every `gapMs`, through a proxy port whose to-upstream latency
 * is `latencyMs`; the sink timestamps each record on arrival. Same process, same clock.
 */
export async function latencyAccuracy(
  proxyPort: number,
  latencyMs: number,
  arrivals: Map<number, number>,
  count = 1000,
  gapMs = 5,
): Promise<{ p50: number; p99: number; max: number; records: number }> {
  const sent = new Map<number, number>()
  const s = connect({ port: proxyPort, host: '127.0.0.1', noDelay: true })
  await new Promise<void>((r) => s.once('connect', () => r()))
  for (let i = 0; i < count; i++) {
    const rec = Buffer.alloc(16)
    rec.writeUInt32BE(i, 0)
    sent.set(i, performance.now())
    s.write(rec)
    await new Promise((r) => setTimeout(r, gapMs))
  }
  const deadline = Date.now() + latencyMs + 5000
  while (arrivals.size < count && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20))
  s.destroy()
  const errors: number[] = []
  for (const [seq, at] of arrivals) errors.push(at - sent.get(seq)! - latencyMs)
  return {
    p50: percentile(errors, 50),
    p99: percentile(errors, 99),
    max: Math.max(...errors),
    records: errors.length,
  }
}

/** What a bandwidth sink saw: bytes, and when the first and last chunks came. */
export interface Received {
  n: number
  first: number
  firstSize: number
  last: number
}

/** Push `bytes` through a proxy port with a bandwidth fault; the achieved rate at the sink (B/s). */
export async function bandwidthAccuracy(
  proxyPort: number,
  bytes: number,
  received: Received,
): Promise<number> {
  const s = connect({ port: proxyPort, host: '127.0.0.1', noDelay: true })
  await new Promise<void>((r) => s.once('connect', () => r()))
  const chunk = Buffer.alloc(64 * 1024, 1)
  for (let off = 0; off < bytes; off += chunk.length) {
    if (!s.write(chunk.subarray(0, Math.min(chunk.length, bytes - off))))
      await new Promise((r) => s.once('drain', r))
  }
  const deadline = Date.now() + 60_000
  while (received.n < bytes && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20))
  s.destroy()
  // The first piece leaves after its own transmission time; count from there.
  return ((received.n - received.firstSize) / (received.last - received.first)) * 1000
}
