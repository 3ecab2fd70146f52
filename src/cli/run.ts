// `sluice run`: load the config, start the engine, the admin API and the file watcher, then serve
// until a signal. Also the wiring the demo reuses.

import { type Running, startEngine } from '../api/engine.ts'
import { type ListenAddress, parseListen } from '../config/address.ts'
import { configFile, configLookup, loadConfigFile } from '../config/load.ts'
import { parseAdmin } from '../config/normalize.ts'
import type { AppSpec, Config, LogFormat, LogLevel } from '../config/types.ts'
import { announceReady, handleSignals } from '../engine/lifecycle.ts'
import { type ConfigIssue, SluiceError } from '../errors.ts'
import { flushLogger } from '../observe/logger.ts'
import { notify } from '../observe/notify.ts'
import { exitCode, parse, printError } from './args.ts'

export const runHelp = `Usage: sluice run [-c FILE] [--listen ADDR] [--admin HOST:PORT|off] [--no-watch] [--log-level LEVEL] [--log-format FORMAT]

Run the proxy with a config file in sluice's format (YAML, JSON or TOML), Fly.io JSON,
tcpproxy YAML or the sidecar dispatcher's YAML (recognised without a flag). The file is watched and reloaded on change; SIGHUP
reloads too. SIGINT/SIGTERM drain connections and exit; a second signal exits at once (130).

  -c, --config FILE     config file (default: ${configLookup})
      --listen ADDR     listen address of the config's one app ("5000", "127.0.0.1:5000"); for the
                        sidecar's YAML it wins over $SIDECAR_PORT (default 5000)
      --admin ADDR      admin API address (default 127.0.0.1:8474; "off" to disable; port 0 picks one)
      --no-watch        do not watch the file; reload only on SIGHUP or POST /reload
      --log-level L     trace, debug, info, warn, error, fatal, silent (default: config, else info)
      --log-format F    json, pretty or auto (default: config, else auto: pretty on a TTY)
`

const levels = ['trace', 'debug', 'info', 'warn', 'error', 'fatal', 'silent']
const logFormats = ['auto', 'json', 'pretty']

export interface Overrides {
  admin?: string
  /** Listen address for a config with one app (the sidecar's YAML has none of its own). */
  listen?: string
  logLevel?: string
  logFormat?: string
}

/** Check command-line settings once, and return the function that lays them over every config. */
export function overrides(o: Overrides): (c: Config) => Config {
  const level = o.logLevel ?? process.env.SLUICE_LOG_LEVEL
  if (level !== undefined && !levels.includes(level)) {
    throw new SluiceError('ERR_USAGE', `--log-level must be one of ${levels.join(', ')}, not "${level}"`)
  }
  if (o.logFormat !== undefined && !logFormats.includes(o.logFormat)) {
    throw new SluiceError(
      'ERR_USAGE',
      `--log-format must be one of ${logFormats.join(', ')}, not "${o.logFormat}"`,
    )
  }
  let admin: Config['admin'] | undefined
  if (o.admin !== undefined) {
    if (o.admin === 'off' || o.admin === 'false') admin = null
    else {
      const issues: ConfigIssue[] = []
      admin = parseAdmin(o.admin, process.env.SLUICE_ADMIN_TOKEN ?? null, '--admin', issues)
      if (issues.length) throw new SluiceError('ERR_USAGE', `--admin: ${issues[0]!.message}`)
    }
  }
  let listen: ListenAddress | undefined
  if (o.listen !== undefined) {
    const l = parseListen(o.listen)
    if (typeof l === 'string') throw new SluiceError('ERR_USAGE', `--listen: ${l}`)
    listen = l
  }
  return (c) => ({
    ...c,
    ...(admin !== undefined ? { admin } : {}),
    ...(listen !== undefined ? { apps: withListen(c.apps, listen) } : {}),
    log: {
      level: (level as LogLevel | undefined) ?? c.log.level,
      format: (o.logFormat as LogFormat | undefined) ?? c.log.format,
    },
  })
}

function withListen(apps: AppSpec[], listen: ListenAddress): AppSpec[] {
  if (apps.length !== 1)
    throw new SluiceError(
      'ERR_USAGE',
      `--listen needs a config with exactly one app; this one has ${apps.length}`,
    )
  return [{ ...apps[0]!, listen: [listen] }]
}

/** Signals end the engine the same way for every command: drain, close the admin API, flush logs. */
export function handleRunningSignals({ controller, admin, log }: Running): () => void {
  let exiting = false
  return handleSignals(controller, {
    beforeExit: () => admin.close(),
    exit: (code) => {
      // The first exit wins (a second signal may come while the logs are flushed).
      if (exiting) return
      exiting = true
      void flushLogger(log).then(() => process.exit(code))
    },
  })
}

/** A start-up failure as one STATUS= line: its code and message, problems joined, at most 500 characters. */
export function failedStatus(err: unknown): string {
  const code = err instanceof SluiceError ? `${err.code}: ` : ''
  const text = `failed to start: ${code}${(err as Error)?.message ?? String(err)}`
    .replace(/:\s*\n\s*/g, ': ')
    .replace(/\s*\n\s*/g, '; ')
    .trim()
  return text.length > 500 ? `${text.slice(0, 499)}…` : text
}

export async function run(argv: string[]): Promise<number | null> {
  const { values } = parse('run', argv, {
    config: { type: 'string', short: 'c' },
    admin: { type: 'string' },
    'no-watch': { type: 'boolean' },
    listen: { type: 'string' },
    'log-level': { type: 'string' },
    'log-format': { type: 'string' },
  })
  if (values.help) {
    process.stdout.write(runHelp)
    return 0
  }
  const file = configFile(values.config)
  let running: Running
  try {
    const over = overrides({
      admin: values.admin,
      listen: values.listen,
      logLevel: values['log-level'],
      logFormat: values['log-format'],
    })
    const loaded = loadConfigFile(file)
    running = await startEngine(loaded, { file, overrides: over })
  } catch (err) {
    printError(err)
    // The service manager shows why (systemctl status) before the exit is noticed.
    await notify([`STATUS=${failedStatus(err)}`])
    return exitCode(err)
  }
  if (!values['no-watch']) running.controller.watch()
  handleRunningSignals(running)
  void announceReady(running.controller)
  return null
}
