// Read a config file in any accepted format and produce a Config, or a ConfigError that names the
// file, the line where it can, the field path and the reason. No side effects beyond reading.
import { existsSync, readFileSync } from 'node:fs'
import { extname } from 'node:path'
import { parse as parseToml, TomlError } from 'smol-toml'
import * as v from 'valibot'
import { LineCounter, parseDocument } from 'yaml'
import { ConfigError, type ConfigIssue } from '../errors.ts'
import { detectFormat, formats } from './formats/index.ts'
import { fromNative, issuePath } from './normalize.ts'
import { configFileIssues } from './tlsfiles.ts'
import type { Config } from './types.ts'

export type Syntax = 'json' | 'yaml' | 'toml'

/** What a loaded file produced: the config and the raw text's syntax (for reporting). */
export interface Loaded {
  config: Config
  syntax: Syntax
  text: string
}

/** Where `run` and `check` look for the config when no -c is given, in this order. */
export const configLookup =
  '$SLUICE_CONFIG, else $FPROXY_CONFIG_PATH, else $SIDECAR_CONFIG, else ./sluice.yaml, else ./config.yaml'

/**
 * The config file to read: `-c`, else the first of $SLUICE_CONFIG, $FPROXY_CONFIG_PATH (fproxy's) and
 * $SIDECAR_CONFIG (the sidecar's) that is set, else ./sluice.yaml, else ./config.yaml (tcpproxy's
 * and the sidecar's own default) when only that one exists.
 */
export function configFile(flag: string | undefined, env: NodeJS.ProcessEnv = process.env): string {
  const named = flag || env.SLUICE_CONFIG || env.FPROXY_CONFIG_PATH || env.SIDECAR_CONFIG
  if (named) return named
  return !existsSync('sluice.yaml') && existsSync('config.yaml') ? 'config.yaml' : 'sluice.yaml'
}

/** Read and parse a config file; throws ConfigError. */
export function loadConfigFile(file: string): Loaded {
  const text = readConfigText(file)
  return { ...loadConfigText(text, file), text }
}

/** A config file's text; ERR_CONFIG_NOT_FOUND or ERR_CONFIG_READ naming why it cannot be had. */
export function readConfigText(file: string): string {
  try {
    return readFileSync(file, 'utf8')
  } catch (err) {
    const e = err as NodeJS.ErrnoException
    if (e.code === 'ENOENT') {
      throw new ConfigError('ERR_CONFIG_NOT_FOUND', file, [{ path: '', message: 'no such file' }], {
        cause: err,
      })
    }
    const why = e.code === 'EISDIR' ? 'is a directory, not a file' : `cannot be read (${e.code ?? e.message})`
    throw new ConfigError('ERR_CONFIG_READ', file, [{ path: '', message: why }], { cause: err })
  }
}

/** Parse config text; `file` names it in errors and decides the syntax by extension. */
export function loadConfigText(text: string, file: string): { config: Config; syntax: Syntax } {
  const { doc, syntax } = parseSyntax(text, file)
  if (doc === null || doc === undefined) {
    throw new ConfigError('ERR_CONFIG_INVALID', file, [{ path: '', message: 'the file is empty' }])
  }
  const format = detectFormat(doc)
  let nativeDoc: unknown = doc
  if (format.schema) {
    const result = v.safeParse(format.schema, doc, { abortEarly: false })
    if (!result.success) {
      const issues = result.issues.map((i) => ({ path: issuePath(i.path), message: i.message }))
      throw invalid(file, text, syntax, issues)
    }
    nativeDoc = format.toNative(result.output)
  }
  const { config, issues } = fromNative(nativeDoc, { file, format: format.name })
  if (!config) {
    throw invalid(
      file,
      text,
      syntax,
      issues.map((i) => ({ ...i, path: format.renamePath(i.path) })),
    )
  }
  return { config, syntax }
}

/**
 * The files a valid config names but does not hold (tunnel certificates, keys and CAs): throws
 * ERR_TUNNEL_CERT naming each field (in the file's own format) and file that cannot be used. `text`,
 * when given, is the config's text, for line numbers.
 */
export function checkConfigFiles(config: Config, text?: string): void {
  const found = configFileIssues(config)
  if (found.length === 0) return
  const file = config.source.file ?? '<config>'
  const format = formats.find((f) => f.name === config.source.format)
  const issues = found.map((i) => ({ ...i, path: format ? format.renamePath(i.path) : i.path }))
  if (text !== undefined && syntaxOf(text, file) !== 'toml') addLines(text, issues)
  throw new ConfigError('ERR_TUNNEL_CERT', file, issues)
}

function invalid(file: string, text: string, syntax: Syntax, issues: ConfigIssue[]): ConfigError {
  if (syntax !== 'toml') addLines(text, issues)
  return new ConfigError('ERR_CONFIG_INVALID', file, issues)
}

function syntaxOf(text: string, file: string): Syntax {
  const ext = extname(file).toLowerCase()
  if (ext === '.json') return 'json'
  if (ext === '.toml') return 'toml'
  if (ext === '.yaml' || ext === '.yml') return 'yaml'
  // TOML table headers ([x], [[x]]) or `key = value` lines; JSON starts with { or [; else YAML.
  if (
    /^\s*\[\[?[A-Za-z_][A-Za-z0-9_.-]*\]\]?\s*$/m.test(text) ||
    /^\s*[A-Za-z_][A-Za-z0-9_-]*\s*=/m.test(text)
  ) {
    return 'toml'
  }
  const first = text.trimStart()[0]
  return first === '{' || first === '[' ? 'json' : 'yaml'
}

function parseSyntax(text: string, file: string): { doc: unknown; syntax: Syntax } {
  const syntax = syntaxOf(text, file)
  const fail = (line: number | undefined, message: string, cause: unknown) =>
    new ConfigError('ERR_CONFIG_PARSE', file, [{ path: '', message, ...(line ? { line } : {}) }], { cause })
  if (syntax === 'json') {
    try {
      return { doc: JSON.parse(text), syntax }
    } catch (err) {
      const msg = (err as Error).message
      const line = /line (\d+)/.exec(msg)?.[1]
      throw fail(line ? Number(line) : undefined, `invalid JSON: ${msg}`, err)
    }
  }
  if (syntax === 'toml') {
    try {
      return { doc: parseToml(text), syntax }
    } catch (err) {
      const line = err instanceof TomlError ? err.line : undefined
      const msg = ((err as Error).message.split('\n')[0] ?? '').trim()
      throw fail(line, `invalid TOML: ${msg}`, err)
    }
  }
  const lines = new LineCounter()
  const doc = parseDocument(text, { lineCounter: lines, uniqueKeys: true, prettyErrors: false })
  const error = doc.errors[0]
  if (error) {
    const line = lines.linePos(error.pos[0]).line
    throw fail(line, `invalid YAML: ${error.message.split('\n')[0]}`, error)
  }
  try {
    return { doc: doc.toJS({ maxAliasCount: 1000 }), syntax }
  } catch (err) {
    // An alias whose anchor is missing or comes later (*a before &a), or too many aliases: the
    // document parsed but has no value.
    throw fail(undefined, `invalid YAML: ${(err as Error).message}`, err)
  }
}

/** Find the line of each issue's field in YAML or JSON text. */
function addLines(text: string, issues: ConfigIssue[]): void {
  const lines = new LineCounter()
  const doc = parseDocument(text, { lineCounter: lines })
  if (doc.errors.length) return
  for (const issue of issues) {
    if (!issue.path) continue
    const keys = issue.path.split(/\.|\[(\d+)\]/).filter((k) => k !== undefined && k !== '')
    const path = keys.map((k) => (/^\d+$/.test(k) ? Number(k) : k))
    // Walk up until a node exists: an unknown or missing key has no node of its own.
    for (let n = path.length; n > 0; n--) {
      const node = doc.getIn(path.slice(0, n), true) as { range?: [number, number, number] } | undefined
      if (node?.range) {
        issue.line = lines.linePos(node.range[0]).line
        break
      }
    }
  }
}
