// Structured logs: one line per event, JSON by default, readable on a TTY. Written to stderr so
// that stdout stays free for command output (`sluice check`, `sluice test`).
import { pino } from 'pino'
import type { LogFormat, LogLevel } from '../config/types.ts'

export type Logger = pino.Logger

const levelNames: Record<number, string> = {
  10: 'TRACE',
  20: 'DEBUG',
  30: 'INFO',
  40: 'WARN',
  50: 'ERROR',
  60: 'FATAL',
}
const colors: Record<number, string> = { 10: '90', 20: '36', 30: '32', 40: '33', 50: '31', 60: '35' }

/** A pino destination that turns each JSON line into `time LEVEL msg key=value …`. */
export function prettyStream(out: NodeJS.WritableStream, color: boolean): { write(line: string): void } {
  return {
    write(line: string) {
      let rec: Record<string, unknown>
      try {
        rec = JSON.parse(line)
      } catch {
        out.write(line)
        return
      }
      const { level, time, msg, pid: _pid, ...rest } = rec
      const t =
        typeof time === 'string' ? time.slice(11, 23) : new Date(Number(time)).toISOString().slice(11, 23)
      const name = (levelNames[level as number] ?? String(level)).padEnd(5)
      const tag = color ? `\x1b[${colors[level as number] ?? '0'}m${name}\x1b[0m` : name
      const fields = Object.entries(rest)
        .map(([k, v]) => `${k}=${typeof v === 'string' && !/\s/.test(v) ? v : JSON.stringify(v)}`)
        .join(' ')
      out.write(`${t} ${tag} ${msg ?? ''}${fields ? `  ${fields}` : ''}\n`)
    },
  }
}

export interface LoggerOptions {
  level: LogLevel
  format: LogFormat
  /** Where lines go; stderr by default. */
  stream?: NodeJS.WritableStream & { fd?: number }
}

/** The root logger. `auto` format is readable on a TTY and JSON otherwise. */
export function createLogger(opts: LoggerOptions): Logger {
  const out = opts.stream ?? process.stderr
  const tty = Boolean((out as { isTTY?: boolean }).isTTY)
  const pretty = opts.format === 'pretty' || (opts.format === 'auto' && tty)
  const destination = pretty
    ? prettyStream(out, tty)
    : opts.stream
      ? opts.stream
      : pino.destination({ fd: 2, sync: false })
  return pino(
    {
      level: opts.level,
      base: { pid: process.pid },
      timestamp: pino.stdTimeFunctions.isoTime,
      formatters: { level: (_label, number) => ({ level: number }) },
    },
    destination as pino.DestinationStream,
  )
}

/**
 * Write out buffered log lines before the process exits, in order: an asynchronous write still in
 * flight finishes first (a synchronous flush alone would put the lines queued after it before it).
 */
export function flushLogger(log: Logger): Promise<void> {
  const stream = (log as unknown as Record<symbol, unknown>)[pino.symbols.streamSym] as
    | { flushSync?: () => void; _writing?: boolean }
    | undefined
  return new Promise((resolve) => {
    const started = Date.now()
    const finish = () => {
      // A stderr that no longer drains must not hold the exit past a second.
      if (stream?._writing && Date.now() - started < 1000) {
        setTimeout(finish, 2)
        return
      }
      try {
        stream?.flushSync?.()
      } catch {
        // a closed stderr must not turn an exit into a crash
      }
      resolve()
    }
    finish()
  })
}
