// Control state: the current config, reloads (parse → validate → plan → apply), file watching,
// active health checks. The data path (Supervisor) only receives plans and health results.
import { createHash } from 'node:crypto'
import { type FSWatcher, unwatchFile, watch, watchFile } from 'node:fs'
import { basename, dirname, resolve } from 'node:path'
import { HealthMonitor } from '../balance/health.ts'
import { DRAIN_TIMEOUT, dnsDefaults } from '../config/defaults.ts'
import { checkConfigFiles, loadConfigFile, loadConfigText, readConfigText } from '../config/load.ts'
import { cloneOverlay, compose, emptyOverlay, type Overlay } from '../config/overlay.ts'
import { describePlan, isEmpty, plan } from '../config/plan.ts'
import type { AdminSpec, Config } from '../config/types.ts'
import { ConfigError, SluiceError } from '../errors.ts'
import { DnsCache } from '../net/dns.ts'
import type { Logger } from '../observe/logger.ts'
import type { Metrics } from '../observe/metrics.ts'
import { version } from '../version.ts'
import type { ServiceFactory } from './contract.ts'
import { Supervisor } from './supervisor.ts'

export type ReloadTrigger = 'start' | 'watch' | 'signal' | 'api'

export interface ReloadResult {
  at: string
  trigger: ReloadTrigger
  result: 'applied' | 'unchanged' | 'rejected'
  plan?: string[]
  error?: string
  code?: string
}

/** Something the controller starts, moves or stops when the admin address changes (the admin server). */
export interface AdminHook {
  apply(spec: AdminSpec | null): Promise<void>
}

export interface ControllerOptions {
  /** The config file; null when the config is given directly (the demo). */
  file: string | null
  log: Logger
  metrics: Metrics
  /** Command-line settings that win over the file, applied to every config loaded. */
  overrides?: (c: Config) => Config
  admin?: AdminHook
  /** Builds the service of each app (src/kinds/registry.ts: the engine knows no kind itself). */
  create: ServiceFactory
}

export class Controller {
  readonly supervisor: Supervisor
  readonly health: HealthMonitor
  readonly log: Logger
  readonly metrics: Metrics
  readonly startedAt = new Date()
  /** The effective config in force: the file's (or the one given) composed with the API overlay. */
  config: Config | null = null
  lastReload: ReloadResult | null = null
  /** The config from the file (or given), CLI overrides applied, before the overlay. */
  #base: Config | null = null
  #overlay: Overlay = emptyOverlay()
  draining = false
  readonly #file: string | null
  readonly #overrides: (c: Config) => Config
  readonly #admin: AdminHook | undefined
  #appliedHash: string | null = null
  /** The digest of the last file text that failed to parse or validate. */
  #rejectedHash: string | null = null
  #queue: Promise<unknown> = Promise.resolve()
  #watcher: FSWatcher | null = null
  #debounce: NodeJS.Timeout | null = null

  constructor(opts: ControllerOptions) {
    this.#file = opts.file ? resolve(opts.file) : null
    this.log = opts.log
    this.metrics = opts.metrics
    this.#overrides = opts.overrides ?? ((c) => c)
    this.#admin = opts.admin
    this.supervisor = new Supervisor({
      metrics: opts.metrics,
      log: opts.log,
      dns: dnsDefaults,
      create: opts.create,
    })
    // Health checks resolve names with their own cache, as a separate control process would.
    this.health = new HealthMonitor(
      new DnsCache(dnsDefaults),
      (c) => {
        this.supervisor.setTargetHealth(c.app, c.target, c.up)
        const fields = { app: c.app, target: c.target, detail: c.detail }
        if (c.up) this.log.info(fields, 'target up: health checks pass')
        else this.log.warn({ ...fields, code: 'ERR_TARGET_DOWN' }, 'target down: health checks fail')
      },
      (app, target, r) =>
        this.metrics.healthChecks.series({ app, target, result: r.ok ? 'ok' : 'fail' }).value++,
    )
  }

  get file(): string | null {
    return this.#file
  }

  /**
   * Apply the first config: the one given (already loaded, with its file text when it came from
   * the file), or the file's. Throws (ConfigError, ERR_TUNNEL_CERT, ERR_LISTEN) when sluice cannot start.
   */
  async start(initial?: { config: Config; text?: string }): Promise<void> {
    let loaded = initial
    if (!loaded) {
      if (!this.#file) throw new SluiceError('ERR_USAGE', 'no config file and no config given')
      loaded = loadConfigFile(this.#file)
    }
    checkConfigFiles(loaded.config, loaded.text)
    const base = this.#overrides(loaded.config)
    try {
      await this.#apply(this.#composed(base, this.#overlay), 'start')
    } catch (err) {
      // Nothing is running to stay in force: the start fails with the cause itself (ERR_LISTEN).
      const cause = (err as Error).cause
      if (err instanceof SluiceError && err.code === 'ERR_RELOAD' && cause instanceof SluiceError) throw cause
      throw err
    }
    this.#base = base
    this.#appliedHash = loaded.text === undefined ? null : digest(loaded.text)
  }

  /** compose(), with composition problems as a ConfigError. */
  #composed(base: Config, overlay: Overlay): Config {
    const { config, issues } = compose(base, overlay)
    if (issues.length) throw new ConfigError('ERR_CONFIG_INVALID', base.source.file ?? '<api>', issues)
    return config
  }

  /** The API overlay as it stands (read-only). */
  get overlay(): Readonly<Overlay> {
    return this.#overlay
  }

  /**
   * Change the API overlay: `fn` edits a copy (throwing to refuse), which is composed with the
   * file's config, checked, planned and applied. On any failure nothing changes. Serialised with reloads.
   */
  change<T>(fn: (overlay: Overlay, current: Config) => T): Promise<{ result: ReloadResult; value: T }> {
    const run = this.#queue.then(async () => {
      if (!this.#base || !this.config) throw new SluiceError('ERR_RELOAD', 'sluice is not running')
      const next = cloneOverlay(this.#overlay)
      const value = fn(next, this.config)
      const result = await this.#apply(this.#composed(this.#base, next), 'api')
      this.#overlay = next
      return { result, value }
    })
    this.#queue = run.catch(() => {})
    return run
  }

  /** Reload the file. Serialised: one reload at a time. Never throws; the result says what happened. */
  reload(trigger: ReloadTrigger, force = false): Promise<ReloadResult> {
    const run = this.#queue.then(() => this.#reload(trigger, force))
    this.#queue = run.catch(() => {})
    return run
  }

  async #reload(trigger: ReloadTrigger, force: boolean): Promise<ReloadResult> {
    const at = new Date().toISOString()
    if (!this.#file || this.draining) return { at, trigger, result: 'unchanged' }
    let base: Config
    let next: Config
    let hash: string | null = null
    try {
      const text = readConfigText(this.#file)
      hash = digest(text)
      // The same text as the one in force, or as the last one rejected (fs.watch and the poll both
      // report one save): nothing new to apply or to say. SIGHUP (force) re-reads and reports again.
      if (!force && (hash === this.#appliedHash || hash === this.#rejectedHash))
        return { at, trigger, result: 'unchanged' }
      const parsed = loadConfigText(text, this.#file).config
      // Certificate files that cannot be used: the running ones stay (a rotation half done).
      checkConfigFiles(parsed, text)
      base = this.#overrides(parsed)
      next = this.#composed(base, this.#overlay)
    } catch (err) {
      this.#rejectedHash = hash
      return this.#rejected(at, trigger, err)
    }
    try {
      const result = await this.#apply(next, trigger)
      this.#base = base
      this.#appliedHash = hash
      this.#rejectedHash = null
      return result
    } catch (err) {
      return this.#rejected(at, trigger, err)
    }
  }

  #rejected(at: string, trigger: ReloadTrigger, err: unknown): ReloadResult {
    const e = err as SluiceError
    const result: ReloadResult = {
      at,
      trigger,
      result: 'rejected',
      error: e.message,
      code: e.code ?? 'ERR_RELOAD',
    }
    this.lastReload = result
    this.metrics.reloads.series({ result: 'rejected' }).value++
    const fields: Record<string, unknown> = { trigger, code: result.code, error: e.message }
    if (err instanceof ConfigError) fields.issues = err.issues
    this.log.error({ ...fields, code: result.code }, 'config rejected; the running config stays in force')
    return result
  }

  /** Apply a config given directly (the native admin API, tests): the same plan/apply path as a reload. Throws on failure. */
  applyConfig(next: Config): Promise<ReloadResult> {
    const run = this.#queue.then(async () => {
      // As a reload does: certificate files that cannot be used refuse the config (ERR_TUNNEL_CERT).
      checkConfigFiles(next)
      const base = this.#overrides(next)
      const result = await this.#apply(this.#composed(base, this.#overlay), 'api')
      this.#base = base
      return result
    })
    this.#queue = run.catch(() => {})
    return run
  }

  async #apply(next: Config, trigger: ReloadTrigger): Promise<ReloadResult> {
    const p = plan(this.config, next)
    const steps = describePlan(p)
    const at = new Date().toISOString()
    if (trigger !== 'start' && isEmpty(p) && !p.adminChanged && !p.logChanged) {
      // Files a config names but does not hold (tunnel certificates) may have changed on their own.
      this.supervisor.refreshFiles()
      this.config = next
      const result: ReloadResult = { at, trigger, result: 'unchanged', plan: steps }
      this.lastReload = result
      this.metrics.reloads.series({ result: 'unchanged' }).value++
      this.log.info({ trigger }, 'config reloaded: no change')
      return result
    }
    if (p.logChanged) this.log.level = next.log.level
    const { warnings } = await this.supervisor.apply(p)
    if (trigger !== 'start') this.supervisor.refreshFiles()
    if (p.adminChanged && this.#admin) {
      try {
        await this.#admin.apply(next.admin)
      } catch (err) {
        if (trigger === 'start') throw err
        warnings.push((err as Error).message)
        this.log.error(
          { code: (err as SluiceError).code ?? 'ERR_LISTEN', error: (err as Error).message },
          'admin API not moved',
        )
      }
    }
    this.config = next
    this.health.sync(next.apps)
    const result: ReloadResult = { at, trigger, result: 'applied', plan: steps }
    if (warnings.length) result.error = warnings.join('; ')
    this.lastReload = result
    this.metrics.reloads.series({ result: 'applied' }).value++
    this.metrics.lastReload.series({}).value = Date.now() / 1000
    if (trigger === 'start') {
      this.log.info(
        {
          file: next.source.file,
          format: next.source.format,
          apps: next.apps.map((a) => ({
            name: a.name,
            listen: this.#boundPorts(a.name),
            ...this.supervisor.services.get(a.name)?.summary(),
          })),
          version,
        },
        `sluice started: ${next.apps.length} app(s), ${this.supervisor.listeners.size} listener(s)`,
      )
    } else this.log.info({ trigger, plan: steps }, 'config reloaded')
    return result
  }

  #boundPorts(app: string): string[] {
    return [...this.supervisor.listeners.values()].filter((l) => l.app === app).map((l) => l.key)
  }

  /** Reload when the file changes. Watches the directory, so rename-over saves are seen too. */
  watch(): void {
    if (!this.#file || this.#watcher) return
    const file = this.#file
    const name = basename(file)
    const schedule = () => {
      if (this.#debounce) clearTimeout(this.#debounce)
      this.#debounce = setTimeout(() => {
        this.#debounce = null
        this.reload('watch')
      }, 75)
    }
    try {
      this.#watcher = watch(dirname(file), (_event, f) => {
        // Kubernetes ConfigMaps swap a `..data` symlink instead of touching the file itself.
        if (f === null || f === name || String(f).startsWith('..')) schedule()
      })
      this.#watcher.on('error', (err) =>
        this.log.warn(
          { code: 'ERR_CONFIG_WATCH', error: err.message },
          'config watch failed; SIGHUP still reloads',
        ),
      )
    } catch (err) {
      this.log.warn(
        { code: 'ERR_CONFIG_WATCH', error: (err as Error).message },
        'cannot watch the config directory; SIGHUP still reloads',
      )
    }
    // A slow poll as a safety net where directory events are not delivered (network filesystems).
    watchFile(file, { interval: 2000, persistent: false }, schedule)
  }

  /** Stop accepting, drain up to the drain timeout, stop checks. Resolves true if every connection ended on its own. */
  async shutdown(): Promise<boolean> {
    this.draining = true
    this.#watcher?.close()
    if (this.#file) unwatchFile(this.#file)
    if (this.#debounce) clearTimeout(this.#debounce)
    this.health.stop()
    const deadline = this.config?.drainTimeout ?? DRAIN_TIMEOUT
    const listeners = this.supervisor.listeners.size
    const open = this.#openConnections()
    return this.supervisor.shutdown(deadline, () => {
      if (open > 0)
        this.log.info(
          { listeners, connections: open, deadlineMs: deadline },
          'listeners closed; draining connections',
        )
      else this.log.info({ listeners }, 'listeners closed; no connection open')
    })
  }

  #openConnections(): number {
    let n = 0
    for (const l of this.supervisor.listeners.values()) n += l.conns.size
    return n
  }

  /** Everything the admin status shows. */
  status() {
    const data = this.supervisor.snapshot()
    return {
      version,
      pid: process.pid,
      startedAt: this.startedAt.toISOString(),
      uptimeSeconds: Math.round((Date.now() - this.startedAt.getTime()) / 1000),
      state: this.draining ? 'draining' : 'running',
      config: { file: this.#file, format: this.config?.source.format ?? null },
      lastReload: this.lastReload,
      apps: data.apps.map((a) => ({
        ...a,
        targets: a.targets.map((t) => ({ ...t, check: this.health.status(a.name, t.address) })),
      })),
      draining: data.draining,
      dns: this.supervisor.dns.snapshot(),
    }
  }
}

function digest(text: string): string {
  return createHash('sha256').update(text).digest('hex')
}
