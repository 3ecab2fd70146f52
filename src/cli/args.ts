// Argument parsing shared by the commands: util.parseArgs with errors a user can act on.
import { type ParseArgsConfig, parseArgs } from 'node:util'
import { ConfigError, SluiceError } from '../errors.ts'

type Options = NonNullable<ParseArgsConfig['options']>

/** Parse `argv` strictly; unknown flags become ERR_USAGE naming the command's help. */
export function parse<O extends Options>(command: string, argv: string[], options: O, positionals = false) {
  try {
    return parseArgs({
      args: argv,
      options: { help: { type: 'boolean', short: 'h' }, ...options },
      allowPositionals: positionals,
      strict: true,
    })
  } catch (err) {
    throw new SluiceError(
      'ERR_USAGE',
      `${(err as Error).message.split('\n')[0]} (see: sluice ${command} --help)`,
    )
  }
}

/** An integer flag value, or ERR_USAGE naming the flag. */
export function intFlag(name: string, value: string | undefined, fallback: number, min = 0): number {
  if (value === undefined) return fallback
  const n = Number(value)
  if (!Number.isInteger(n) || n < min)
    throw new SluiceError('ERR_USAGE', `--${name} must be a whole number ≥ ${min}, not "${value}"`)
  return n
}

/** Print text to stdout and return exit code 0 (for --help and version). */
export function print(text: string): number {
  process.stdout.write(text)
  return 0
}

/** The exit status for an error: 2 for a usage error, else 1. */
export function exitCode(err: unknown): number {
  return err instanceof SluiceError && err.code === 'ERR_USAGE' ? 2 : 1
}

/** Print an error the way every command does: message, then its code. */
export function printError(err: unknown): void {
  if (err instanceof ConfigError) {
    const what = {
      ERR_CONFIG_NOT_FOUND: 'config file not found',
      ERR_CONFIG_READ: 'cannot read the config file',
      ERR_CONFIG_PARSE: 'the config file does not parse',
      ERR_CONFIG_INVALID: 'invalid config',
      ERR_TUNNEL_CERT: 'a certificate, key or CA file cannot be used',
    }[err.code as string]
    process.stderr.write(`sluice: ${err.code}: ${what ?? err.message}\n`)
    const lines = err.issues.map((i) => {
      const where = i.line ? `${err.file}:${i.line}` : err.file
      return `  ${where}: ${i.path ? `${i.path}: ` : ''}${i.message}`
    })
    process.stderr.write(`${lines.join('\n')}\n`)
    return
  }
  if (err instanceof SluiceError) {
    process.stderr.write(`sluice: ${err.code}: ${err.message}\n`)
    return
  }
  process.stderr.write(`sluice: ${(err as Error)?.stack ?? String(err)}\n`)
}
