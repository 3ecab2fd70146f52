// Servers for trying and testing a proxy: echo, ident (greets with its name, then echoes), sink
// (records what it gets, writes on demand) and a small HTTP origin. Used by `sluice test serve`,
// `sluice demo`, the project's tests and its benchmarks.
import { createServer as createHttpServer, type IncomingHttpHeaders } from 'node:http'
import { createServer, type Server, type Socket } from 'node:net'
import { joinHostPort } from '../config/address.ts'

export interface FixtureOptions {
  host?: string
  port?: number
  /** Name the ident server greets with and the HTTP origin answers with. */
  name?: string
}

/** A running fixture server. */
export interface Fixture {
  readonly name: string
  readonly host: string
  readonly port: number
  /** host:port */
  readonly address: string
  /** Connections accepted so far. */
  accepted: number
  /** Connections open now. */
  readonly sockets: Set<Socket>
  /** Stop listening and destroy open connections. */
  close(): Promise<void>
  /** Stop listening only; open connections stay. */
  stopListening(): Promise<void>
}

function listenFixture(server: Server, opts: FixtureOptions, name: string): Promise<Fixture> {
  const sockets = new Set<Socket>()
  const host = opts.host ?? '127.0.0.1'
  return new Promise((resolve, reject) => {
    server.once('error', reject)
    server.listen({ host, port: opts.port ?? 0 }, () => {
      server.removeListener('error', reject)
      const port = (server.address() as { port: number }).port
      const fixture: Fixture = {
        name,
        host,
        port,
        address: joinHostPort(host, port),
        accepted: 0,
        sockets,
        close: () =>
          new Promise<void>((res) => {
            for (const s of sockets) s.destroy()
            if (!server.listening) return res()
            server.close(() => res())
          }),
        stopListening: () =>
          new Promise<void>((res) => {
            if (!server.listening) return res()
            server.close()
            res()
          }),
      }
      server.on('connection', (s: Socket) => {
        fixture.accepted++
        sockets.add(s)
        s.on('close', () => sockets.delete(s))
        s.on('error', () => {})
      })
      resolve(fixture)
    })
  })
}

/** Echoes what it reads; on EOF finishes writing and closes. */
export function echoServer(opts: FixtureOptions = {}): Promise<Fixture> {
  const server = createServer({ allowHalfOpen: true, noDelay: true }, (s) => {
    s.pipe(s)
  })
  return listenFixture(server, opts, opts.name ?? 'echo')
}

/** Writes "NAME\n" on connect, then echoes. Tells a client which backend it reached. */
export function identServer(opts: FixtureOptions & { name: string }): Promise<Fixture> {
  const greeting = `${opts.name}\n`
  const server = createServer({ allowHalfOpen: true, noDelay: true }, (s) => {
    s.write(greeting)
    s.pipe(s)
  })
  return listenFixture(server, opts, opts.name)
}

export interface Sink extends Fixture {
  /** Bytes received per connection, in accept order. */
  readonly received: Buffer[][]
  /** Write to every open connection. */
  write(data: string | Buffer): void
  /** Total bytes received. */
  readonly bytes: number
}

/** Records what it receives; writes only when asked. */
export async function sinkServer(opts: FixtureOptions = {}): Promise<Sink> {
  const received: Buffer[][] = []
  let bytes = 0
  const server = createServer({ allowHalfOpen: true }, (s) => {
    const chunks: Buffer[] = []
    received.push(chunks)
    s.on('data', (d: Buffer) => {
      chunks.push(d)
      bytes += d.length
    })
    s.on('end', () => s.end())
  })
  const f = await listenFixture(server, opts, opts.name ?? 'sink')
  return Object.assign(f, {
    received,
    write(data: string | Buffer) {
      for (const s of f.sockets) s.write(data)
    },
    get bytes() {
      return bytes
    },
  })
}

export interface RecordedRequest {
  method: string
  url: string
  headers: IncomingHttpHeaders
  rawHeaders: string[]
  body: Buffer
}

export interface HttpOrigin extends Fixture {
  readonly requests: RecordedRequest[]
}

/** An HTTP/1.1 origin: answers "hello from NAME" (or echoes the body of a POST), records requests. */
export async function httpOrigin(opts: FixtureOptions & { delayMs?: number } = {}): Promise<HttpOrigin> {
  const requests: RecordedRequest[] = []
  const name = opts.name ?? 'origin'
  const server = createHttpServer({ keepAliveTimeout: 30_000 }, (req, res) => {
    const chunks: Buffer[] = []
    req.on('data', (d: Buffer) => chunks.push(d))
    req.on('end', () => {
      const body = Buffer.concat(chunks)
      requests.push({
        method: req.method ?? '',
        url: req.url ?? '',
        headers: req.headers,
        rawHeaders: req.rawHeaders,
        body,
      })
      const answer = () => {
        const out = req.method === 'POST' || req.method === 'PUT' ? body : Buffer.from(`hello from ${name}\n`)
        res.writeHead(200, {
          'content-type': 'text/plain',
          'content-length': out.length,
          'x-served-by': name,
        })
        res.end(out)
      }
      if (opts.delayMs) setTimeout(answer, opts.delayMs)
      else answer()
    })
  })
  const f = await listenFixture(server as unknown as Server, opts, name)
  return Object.assign(f, { requests })
}
