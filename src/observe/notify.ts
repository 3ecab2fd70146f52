// systemd's notify protocol (READY=1, STATUS=…, STOPPING=1, WATCHDOG=1). Node cannot send unix
// datagrams, so each message is handed to `systemd-notify --pid=<sluice>` (the unit needs
// NotifyAccess=all). Nothing happens when NOTIFY_SOCKET is unset.
import { execFile } from 'node:child_process'

let missingReported = false
let onError: (message: string) => void = () => {}

/** Where failures to notify are reported (the logger, once it exists). */
export function onNotifyError(cb: (message: string) => void): void {
  onError = cb
}

/** Whether a service manager listens. */
export function notifying(): boolean {
  return Boolean(process.env.NOTIFY_SOCKET)
}

/** Send assignments such as `READY=1` or `STATUS=…` in one message; resolves when it was handed over. */
export function notify(lines: string[]): Promise<void> {
  if (!notifying() || lines.length === 0) return Promise.resolve()
  return new Promise((resolve) => {
    execFile('systemd-notify', [`--pid=${process.pid}`, ...lines], { timeout: 5000 }, (err) => {
      if (err) {
        const missing = (err as NodeJS.ErrnoException).code === 'ENOENT'
        if (!missing || !missingReported)
          onError(
            missing
              ? 'systemd-notify is not installed: NOTIFY_SOCKET is set but nothing can be sent'
              : `systemd-notify failed: ${err.message}`,
          )
        if (missing) missingReported = true
      }
      resolve()
    })
  })
}

/** WATCHDOG=1 every WATCHDOG_USEC / factor while the process runs (when the manager asks for it). */
export function startWatchdog(factor: number): NodeJS.Timeout | null {
  const usec = Number(process.env.WATCHDOG_USEC)
  const pid = process.env.WATCHDOG_PID
  if (!notifying() || !Number.isFinite(usec) || usec <= 0) return null
  if (pid && Number(pid) !== process.pid) return null
  const every = Math.max(10, usec / 1000 / factor)
  const t = setInterval(() => void notify(['WATCHDOG=1']), every)
  t.unref()
  return t
}
