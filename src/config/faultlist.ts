// Pieces of app normalisation shared by every app kind: issue paths, fault lists, TLS settings.
import { dirname, resolve } from 'node:path'
import * as v from 'valibot'
import type { ConfigIssue } from '../errors.ts'
import { checkFaultNames, type FaultSpec, parseFault } from './faults.ts'
import { parseSchedule, resolveSchedule } from './schedule.ts'
import type { TlsSpec } from './types.ts'

/** Validate a list of faults (native format) at `path`; schedules in percent need a run duration. */
export function parseFaults(
  list: readonly unknown[] | undefined,
  path: string,
  issues: ConfigIssue[],
  runDuration: number | null,
  itemPath: (i: number) => string = (i) => `${path}[${i}]`,
): FaultSpec[] {
  const out: FaultSpec[] = []
  ;(list ?? []).forEach((raw, i) => {
    const at = itemPath(i)
    const r = parseFault(raw, at)
    issues.push(...r.issues)
    if (!r.fault) return
    if (r.fault.schedule !== null) {
      const windows = parseSchedule(r.fault.schedule)
      const resolved = typeof windows === 'string' ? windows : resolveSchedule(windows, runDuration)
      if (typeof resolved === 'string') {
        issues.push({ path: `${at}.schedule`, message: resolved })
        return
      }
    }
    out.push(r.fault)
  })
  issues.push(...checkFaultNames(out, path))
  return out
}

export function tlsSpec(raw: unknown, file: string | null): TlsSpec | null {
  if (raw === undefined) return null
  if (raw === true) return { servername: null, caFile: null, insecure: false }
  const o = raw as { servername?: string; ca_file?: string; insecure?: boolean }
  const caFile = o.ca_file ? (file ? resolve(dirname(file), o.ca_file) : resolve(o.ca_file)) : null
  return { servername: o.servername ?? null, caFile, insecure: o.insecure ?? false }
}

/** Turn a valibot issue path into `apps[2].targets[0]`. */
export function issuePath(path: readonly { key: unknown }[] | undefined, prefix = ''): string {
  let out = prefix
  for (const item of path ?? []) {
    out += typeof item.key === 'number' ? `[${item.key}]` : out ? `.${String(item.key)}` : String(item.key)
  }
  return out
}

/** Validate `raw` against `schema`; on failure every issue is added under `at` and null returned. */
export function parseAt<S extends v.GenericSchema>(
  schema: S,
  raw: unknown,
  at: string,
  issues: ConfigIssue[],
): v.InferOutput<S> | null {
  const parsed = v.safeParse(schema, raw, { abortEarly: false })
  if (parsed.success) return parsed.output
  for (const i of parsed.issues) issues.push({ path: issuePath(i.path, at), message: i.message })
  return null
}
