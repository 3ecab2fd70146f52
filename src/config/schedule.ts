// Schedules: when a fault is active, as fault's DSL writes it: windows separated by `;`, each
// `start:T,duration:T`, where T is a duration (`5s`, `250ms`, a bare number of seconds) or a
// percentage of the run's total duration (`25%`, which needs one). No duration: until the end.
import { parseDuration } from './units.ts'

export type TimeSpec = { ms: number } | { percent: number }

export interface WindowSpec {
  start: TimeSpec
  duration: TimeSpec | null
}

/** A resolved window, in ms from the schedule's origin; `end` null means open-ended. */
export interface Window {
  start: number
  end: number | null
}

function parseTime(text: string): TimeSpec | string {
  const s = text.trim()
  if (s.endsWith('%')) {
    const n = Number(s.slice(0, -1))
    if (!Number.isFinite(n) || n < 0 || n > 100) return `"${text}" is not a percentage between 0 and 100`
    return { percent: n }
  }
  // fault reads a bare number as seconds (within the same bound as any duration).
  const d = parseDuration(/^\d+(\.\d+)?$/.test(s) ? `${s}s` : s)
  return typeof d === 'string' ? d : { ms: d }
}

/** Parse a schedule; returns the windows or a message saying what is wrong. */
export function parseSchedule(text: string): WindowSpec[] | string {
  const windows: WindowSpec[] = []
  for (const part of text.split(';')) {
    if (!part.trim()) continue
    let start: TimeSpec = { ms: 0 }
    let duration: TimeSpec | null = null
    for (const kv of part.split(',')) {
      if (!kv.trim()) continue
      const idx = kv.indexOf(':')
      const key = (idx < 0 ? kv : kv.slice(0, idx)).trim()
      const value = idx < 0 ? '' : kv.slice(idx + 1)
      if (key !== 'start' && key !== 'duration')
        return `unknown schedule key "${key}" (use start:T,duration:T)`
      const t = parseTime(value)
      if (typeof t === 'string') return `${key}: ${t}`
      if (key === 'start') start = t
      else duration = t
    }
    windows.push({ start, duration })
  }
  if (windows.length === 0) return 'the schedule has no window (use start:T,duration:T)'
  return windows
}

/** Resolve percentages against the total run time; a message if one is needed but missing. */
export function resolveSchedule(specs: WindowSpec[], totalMs: number | null): Window[] | string {
  const ms = (t: TimeSpec): number | string =>
    'ms' in t
      ? t.ms
      : totalMs === null
        ? `${t.percent}% needs a total duration (--duration); write a time such as 5s instead`
        : (totalMs * t.percent) / 100
  const out: Window[] = []
  for (const w of specs) {
    const start = ms(w.start)
    if (typeof start === 'string') return start
    const d = w.duration === null ? null : ms(w.duration)
    if (typeof d === 'string') return d
    out.push({ start, end: d === null ? null : start + d })
  }
  return out.sort((a, b) => a.start - b.start)
}

/** Whether `t` (ms from the origin) falls in a window. */
export function activeAt(windows: Window[], t: number): boolean {
  return windows.some((w) => t >= w.start && (w.end === null || t < w.end))
}

/** The next time after `t` at which the active state changes, or null if it never does again. */
export function nextChange(windows: Window[], t: number): number | null {
  let next: number | null = null
  for (const w of windows) {
    for (const edge of [w.start, w.end]) {
      if (edge !== null && edge > t && (next === null || edge < next)) next = edge
    }
  }
  return next
}
