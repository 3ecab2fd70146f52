// Build and start an engine: the controller with its kind registry, the admin server, a logger.
// The CLI commands and the library API (api/index.ts) both start sluice through this.
import { AdminServer } from '../admin/server.ts'
import type { Config } from '../config/types.ts'
import { Controller } from '../engine/control.ts'
import { createService } from '../kinds/registry.ts'
import { createLogger, type Logger } from '../observe/logger.ts'
import { createMetrics } from '../observe/metrics.ts'

export interface Running {
  controller: Controller
  admin: AdminServer
  log: Logger
  stop(): Promise<void>
}

/** Build and start the engine for `config`; on failure nothing stays bound. */
export async function startEngine(
  initial: { config: Config; text?: string },
  opts: { file: string | null; overrides: (c: Config) => Config; log?: Logger },
): Promise<Running> {
  const first = opts.overrides(initial.config)
  const log = opts.log ?? createLogger(first.log)
  const metrics = createMetrics()
  const admin = new AdminServer()
  const controller = new Controller({
    file: opts.file,
    log,
    metrics,
    overrides: opts.overrides,
    admin,
    create: createService,
  })
  admin.bind(controller)
  try {
    await controller.start(initial)
  } catch (err) {
    await controller.supervisor.shutdown(0)
    await admin.close()
    throw err
  }
  return {
    controller,
    admin,
    log,
    stop: async () => {
      await controller.shutdown()
      await admin.close()
    },
  }
}
