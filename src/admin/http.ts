// Small HTTP helpers for the admin API: a router with path parameters, JSON bodies, responses.
import type { IncomingMessage, ServerResponse } from 'node:http'
import { SluiceError } from '../errors.ts'

export interface Request {
  req: IncomingMessage
  res: ServerResponse
  params: Record<string, string>
  /** The body parsed as JSON (empty body: undefined); ERR_BAD_REQUEST when it does not parse. */
  json(): Promise<unknown>
}

export type Handler = (r: Request) => Promise<void> | void

interface Route {
  method: string
  parts: string[]
  handler: Handler
  toxiproxy: boolean
}

/** A route table matched segment by segment; `:name` segments become params. */
export class Router {
  readonly routes: Route[] = []

  add(method: string, pattern: string, handler: Handler, opts: { toxiproxy?: boolean } = {}): void {
    this.routes.push({ method, parts: split(pattern), handler, toxiproxy: opts.toxiproxy ?? false })
  }

  /** The route for a request, or what went wrong: no such path, or not that method (with the allowed ones). */
  match(
    method: string,
    path: string,
  ): { route: Route; params: Record<string, string> } | { allowed: string[] } | null {
    const parts = split(path)
    const allowed: string[] = []
    for (const r of this.routes) {
      const params = matchParts(r.parts, parts)
      if (!params) continue
      if (r.method === method) return { route: r, params }
      allowed.push(r.method)
    }
    return allowed.length ? { allowed } : null
  }
}

function split(path: string): string[] {
  return path.split('/').filter(Boolean)
}

function matchParts(pattern: string[], parts: string[]): Record<string, string> | null {
  if (pattern.length !== parts.length) return null
  const params: Record<string, string> = {}
  for (let i = 0; i < pattern.length; i++) {
    const p = pattern[i]!
    if (p.startsWith(':')) {
      try {
        params[p.slice(1)] = decodeURIComponent(parts[i]!)
      } catch {
        return null
      }
    } else if (p !== parts[i]) return null
  }
  return params
}

const MAX_BODY = 1024 * 1024

/** Read a request body as JSON, at most 1 MiB. */
export function readJson(req: IncomingMessage): Promise<unknown> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = []
    let size = 0
    req.on('data', (d: Buffer) => {
      size += d.length
      if (size > MAX_BODY) {
        reject(new SluiceError('ERR_BAD_REQUEST', `bad request body: larger than ${MAX_BODY} bytes`))
        req.destroy()
        return
      }
      chunks.push(d)
    })
    req.on('end', () => {
      const text = Buffer.concat(chunks).toString('utf8')
      if (!text.trim()) return resolve(undefined)
      try {
        resolve(JSON.parse(text))
      } catch (err) {
        reject(new SluiceError('ERR_BAD_REQUEST', `bad request body: ${(err as Error).message}`))
      }
    })
    // The client went away before the end of its body (ECONNRESET 'aborted'): its request, not ours.
    req.on('error', (err) =>
      reject(new SluiceError('ERR_BAD_REQUEST', `bad request body: ${err.message}`, { cause: err })),
    )
  })
}

export function send(
  res: ServerResponse,
  status: number,
  body: string,
  type = 'text/plain; charset=utf-8',
): void {
  if (res.headersSent) return
  res.writeHead(status, { 'content-type': type, 'content-length': Buffer.byteLength(body) })
  res.end(body)
}

export function json(res: ServerResponse, status: number, value: unknown): void {
  send(res, status, `${JSON.stringify(value, null, 2)}\n`, 'application/json')
}

export function noContent(res: ServerResponse): void {
  if (res.headersSent) return
  res.writeHead(204)
  res.end()
}
