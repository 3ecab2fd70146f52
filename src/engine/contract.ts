// The service contract: what the engine (supervisor, controller, lifecycle) may ask of the service
// behind an app, whatever its kind. The engine never names a kind; each kind's folder implements
// this, and src/kinds/registry.ts maps a spec's kind to the factory that builds its service.
import type { Socket } from 'node:net'
import type { AppSpec } from '../config/types.ts'
import type { FaultStatus } from '../faults/faultset.ts'
import type { DnsCache } from '../net/dns.ts'
import type { ListenerContext } from '../net/service.ts'
import type { Logger } from '../observe/logger.ts'
import type { Metrics } from '../observe/metrics.ts'

export interface TargetSnapshot {
  address: string
  weight: number
  up: boolean
  checkedUp: boolean
  ejectedForMs: number
  activeConnections: number
  totalConnections: number
  lastError: string | null
  lastErrorAt: string | null
}

export interface DestinationSnapshot {
  destination: string
  open: number
  idle: number
  busy: number
  waiting: number
}

/** What /status shows of an app beyond what every app has; each kind fills in its own. */
export interface KindStatus {
  kind: AppSpec['kind']
  strategy: string
  /** Active health checks ('active'), passive ejection only ('passive'), or none. */
  health: 'active' | 'passive' | 'none'
  targets: TargetSnapshot[]
  /** http apps: upstream pools by destination. */
  destinations?: DestinationSnapshot[]
  /** tunnel apps: client or server, and the sessions. */
  mode?: 'client' | 'server'
  sessions?: unknown[]
}

/** What every service gets from the engine when it is built. */
export interface ServiceDeps {
  metrics: Metrics
  dns: DnsCache
  log: Logger
  /** Total run time for percentage schedules (`sluice proxy --duration`), else null. */
  runDuration: number | null
}

/** The service behind one app. */
export interface Service<S extends AppSpec = AppSpec> {
  readonly name: string
  readonly spec: S
  /** Client connections open now. */
  readonly active: number
  /** A new spec for the same app (a reload); connections keep going and see it from their next step. */
  update(spec: S, runDuration: number | null): void
  /** Whether `next` needs a new service instead of an update (a tunnel changing sides). */
  replacedBy?(next: S): boolean
  /** Prepare the per-listener slot (metric children) when a listener starts serving this app. */
  attach(listener: ListenerContext): void
  handle(socket: Socket, listener: ListenerContext): void
  /** The kind's part of /status. */
  status(now: number): KindStatus
  /** This app's faults as /status shows them (none when absent). */
  faultStatus?(): FaultStatus[]
  /** Host names it dials through the DNS cache, which keeps and refreshes them (none when absent). */
  hosts?(): Iterable<string>
  /** One line's worth of what it does, for the start log line. */
  summary(): Record<string, unknown>
  /** Bring live values into the metrics before a scrape. */
  scrape?(): void
  /** Shutdown began: finish what is in flight, accept nothing new on kept-alive connections. */
  startDraining?(): void
  /** An active health check's verdict on one of its targets. */
  setTargetHealth?(target: string, up: boolean): void
  /** Re-read files the config names but does not hold (certificates), as a reload asks. */
  refreshFiles?(): void
  /** Resolves when the service is ready for systemd's READY=1 (a first connection attempt). */
  ready?(): Promise<void>
  /** Sets systemd's STATUS= itself (the engine then sends none with READY=1). */
  readonly reportsStatus?: boolean
  /** WATCHDOG_USEC is divided by this (the largest of all apps wins). */
  readonly watchdogFactor?: number
  /** The app was removed or replaced: release what it holds; its connections drain with their listeners. */
  close(): void
}

/** Builds the service for a spec: the kind registry (src/kinds/registry.ts) is one. */
export type ServiceFactory = (spec: AppSpec, deps: ServiceDeps) => Service
