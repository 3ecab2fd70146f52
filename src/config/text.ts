// Character checks that the config (header edits) and the HTTP parser share. They live in the
// data model so that config/ needs nothing from the runtime (http/ imports them from here).

/** Whether a field value has a control character (NUL, CR, LF, DEL, …; tab is allowed). */
export function hasControl(value: string): boolean {
  for (let i = 0; i < value.length; i++) {
    const c = value.charCodeAt(i)
    if ((c < 32 && c !== 9) || c === 127) return true
  }
  return false
}
