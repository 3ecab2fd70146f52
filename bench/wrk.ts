// What the benchmarks share: running wrk and reading its report, medians, waiting for a port.
import { spawn } from 'node:child_process'
import { connect } from 'node:net'

export interface Wrk {
  rps: number
  requests: number
  p50: number
  p99: number
  /** Socket errors plus non-2xx/3xx answers. */
  errors: number
  /** wrk's Transfer/sec, as it prints it. */
  transfer: string
}

/** wrk's latency text (`850.00us`, `1.20ms`, `2.01s`) in milliseconds. */
export function parseMs(text: string): number {
  const m = /([\d.]+)(us|ms|s)/.exec(text)
  if (!m) return Number.NaN
  const v = Number(m[1])
  return m[2] === 'us' ? v / 1000 : m[2] === 's' ? v * 1000 : v
}

/** Run wrk with these arguments (`--latency` is added) and parse its report. */
export async function wrk(args: string[]): Promise<Wrk> {
  const out = await new Promise<string>((res, rej) => {
    const c = spawn('wrk', ['--latency', ...args])
    let s = ''
    c.stdout.on('data', (d) => (s += d))
    c.on('exit', (code) => (code === 0 ? res(s) : rej(new Error(`wrk exited ${code}: ${s}`))))
  })
  const sock = /Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)/.exec(out)
  const non2xx = Number(/Non-2xx or 3xx responses: (\d+)/.exec(out)?.[1] ?? 0)
  return {
    rps: Number(/Requests\/sec:\s+([\d.]+)/.exec(out)?.[1]),
    requests: Number(/(\d+) requests in/.exec(out)?.[1]),
    p50: parseMs(/\s50%\s+(\S+)/.exec(out)?.[1] ?? ''),
    p99: parseMs(/\s99%\s+(\S+)/.exec(out)?.[1] ?? ''),
    errors: (sock ? sock.slice(1).reduce((a, b) => a + Number(b), 0) : 0) + non2xx,
    transfer: /Transfer\/sec:\s+(\S+)/.exec(out)?.[1] ?? '',
  }
}

export function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b)
  return s.length % 2 ? s[(s.length - 1) / 2]! : (s[s.length / 2 - 1]! + s[s.length / 2]!) / 2
}

/** Resolve once something accepts connections on 127.0.0.1:`port`. */
export async function waitPort(port: number, timeoutMs = 10_000): Promise<void> {
  const deadline = Date.now() + timeoutMs
  for (;;) {
    const ok = await new Promise<boolean>((res) => {
      const s = connect(port, '127.0.0.1', () => {
        s.destroy()
        res(true)
      })
      s.on('error', () => res(false))
    })
    if (ok) return
    if (Date.now() > deadline) throw new Error(`nothing listening on ${port}`)
    await new Promise((r) => setTimeout(r, 50))
  }
}
