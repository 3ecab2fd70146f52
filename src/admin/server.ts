// The admin HTTP API: Prometheus metrics, liveness, a JSON status, reload, the native fault API and
// the Toxiproxy-compatible API. On 127.0.0.1:8474 by default (Toxiproxy's port, so its clients
// work unchanged). Off loopback it needs a token.
import { randomBytes } from 'node:crypto'
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http'
import type { AddressInfo } from 'node:net'
import { joinHostPort } from '../config/address.ts'
import type { AdminSpec } from '../config/types.ts'
import type { AdminHook, Controller } from '../engine/control.ts'
import { ConfigError, httpStatus, SluiceError } from '../errors.ts'
import { registerFaultRoutes } from './faults.ts'
import { json, Router, readJson, send } from './http.ts'
import { registerToxiproxyRoutes } from './toxiproxy.ts'

/** HTTP status for an error: the registry's (errors.ts), 500 for an error without one. */
export function statusFor(err: unknown): number {
  return httpStatus(String((err as SluiceError).code)) ?? 500
}

/** The error body: Toxiproxy's {error, status}, plus sluice's code and, for config problems, the issues. */
export function errorBody(err: unknown, status: number): Record<string, unknown> {
  const e = err as SluiceError
  const body: Record<string, unknown> = { error: e.message, status, code: e.code ?? 'ERR_INTERNAL' }
  if (err instanceof ConfigError) {
    body.issues = err.issues
    body.error = err.issues.map((i) => (i.path ? `${i.path}: ${i.message}` : i.message)).join('; ')
  } else if (Array.isArray((err as { issues?: unknown }).issues)) {
    body.issues = (err as { issues: unknown[] }).issues
  }
  return body
}

export class AdminServer implements AdminHook {
  #server: Server | null = null
  #spec: AdminSpec | null = null
  #controller: Controller | null = null
  readonly router = new Router()

  /** The controller whose state this server shows and changes; set before the first `apply`. */
  bind(controller: Controller): void {
    this.#controller = controller
    const c = controller
    this.router.add('GET', '/healthz', ({ res }) => {
      if (c.draining) send(res, 503, 'draining\n')
      else send(res, 200, 'ok\n')
    })
    this.router.add('GET', '/metrics', async ({ res }) => {
      send(res, 200, await c.metrics.scrape(), c.metrics.registry.contentType)
    })
    this.router.add('GET', '/status', ({ res }) => json(res, 200, c.status()))
    this.router.add('POST', '/reload', async ({ res }) => {
      const r = await c.reload('api', true)
      json(res, r.result === 'rejected' ? 422 : 200, r)
    })
    registerFaultRoutes(this.router, c)
    registerToxiproxyRoutes(this.router, c)
  }

  /** The address actually bound ("127.0.0.1:8474"), or null when off. */
  get address(): string | null {
    const a = this.#server?.address() as AddressInfo | null | undefined
    return a ? joinHostPort(a.address, a.port) : null
  }

  /** Start, move or stop the server to match `spec`. */
  async apply(spec: AdminSpec | null): Promise<void> {
    const same =
      spec &&
      this.#spec &&
      spec.host === this.#spec.host &&
      spec.port === this.#spec.port &&
      this.#server !== null
    if (same) {
      this.#spec = spec
      return
    }
    const next = spec ? await this.#listen(spec) : null
    await this.close()
    this.#server = next
    this.#spec = spec
    if (next) this.#controller?.log.info({ admin: this.address }, 'admin API listening')
  }

  #listen(spec: AdminSpec): Promise<Server> {
    return new Promise((resolve, reject) => {
      const server = createServer({ connectionsCheckingInterval: 1000 }, (req, res) => this.#handle(req, res))
      server.keepAliveTimeout = 5000
      // The admin API answers small requests: a client that is slow to send headers is dropped.
      server.headersTimeout = 5000
      server.requestTimeout = 15_000
      server.once('error', (err: NodeJS.ErrnoException) => {
        const why = err.code === 'EADDRINUSE' ? 'the address is already in use' : err.message
        reject(
          new SluiceError(
            'ERR_LISTEN',
            `cannot start the admin API on ${joinHostPort(spec.host, spec.port)}: ${why}`,
            {
              cause: err,
            },
          ),
        )
      })
      server.listen({ host: spec.host, port: spec.port }, () => resolve(server))
    })
  }

  async #handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    // Toxiproxy's clients log this; every response carries one.
    res.setHeader('x-toxiproxy-request-id', randomBytes(10).toString('hex'))
    const token = this.#spec?.token
    if (token && req.headers.authorization !== `Bearer ${token}`) {
      res.setHeader('www-authenticate', 'Bearer')
      return json(res, 401, {
        error: 'missing or wrong bearer token',
        status: 401,
        code: 'ERR_ADMIN_UNAUTHORIZED',
      })
    }
    const path = (req.url ?? '/').split('?')[0]!
    const m = this.router.match(req.method ?? 'GET', path)
    if (!m) {
      const routes = this.router.routes.map((r) => `${r.method} /${r.parts.join('/')}`)
      return json(res, 404, {
        error: `no route ${req.method} ${path}`,
        status: 404,
        code: 'ERR_NOT_FOUND',
        routes,
      })
    }
    if ('allowed' in m) {
      res.setHeader('allow', [...new Set(m.allowed)].join(', '))
      return json(res, 405, {
        error: `method ${req.method} not allowed on ${path}`,
        status: 405,
        code: 'ERR_BAD_REQUEST',
      })
    }
    // As Toxiproxy does, against cross-site requests from browsers.
    if (m.route.toxiproxy && (req.headers['user-agent'] ?? '').startsWith('Mozilla/')) {
      return send(res, 403, 'User agent not allowed\n')
    }
    try {
      await m.route.handler({ req, res, params: m.params, json: () => readJson(req) })
    } catch (err) {
      const status = statusFor(err)
      if (status === 500 && !(err instanceof SluiceError)) {
        this.#controller?.log.error(
          { code: 'ERR_INTERNAL', error: (err as Error).stack ?? String(err), path },
          'admin request failed',
        )
      }
      json(res, status, errorBody(err, status))
    }
  }

  async close(): Promise<void> {
    const address = this.address
    const s = this.#server
    this.#server = null
    if (!s) return
    await new Promise<void>((resolve) => {
      s.close(() => resolve())
      s.closeAllConnections()
    })
    this.#controller?.log.info({ admin: address }, 'admin API closed')
  }
}
