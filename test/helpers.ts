// Shared test helpers: run the built CLI as a child process, read its JSON logs, poll with a
// deadline, and talk to it over real loopback sockets.
import { type ChildProcess, execFile, spawn } from 'node:child_process'
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { connect, type Socket } from 'node:net'
import { tmpdir } from 'node:os'
import { join, resolve } from 'node:path'
import { after } from 'node:test'
import { promisify } from 'node:util'

export const root = resolve(import.meta.dirname, '..')
export const cli = join(root, 'dist', 'cli', 'main.js')

/** Poll `fn` until it returns a truthy value or the deadline passes; then throw with `what`. */
export async function waitFor<T>(
  fn: () => T | Promise<T>,
  what: string,
  timeoutMs = 5000,
  everyMs = 25,
): Promise<NonNullable<T>> {
  const deadline = Date.now() + timeoutMs
  let last: unknown
  for (;;) {
    try {
      const v = await fn()
      if (v) return v as NonNullable<T>
    } catch (err) {
      last = err
    }
    if (Date.now() > deadline) {
      throw new Error(
        `timed out after ${timeoutMs}ms waiting for ${what}${last ? ` (last error: ${(last as Error).message})` : ''}`,
      )
    }
    await new Promise((r) => setTimeout(r, everyMs))
  }
}

/** Keys that appear more than once in one object of a JSON text (JSON.parse silently keeps the last). */
export function duplicateKeys(text: string): string[] {
  const dups: string[] = []
  const open: Set<string>[] = []
  // A string followed by a colon is a key; strings are whole tokens, so braces inside them never count.
  for (const m of text.matchAll(/("(?:[^"\\]|\\.)*")(\s*:)?|[{}]/g)) {
    if (m[0] === '{') open.push(new Set())
    else if (m[0] === '}') open.pop()
    else if (m[2]) {
      const keys = open.at(-1)
      if (keys?.has(m[1]!)) dups.push(JSON.parse(m[1]!))
      keys?.add(m[1]!)
    }
  }
  return dups
}

/** A temporary directory removed by `cleanup()`. */
export function tempDir(): { dir: string; file(name: string, content: string): string; cleanup(): void } {
  const dir = mkdtempSync(join(tmpdir(), 'sluice-test-'))
  return {
    dir,
    file(name, content) {
      const p = join(dir, name)
      writeFileSync(p, content)
      return p
    },
    cleanup: () => rmSync(dir, { recursive: true, force: true }),
  }
}

export type LogLine = Record<string, unknown> & { msg?: string; level?: number }

/** A sluice child process with its logs. */
export class SluiceProcess {
  readonly child: ChildProcess
  readonly logs: LogLine[] = []
  stdout = ''
  stderr = ''
  readonly exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>
  #buffer = ''

  constructor(args: string[], env: Record<string, string> = {}) {
    // The V8 flag bin/sluice.js's shebang passes, so tests run sluice as users do.
    this.child = spawn(process.execPath, ['--max-semi-space-size=4', cli, ...args], {
      cwd: root,
      env: { ...process.env, ...env },
      stdio: ['ignore', 'pipe', 'pipe'],
    })
    this.child.stdout!.setEncoding('utf8').on('data', (d: string) => {
      this.stdout += d
    })
    this.child.stderr!.setEncoding('utf8').on('data', (d: string) => {
      this.stderr += d
      this.#buffer += d
      let nl = this.#buffer.indexOf('\n')
      while (nl >= 0) {
        const line = this.#buffer.slice(0, nl)
        this.#buffer = this.#buffer.slice(nl + 1)
        if (line.startsWith('{')) {
          try {
            this.logs.push(JSON.parse(line))
          } catch {}
        }
        nl = this.#buffer.indexOf('\n')
      }
    })
    this.exited = new Promise((res) => this.child.once('exit', (code, signal) => res({ code, signal })))
  }

  /** The first log line matching, waiting for it. */
  waitLog(match: (l: LogLine) => boolean, what: string, timeoutMs = 5000): Promise<LogLine> {
    return waitFor(() => this.logs.find(match), `log line: ${what}`, timeoutMs)
  }

  /** Count of log lines matching. */
  count(match: (l: LogLine) => boolean): number {
    return this.logs.filter(match).length
  }

  /** Wait until sluice says it started; returns the admin base URL if the admin API is on. */
  async started(timeoutMs = 5000): Promise<void> {
    await waitFor(
      () => this.logs.some((l) => String(l.msg).startsWith('sluice started')) || this.child.exitCode !== null,
      'sluice to start',
      timeoutMs,
    )
    if (this.child.exitCode !== null) throw new Error(`sluice exited ${this.child.exitCode}: ${this.stderr}`)
  }

  /** The admin API's base URL, from the start-up log. */
  async admin(): Promise<string> {
    const line = await this.waitLog((l) => typeof l.admin === 'string', 'admin address')
    return `http://${line.admin}`
  }

  signal(sig: NodeJS.Signals): void {
    this.child.kill(sig)
  }

  /** Kill it (if still running) and wait for the exit. */
  async stop(): Promise<void> {
    if (this.child.exitCode === null && this.child.signalCode === null) this.child.kill('SIGKILL')
    await this.exited
  }
}

/** Start `sluice run -c file` with JSON logs and an admin API on a free port. */
export async function runSluice(
  file: string,
  extra: string[] = [],
  env: Record<string, string> = {},
): Promise<SluiceProcess> {
  const p = new SluiceProcess(
    ['run', '-c', file, '--admin', '127.0.0.1:0', '--log-format', 'json', '--log-level', 'debug', ...extra],
    env,
  )
  await p.started()
  return p
}

/** Connect, send `data`, half-close, read everything until EOF. Resolves with what came back or the error code. */
export function exchange(
  port: number,
  data: string | Buffer,
  opts: { host?: string; localAddress?: string; timeoutMs?: number; halfClose?: boolean } = {},
): Promise<{ data: Buffer; error: string | null }> {
  return new Promise((resolve) => {
    const chunks: Buffer[] = []
    const s = connect({ host: opts.host ?? '127.0.0.1', port, localAddress: opts.localAddress })
    const timer = setTimeout(() => {
      s.destroy()
      resolve({ data: Buffer.concat(chunks), error: 'TIMEOUT' })
    }, opts.timeoutMs ?? 5000)
    s.on('data', (d: Buffer) => chunks.push(d))
    s.on('error', (err: NodeJS.ErrnoException) => {
      clearTimeout(timer)
      resolve({ data: Buffer.concat(chunks), error: err.code ?? err.message })
    })
    s.on('end', () => {
      clearTimeout(timer)
      s.destroy()
      resolve({ data: Buffer.concat(chunks), error: null })
    })
    s.on('connect', () => {
      s.write(data)
      if (opts.halfClose !== false) s.end()
    })
  })
}

/** An open connection that echoes: `say(text)` resolves with the reply of the same length. */
export async function openEcho(
  port: number,
  host = '127.0.0.1',
): Promise<{ socket: Socket; say(text: string): Promise<string> }> {
  const socket = connect({ host, port })
  await new Promise<void>((res, rej) => {
    socket.once('connect', () => res())
    socket.once('error', rej)
  })
  let buffer = ''
  socket.setEncoding('utf8')
  socket.on('data', (d: string) => {
    buffer += d
  })
  socket.on('error', () => {})
  return {
    socket,
    async say(text: string) {
      buffer = ''
      socket.write(text)
      return waitFor(
        () => (buffer.length >= text.length ? buffer : null),
        `echo of ${JSON.stringify(text)}`,
        3000,
        5,
      )
    },
  }
}

/** Whether a TCP connect to the port is refused (or reset) rather than accepted. */
export function refused(port: number, host = '127.0.0.1'): Promise<boolean> {
  return new Promise((resolve) => {
    const s = connect({ host, port })
    s.once('connect', () => {
      s.destroy()
      resolve(false)
    })
    s.once('error', () => resolve(true))
  })
}

/** Fetch a URL from the admin API. */
export async function getJson<T = unknown>(url: string): Promise<T> {
  const res = await fetch(url)
  return (await res.json()) as T
}

/**
 * A target that never completes a TCP handshake: a listener with a backlog of 0 that never
 * accepts, its queue already full, so further SYNs are dropped and connects time out.
 * (Node always accepts, so python3 holds the socket.)
 */
export async function blackhole(): Promise<{ port: number; close(): void }> {
  const code = [
    'import socket,sys,time',
    's=socket.socket(); s.bind(("127.0.0.1",0)); s.listen(0)',
    'c=socket.socket(); c.connect(s.getsockname())',
    'print(s.getsockname()[1], flush=True)',
    'sys.stdin.read()',
  ].join('\n')
  const child = spawn('python3', ['-c', code], { stdio: ['pipe', 'pipe', 'inherit'] })
  const port = await new Promise<number>((resolve, reject) => {
    child.stdout!.once('data', (d: Buffer) => resolve(Number(d.toString().trim())))
    child.once('error', reject)
  })
  return { port, close: () => child.kill() }
}

/** A Controller running in this process with `doc` (sluice's own format) and no admin API. */
export async function engine(doc: Record<string, unknown>) {
  const { Controller } = await import('../src/engine/control.ts')
  const { normalizeConfigObject } = await import('../src/config/normalize.ts')
  const { createLogger } = await import('../src/observe/logger.ts')
  const { createMetrics } = await import('../src/observe/metrics.ts')
  const lines: LogLine[] = []
  const log = createLogger({
    level: 'debug',
    format: 'json',
    stream: Object.assign(
      new (await import('node:stream')).Writable({
        write(chunk, _enc, cb) {
          for (const l of String(chunk).split('\n')) if (l) lines.push(JSON.parse(l))
          cb()
        },
      }),
    ),
  })
  const metrics = createMetrics()
  const { createService } = await import('../src/kinds/registry.ts')
  const controller = new Controller({ file: null, log, metrics, create: createService })
  await controller.start({ config: normalizeConfigObject({ admin: false, ...doc }) })
  return {
    controller,
    metrics,
    logs: lines,
    /** Apply another config through the same plan/apply path a reload takes. */
    apply: (next: Record<string, unknown>) =>
      controller.applyConfig(normalizeConfigObject({ admin: false, ...next })),
    metric: async (name: string, labels: Record<string, string>) => {
      const m = (await metrics.registry.getSingleMetric(name)?.get())?.values ?? []
      return m.find((v) => Object.entries(labels).every(([k, x]) => v.labels[k] === x))?.value ?? 0
    },
    stop: () => controller.shutdown(),
  }
}

/**
 * Per-file test resources, released after the file's tests in reverse order: a temp dir, and
 * starters for fixtures, sluice processes and in-process engines that register their own cleanup.
 */
export function testScope() {
  const tmp = tempDir()
  const cleanups: (() => unknown)[] = []
  after(async () => {
    for (const c of cleanups.reverse()) await c()
    tmp.cleanup()
  })
  return {
    tmp,
    /** Run `fn` when the file's tests are done. */
    defer(fn: () => unknown): void {
      cleanups.push(fn)
    },
    /** Await a fixture and close it at the end. */
    async fixture<T extends { close(): Promise<void> }>(f: Promise<T>): Promise<T> {
      const x = await f
      cleanups.push(() => x.close())
      return x
    },
    /** `sluice run -c file` as a child process, killed at the end. */
    async sluice(
      file: string,
      extra: string[] = [],
      env: Record<string, string> = {},
    ): Promise<SluiceProcess> {
      const p = await runSluice(file, extra, env)
      cleanups.push(() => p.stop())
      return p
    },
    /** A child process that must exit by itself; killed at the end if it did not. */
    process(args: string[], env: Record<string, string> = {}): SluiceProcess {
      const p = new SluiceProcess(args, env)
      cleanups.push(() => p.stop())
      return p
    },
    /** An in-process engine, shut down at the end. */
    async engine(doc: Record<string, unknown>) {
      const e = await engine(doc)
      cleanups.push(() => e.stop())
      return e
    },
  }
}

/** curl with the given arguments; resolves with status, headers text and body. */
export async function curl(args: string[]): Promise<{ status: number; head: string; body: string }> {
  const { stdout } = await promisify(execFile)('curl', ['-s', '-i', '--max-time', '10', ...args], {
    encoding: 'latin1',
    maxBuffer: 8 << 20,
  })
  // Interim responses (100 Continue) come first; the final one is the last head.
  const parts = stdout.split('\r\n\r\n')
  let i = 0
  while (/^HTTP\/1\.1 1\d\d/.test(parts[i] ?? '') && i < parts.length - 1) i++
  const head = parts[i] ?? ''
  return { status: Number(head.split(' ')[1]), head, body: parts.slice(i + 1).join('\r\n\r\n') }
}
