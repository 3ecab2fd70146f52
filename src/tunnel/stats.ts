// A tunnel app's metric series, resolved once, shared by the client and the server side.
import type { TunnelAppSpec } from '../config/types.ts'
import type { KindStatus } from '../engine/contract.ts'
import type { Logger } from '../observe/logger.ts'
import type { Metrics } from '../observe/metrics.ts'
import type { HistogramSeries, Series } from '../observe/series.ts'

export class TunnelStats {
  readonly sessionsUp: Series
  readonly #metrics: Metrics
  readonly #app: string
  readonly #streams: Series
  readonly #bytesUp: Series
  readonly #bytesDown: Series
  readonly #latency: HistogramSeries
  readonly #codes = new Map<number, Series>()

  constructor(app: string, metrics: Metrics) {
    this.#app = app
    this.#metrics = metrics
    this.sessionsUp = metrics.tunnelSessions.series({ app })
    this.#streams = metrics.tunnelStreams.series({ app })
    this.#bytesUp = metrics.tunnelBytes.series({ app, direction: 'request' })
    this.#bytesDown = metrics.tunnelBytes.series({ app, direction: 'response' })
    this.#latency = metrics.tunnelRequestSeconds.series({ app })
  }

  /** A request starts its way through the tunnel. */
  opened(): void {
    this.#streams.value++
  }

  /** It ended, having carried these body bytes each way. */
  closed(up: number, down: number): void {
    this.#streams.value--
    this.#bytesUp.value += up
    this.#bytesDown.value += down
  }

  /** A response head came back `startedAt` (performance.now()) after the request came in. */
  responded(startedAt: number): void {
    this.#metrics.tunnelRequestSeconds.observe(this.#latency, (performance.now() - startedAt) / 1000)
  }

  /** One answer by status class, synthetic errors included. */
  count(status: number): void {
    const cls = Math.min(5, Math.floor(status / 100))
    let s = this.#codes.get(cls)
    if (!s) {
      s = this.#metrics.tunnelRequests.series({ app: this.#app, code: `${cls}xx` })
      this.#codes.set(cls, s)
    }
    s.value++
  }
}

/** Say at start what became of each QUIC transport setting: mapped onto its counterpart, or ignored and why. */
export function reportIgnored(spec: TunnelAppSpec, log: Logger): void {
  for (const [field, what] of Object.entries(spec.mapped)) log.info({ field }, `transport.${field}: ${what}`)
  for (const [field, why] of Object.entries(spec.ignored)) log.info({ field }, `transport.${field}: ${why}`)
}

/** A tunnel app's part of /status, either side. */
export function tunnelStatus(mode: 'client' | 'server', sessions: unknown[]): KindStatus {
  return { kind: 'tunnel', mode, strategy: 'least-streams', health: 'none', targets: [], sessions }
}
