// What one client connection of the http service (exchange.ts) sees of its service (service.ts):
// kept apart so that the two import each other's types through this file, not in a circle.

import type { HttpErrorFault } from '../config/faults.ts'
import type { Destination, HttpAppSpec } from '../config/types.ts'
import type { FaultSet } from '../faults/faultset.ts'
import type { Logger } from '../observe/logger.ts'
import type { HistogramSeries, Series } from '../observe/series.ts'
import type { Pool } from './pool.ts'
import type { CompiledRule } from './rules.ts'

/** Metric series for one (app, listener) pair. */
export interface HttpSlot {
  accepted: Series
  active: Series
  rejectedMax: Series
  bytesIn: Series
  bytesOut: Series
  session: HistogramSeries
}

/** What a connection needs from its service. */
export interface HttpContext {
  readonly spec: HttpAppSpec
  readonly rules: CompiledRule[]
  readonly faults: FaultSet
  readonly log: Logger
  readonly draining: boolean
  poolFor(d: Destination): Pool
  requestFaults(rule: CompiledRule): { error: HttpErrorFault | null; before: number; after: number }
  observeUpstream(rule: CompiledRule, seconds: number): void
  countRequest(rule: CompiledRule, status: number): void
  countRejected(status: number): void
}
