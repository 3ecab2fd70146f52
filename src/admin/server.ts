// The admin HTTP API: Prometheus metrics, liveness, a JSON status, reload. On 127.0.0.1:8474 by
// default (Toxiproxy's port, whose routes join this server later). Off loopback it needs a token.
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http'
import type { AddressInfo } from 'node:net'
import { joinHostPort } from '../config/address.ts'
import type { AdminSpec } from '../config/types.ts'
import type { AdminHook, Controller } from '../engine/control.ts'
import { SluiceError } from '../errors.ts'

type Handler = (req: IncomingMessage, res: ServerResponse) => Promise<void> | void

export class AdminServer implements AdminHook {
  #server: Server | null = null
  #spec: AdminSpec | null = null
  #controller: Controller | null = null
  #routes = new Map<string, Handler>()

  /** The controller whose state this server shows; set before the first `apply`. */
  bind(controller: Controller): void {
    this.#controller = controller
    const c = controller
    this.#routes.set('GET /healthz', (_req, res) => {
      if (c.draining) send(res, 503, 'draining\n')
      else send(res, 200, 'ok\n')
    })
    this.#routes.set('GET /metrics', async (_req, res) => {
      const body = await c.metrics.scrape()
      send(res, 200, body, c.metrics.registry.contentType)
    })
    this.#routes.set('GET /status', (_req, res) => json(res, 200, c.status()))
    this.#routes.set('POST /reload', async (_req, res) => {
      const r = await c.reload('api', true)
      json(res, r.result === 'rejected' ? 422 : 200, r)
    })
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
    if (next) this.#controller?.log.info({ admin: this.address }, `admin API on http://${this.address}`)
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
    const token = this.#spec?.token
    if (token && req.headers.authorization !== `Bearer ${token}`) {
      res.setHeader('www-authenticate', 'Bearer')
      return json(res, 401, { error: 'missing or wrong bearer token', code: 'ERR_ADMIN_UNAUTHORIZED' })
    }
    const path = (req.url ?? '/').split('?')[0]
    const route = this.#routes.get(`${req.method} ${path}`)
    if (!route) {
      const allowed = [...this.#routes.keys()]
        .filter((k) => k.endsWith(` ${path}`))
        .map((k) => k.split(' ')[0])
      if (allowed.length) {
        res.setHeader('allow', allowed.join(', '))
        return json(res, 405, { error: `method ${req.method} not allowed on ${path}` })
      }
      return json(res, 404, { error: `no route ${req.method} ${path}`, routes: [...this.#routes.keys()] })
    }
    try {
      await route(req, res)
    } catch (err) {
      this.#controller?.log.error({ error: (err as Error).message, path }, 'admin request failed')
      if (!res.headersSent) json(res, 500, { error: (err as Error).message })
    }
  }

  async close(): Promise<void> {
    const s = this.#server
    this.#server = null
    if (!s) return
    await new Promise<void>((resolve) => {
      s.close(() => resolve())
      s.closeAllConnections()
    })
  }
}

function send(res: ServerResponse, status: number, body: string, type = 'text/plain; charset=utf-8'): void {
  res.writeHead(status, { 'content-type': type, 'content-length': Buffer.byteLength(body) })
  res.end(body)
}

function json(res: ServerResponse, status: number, value: unknown): void {
  send(res, status, `${JSON.stringify(value, null, 2)}\n`, 'application/json')
}
