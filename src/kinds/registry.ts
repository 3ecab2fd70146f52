// The kinds of service sluice has, in one table: a spec's `kind` (and, for a tunnel, its mode)
// names the class that serves it. The engine is handed this factory and never names a kind.
// Adding a kind: its folder under src/ (a Service from engine/contract.ts) and one line here.
import type { AppSpec } from '../config/types.ts'
import type { Service, ServiceDeps, ServiceFactory } from '../engine/contract.ts'
import { HttpService } from '../http/service.ts'
import { TcpService } from '../tcp/service.ts'
import { TunnelClientService } from '../tunnel/client.ts'
import { TunnelServerService } from '../tunnel/server.ts'

type Factories = {
  [K in AppSpec['kind']]: (spec: Extract<AppSpec, { kind: K }>, deps: ServiceDeps) => Service
}

export const kinds: Factories = {
  tcp: (spec, deps) => new TcpService(spec, deps),
  http: (spec, deps) => new HttpService(spec, deps),
  tunnel: (spec, deps) =>
    spec.mode === 'client' ? new TunnelClientService(spec, deps) : new TunnelServerService(spec, deps),
}

/** The service for `spec`, by its kind. */
export const createService: ServiceFactory = (spec, deps) =>
  (kinds[spec.kind] as (s: AppSpec, d: ServiceDeps) => Service)(spec, deps)
