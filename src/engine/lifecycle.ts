// Process signals: SIGHUP reloads; SIGINT/SIGTERM stop accepting and drain, then exit 0; a second
// SIGINT/SIGTERM exits at once with 130.
import type { Controller } from './control.ts'

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
      controller.log.warn({ signal }, 'second signal: exiting now')
      opts.exit(130)
      return
    }
    stopping = true
    controller.log.info({ signal }, `${signal}: stopping (send it again to exit at once)`)
    controller
      .shutdown()
      .then(async (clean) => {
        controller.log.info(
          { clean },
          clean ? 'all connections ended; exiting' : 'drain deadline reached; exiting',
        )
        await opts.beforeExit()
        opts.exit(0)
      })
      .catch(async (err) => {
        controller.log.error({ error: (err as Error).message }, 'shutdown failed')
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
