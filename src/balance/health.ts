// Active health checks: per target, connect (and optionally send bytes and expect a reply) every
// interval; `fall` failures in a row mark it down, `rise` successes mark it up. Runs on the control
// side and reports transitions; the data path only learns "up" or "down".
import type { Socket } from 'node:net'
import type { AppSpec, HealthSpec, TargetSpec } from '../config/types.ts'
import { ConnectError } from '../errors.ts'
import { dial } from '../net/dial.ts'
import type { DnsCache } from '../net/dns.ts'

export interface HealthChange {
  app: string
  target: string
  up: boolean
  detail: string
}

export interface CheckResult {
  ok: boolean
  detail: string
}

/** One check: connect within `timeout`, then send `send` and wait for `expect` if set. */
export async function checkOnce(target: TargetSpec, spec: HealthSpec, dns: DnsCache): Promise<CheckResult> {
  const started = Date.now()
  let socket: Socket
  try {
    socket = await dial(target, { timeout: spec.timeout, dns })
  } catch (err) {
    return { ok: false, detail: err instanceof ConnectError ? `${err.reason}: ${err.message}` : String(err) }
  }
  if (spec.send === null && spec.expect === null) {
    socket.destroy()
    return { ok: true, detail: 'connected' }
  }
  const left = Math.max(1, spec.timeout - (Date.now() - started))
  return new Promise<CheckResult>((resolve) => {
    let got = ''
    let settled = false
    const done = (r: CheckResult) => {
      if (settled) return
      settled = true
      socket.destroy()
      resolve(r)
    }
    socket.setTimeout(left, () =>
      done(
        spec.expect === null
          ? { ok: true, detail: 'sent' }
          : { ok: false, detail: `no "${spec.expect}" within timeout` },
      ),
    )
    socket.on('error', (err) =>
      done({ ok: false, detail: `error: ${(err as NodeJS.ErrnoException).code ?? err.message}` }),
    )
    socket.on('data', (d: Buffer) => {
      got += d.toString('latin1')
      if (spec.expect !== null && got.includes(spec.expect)) done({ ok: true, detail: 'expected reply' })
      if (got.length > 65536) done({ ok: false, detail: 'reply too long without the expected text' })
    })
    socket.on('end', () =>
      done(
        spec.expect === null
          ? { ok: true, detail: 'sent' }
          : {
              ok: false,
              detail: `closed without "${spec.expect}" (got ${JSON.stringify(got.slice(0, 40))})`,
            },
      ),
    )
    if (spec.send !== null) socket.write(spec.send)
    if (spec.expect === null) socket.end()
  })
}

class TargetCheck {
  up = true
  streak = 0
  last: CheckResult | null = null
  lastAt = 0
  #timer: NodeJS.Timeout | null = null
  #stopped = false

  readonly app: string
  target: TargetSpec
  spec: HealthSpec
  readonly monitor: HealthMonitor

  constructor(app: string, target: TargetSpec, spec: HealthSpec, monitor: HealthMonitor) {
    this.app = app
    this.target = target
    this.spec = spec
    this.monitor = monitor
  }

  start(delay: number): void {
    this.#timer = setTimeout(() => {
      this.#run().catch((err: Error) => {
        // Keep checking: an unexpected error counts as a failed check.
        if (this.#stopped) return
        this.monitor.onResult(this, { ok: false, detail: `check error: ${err.message}` })
        this.start(this.spec.interval)
      })
    }, delay)
    this.#timer.unref()
  }

  stop(): void {
    this.#stopped = true
    if (this.#timer) clearTimeout(this.#timer)
  }

  async #run(): Promise<void> {
    const result = await checkOnce(this.target, this.spec, this.monitor.dns)
    if (this.#stopped) return
    this.last = result
    this.lastAt = Date.now()
    this.monitor.onResult(this, result)
    // A streak counts in the direction of the change: successes while down, failures while up.
    if (result.ok === this.up) this.streak = 0
    else this.streak++
    const need = this.up ? this.spec.fall : this.spec.rise
    if (this.streak >= need) {
      this.up = !this.up
      this.streak = 0
      this.monitor.onChange({ app: this.app, target: this.target.key, up: this.up, detail: result.detail })
    }
    this.start(this.spec.interval)
  }
}

export interface HealthStatus {
  up: boolean
  lastCheck: string | null
  lastCheckAt: number
}

/** Runs the checks of every app that configures them; follows config changes. */
export class HealthMonitor {
  readonly dns: DnsCache
  #checks = new Map<string, Map<string, TargetCheck>>()
  #onChange: (c: HealthChange) => void
  #onResult: (app: string, target: string, r: CheckResult) => void

  constructor(
    dns: DnsCache,
    onChange: (c: HealthChange) => void,
    onResult: (app: string, target: string, r: CheckResult) => void = () => {},
  ) {
    this.dns = dns
    this.#onChange = onChange
    this.#onResult = onResult
  }

  onChange(c: HealthChange): void {
    this.#onChange(c)
  }

  onResult(check: TargetCheck, r: CheckResult): void {
    this.#onResult(check.app, check.target.key, r)
  }

  /** Start, update or stop checks to match `apps`; a target that stays keeps its state. */
  sync(apps: AppSpec[]): void {
    const wanted = new Set<string>()
    for (const app of apps) {
      if (app.kind !== 'tcp' || !app.health) continue
      wanted.add(app.name)
      const old = this.#checks.get(app.name) ?? new Map<string, TargetCheck>()
      const next = new Map<string, TargetCheck>()
      for (const t of app.targets) {
        if (next.has(t.key)) continue
        let c = old.get(t.key)
        if (c) {
          c.target = t
          c.spec = app.health
          old.delete(t.key)
        } else {
          c = new TargetCheck(app.name, t, app.health, this)
          // Spread first checks over the interval so targets are not all probed at once.
          c.start(Math.floor(Math.random() * Math.min(app.health.interval, 1000)))
        }
        next.set(t.key, c)
      }
      for (const c of old.values()) c.stop()
      this.#checks.set(app.name, next)
    }
    for (const [name, checks] of this.#checks) {
      if (wanted.has(name)) continue
      for (const c of checks.values()) c.stop()
      this.#checks.delete(name)
      // Checks switched off: whatever they said no longer holds.
      for (const c of checks.values())
        if (!c.up)
          this.#onChange({ app: name, target: c.target.key, up: true, detail: 'health checks removed' })
    }
  }

  status(app: string, target: string): HealthStatus | null {
    const c = this.#checks.get(app)?.get(target)
    if (!c) return null
    return { up: c.up, lastCheck: c.last?.detail ?? null, lastCheckAt: c.lastAt }
  }

  stop(): void {
    for (const checks of this.#checks.values()) for (const c of checks.values()) c.stop()
    this.#checks.clear()
  }
}
