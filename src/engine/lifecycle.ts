// Process signals: SIGHUP reloads; SIGINT/SIGTERM stop accepting and drain, then exit 0; a second
// SIGINT/SIGTERM exits at once with 130.
import { notify, onNotifyError, startWatchdog } from '../observe/notify.ts'
import type { Controller } from './control.ts'

/**
 * Tell systemd (when NOTIFY_SOCKET is set) that sluice is ready: once every service says it is
 * (a tunnel client with wait_for_first_attempt: after its first connection attempts, successful
 * or not). Starts WATCHDOG=1 pings when the unit asks for them.
 */
export async function announceReady(controller: Controller): Promise<void> {
  onNotifyError((message) => controller.log.warn({ code: 'ERR_NOTIFY' }, message))
  const services = [...controller.supervisor.services.values()]
  const factors = services.flatMap((s) => (s.watchdogFactor === undefined ? [] : [s.watchdogFactor]))
  startWatchdog(factors.length ? Math.max(...factors) : 1.5)
  await Promise.all(services.map((s) => s.ready?.()))
  const status = services.some((s) => s.reportsStatus)
    ? undefined
    : `serving ${controller.config?.apps.length ?? 0} app(s)`
  await notify(['READY=1', ...(status ? [`STATUS=${status}`] : [])])
}

export interface LifecycleOptions {
  /** Extra work after draining and before exit (close the admin API, flush logs). */
  beforeExit: () => Promise<void> | void
  exit: (code: number) => void
}

/** Install the signal handlers for a running sluice. Returns a function that removes them. */
export function handleSignals(controller: Controller, opts: LifecycleOptions): () => void {
  let stopping = false
  const onHup = () => {
    controller.log.info('SIGHUP: reloading the config')
    controller.reload('signal', true)
  }
  const onStop = (signal: NodeJS.Signals) => {
    if (stopping) {
      controller.log.info({ signal }, 'second signal: exiting now')
      opts.exit(130)
      return
    }
    stopping = true
    controller.log.info(
      { signal },
      'stopping: no new connections, open ones finish (a second signal exits at once)',
    )
    void notify(['STOPPING=1', 'STATUS=stopping: finishing requests in flight'])
    controller
      .shutdown()
      .then(async (clean) => {
        controller.log.info(
          { clean },
          clean ? 'every connection ended' : 'drain deadline reached: the connections left were closed',
        )
        await opts.beforeExit()
        controller.log.info({ status: 0 }, 'exiting')
        opts.exit(0)
      })
      .catch(async (err) => {
        controller.log.error({ code: 'ERR_INTERNAL', error: (err as Error).message }, 'shutdown failed')
        await opts.beforeExit()
        opts.exit(1)
      })
  }
  process.on('SIGHUP', onHup)
  process.on('SIGINT', onStop)
  process.on('SIGTERM', onStop)
  return () => {
    process.off('SIGHUP', onHup)
    process.off('SIGINT', onStop)
    process.off('SIGTERM', onStop)
  }
}
