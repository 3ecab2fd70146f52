// Properties of PostgreSQL's SSLRequest exchange, both sides, over loopback sockets:
// - towards a client (postgres_client_ssl: refuse, src/tcp/service.ts): any bytes, split any way,
//   get one 'N' per leading SSLRequest/GSSENCRequest and the rest reaches the target unchanged;
// - towards a server (starttls: postgres, src/net/dial.ts): whatever the server answers, dial
//   gives a TLS socket only after exactly 'S' and a handshake, else a ConnectError, in bounded time.
import assert from 'node:assert/strict'
import { once } from 'node:events'
import { readFileSync } from 'node:fs'
import { connect, createServer, type Server, type Socket } from 'node:net'
import { test } from 'node:test'
import { createSecureContext, TLSSocket } from 'node:tls'
import { ConnectError } from '../../src/errors.ts'
import { dial } from '../../src/net/dial.ts'
import { DnsCache } from '../../src/net/dns.ts'
import { echoServer } from '../../src/testkit/fixtures.ts'
import { freePort } from '../../src/testkit/ports.ts'
import { testScope, waitFor } from '../helpers.ts'
import { makeCa, makeCert } from '../tls-certs.ts'
import { checkAsync, coded, fc } from './fuzz.ts'

const t = testScope()

const SSL = Buffer.from([0, 0, 0, 8, 0x04, 0xd2, 0x16, 0x2f])
const GSSENC = Buffer.from([0, 0, 0, 8, 0x04, 0xd2, 0x16, 0x30])
/** A startup message (protocol 3.0, user=u): what a client sends after 'N'. */
const STARTUP = (() => {
  const body = Buffer.concat([Buffer.from([0, 3, 0, 0]), Buffer.from('user\0u\0\0')])
  const len = Buffer.alloc(4)
  len.writeUInt32BE(body.length + 4)
  return Buffer.concat([len, body])
})()

/** Leading requests, then anything: near-misses of the 8-byte request, startups, noise, nothing. */
const clientBytes = fc
  .tuple(
    fc.array(fc.constantFrom(SSL, GSSENC), { maxLength: 3 }),
    fc.oneof(
      fc.constant(Buffer.alloc(0)),
      fc.constant(STARTUP),
      // A request cut short, or with one byte changed: not a request, handed over as it is.
      fc
        .tuple(fc.constantFrom(SSL, GSSENC), fc.integer({ min: 1, max: 7 }))
        .map(([b, n]) => b.subarray(0, n)),
      fc
        .tuple(fc.constantFrom(SSL, GSSENC), fc.nat({ max: 7 }), fc.integer({ min: 0, max: 255 }))
        .map(([b, i, v]) => {
          const c = Buffer.from(b)
          c[i] = v
          return c
        }),
      fc.uint8Array({ maxLength: 40 }).map((a) => Buffer.from(a)),
    ),
    fc.boolean(),
  )
  .map(([requests, rest, startup]) => ({
    requests: requests.length,
    bytes: Buffer.concat([...requests, rest, startup ? STARTUP : Buffer.alloc(0)]),
  }))

/** How many leading 8-byte requests the bytes really hold (a changed byte may still make one). */
function leadingRequests(b: Buffer): number {
  let n = 0
  while (b.length >= (n + 1) * 8) {
    const m = b.subarray(n * 8, n * 8 + 8)
    if (!m.equals(SSL) && !m.equals(GSSENC)) break
    n++
  }
  return n
}

/** Send `bytes` in pieces cut at `cuts`, half-close, and read everything until the end. */
async function session(port: number, bytes: Buffer, cuts: number[]): Promise<Buffer> {
  const s = connect({ host: '127.0.0.1', port, noDelay: true })
  const chunks: Buffer[] = []
  s.on('data', (d: Buffer) => chunks.push(d))
  const ended = new Promise<void>((resolve, reject) => {
    s.once('end', () => resolve())
    s.once('error', reject)
  })
  await once(s, 'connect')
  const points = [...new Set(cuts.map((c) => c % (bytes.length + 1)))].sort((a, b) => a - b)
  let start = 0
  for (const end of [...points, bytes.length]) {
    if (end > start) {
      s.write(bytes.subarray(start, end))
      // Let the piece travel alone, so that the server sees it as one read.
      await new Promise((r) => setTimeout(r, 1))
    }
    start = end
  }
  s.end()
  await ended
  s.destroy()
  return Buffer.concat(chunks)
}

test("a PostgreSQL client's SSLRequests get one 'N' each; every other byte reaches the target", async () => {
  const echo = await t.fixture(echoServer())
  const port = await freePort()
  const e = await t.engine({
    apps: [
      {
        name: 'pg',
        listen: [`127.0.0.1:${port}`],
        targets: [echo.address],
        postgres_client_ssl: 'refuse',
        passive: false,
      },
    ],
  })
  await checkAsync(
    fc.asyncProperty(clientBytes, fc.array(fc.nat(), { maxLength: 4 }), async ({ bytes }, cuts) => {
      const n = leadingRequests(bytes)
      const reply = await session(port, bytes, cuts)
      // 'N' per request, then the echo of the rest, unchanged.
      assert.equal(
        reply.toString('hex'),
        Buffer.concat([Buffer.from('N'.repeat(n)), bytes.subarray(n * 8)]).toString('hex'),
        `sent ${bytes.toString('hex')} in pieces at ${cuts}`,
      )
    }),
    150,
  )
  await waitFor(
    async () => (await e.metric('sluice_connections_active', { app: 'pg' })) === 0,
    'no open connection',
  )
})

// --- Towards a server: starttls postgres -----------------------------------------------------------

const dir = t.tmp.dir
const ca = makeCa(dir, 'pgca')
const cert = makeCert(dir, ca, 'pgserver', { cn: 'localhost', dns: ['localhost'], ips: ['127.0.0.1'] })

/** What a fake server does after reading the SSLRequest: write bytes, pause, end, reset, or TLS. */
const step = fc.oneof(
  {
    weight: 3,
    arbitrary: fc.uint8Array({ minLength: 1, maxLength: 6 }).map((a) => ({ write: Buffer.from(a) })),
  },
  fc.constantFrom({ write: Buffer.from('S') }, { write: Buffer.from('N') }, { write: Buffer.from('E') }),
  fc.integer({ min: 1, max: 20 }).map((ms) => ({ wait: ms })),
  fc.constantFrom({ end: true }, { reset: true }, { tls: true }),
)
const script = fc.oneof(
  fc.array(step, { minLength: 0, maxLength: 4 }),
  // What a PostgreSQL server with ssl on does, sometimes with more after it.
  fc
    .array(step, { maxLength: 1 })
    .map((rest) => [{ write: Buffer.from('S') }, { tls: true as const }, ...rest]),
)

type Step = { write: Buffer } | { wait: number } | { end: true } | { reset: true } | { tls: true }

/** A server that checks the SSLRequest, then plays `current`; the scripts it played, in order. */
async function fakePostgres(): Promise<{
  server: Server
  port: number
  play(s: Step[]): void
  requests: Buffer[]
}> {
  let current: Step[] = []
  const requests: Buffer[] = []
  const context = createSecureContext({ cert: readFileSync(cert.cert), key: readFileSync(cert.key) })
  const open = new Set<Socket>()
  const server = createServer((sock: Socket) => {
    open.add(sock)
    sock.on('close', () => open.delete(sock))
    sock.on('error', () => {})
    const steps = current
    let got = Buffer.alloc(0)
    const onData = async (d: Buffer) => {
      got = Buffer.concat([got, d])
      if (got.length < 8) return
      sock.removeListener('data', onData)
      sock.pause()
      requests.push(got.subarray(0, 8))
      for (const s of steps) {
        if (sock.destroyed) return
        if ('write' in s) sock.write(s.write)
        else if ('wait' in s) await new Promise((r) => setTimeout(r, s.wait))
        else if ('end' in s) sock.end()
        else if ('reset' in s) return sock.resetAndDestroy()
        else {
          const tls = new TLSSocket(sock, { isServer: true, secureContext: context })
          tls.on('error', () => sock.destroy())
          tls.on('secure', () => tls.end())
          return
        }
      }
    }
    sock.on('data', onData)
  })
  server.listen(0, '127.0.0.1')
  await once(server, 'listening')
  t.defer(
    () =>
      new Promise((r) => {
        for (const sock of open) sock.destroy()
        server.close(r)
      }),
  )
  return {
    server,
    port: (server.address() as { port: number }).port,
    play: (s) => {
      current = s
    },
    requests,
  }
}

test('whatever a server answers to SSLRequest: TLS only after exactly S, else a ConnectError, in bounded time', async () => {
  const pg = await fakePostgres()
  const dns = new DnsCache({ ttl: 1000, minTtl: 1000, maxTtl: 1000, negativeTtl: 1000, timeout: 1000 })
  const tls = {
    servername: 'localhost',
    secureContext: createSecureContext({ ca: readFileSync(ca.cert) }),
    insecure: false,
  }
  const target = { host: '127.0.0.1', port: pg.port, key: `127.0.0.1:${pg.port}` }
  let played = 0
  await checkAsync(
    fc.asyncProperty(script, async (steps) => {
      pg.play(steps)
      const before = pg.requests.length
      const started = performance.now()
      let socket: Socket | null = null
      let error: unknown = null
      try {
        socket = await dial(target, { timeout: 200, dns, tls, starttls: 'postgres' })
      } catch (err) {
        error = err
      }
      const took = performance.now() - started
      assert.ok(took < 1500, `dial took ${took.toFixed(0)} ms`)
      // The request went out first, exactly.
      await waitFor(() => pg.requests.length > before || error !== null, 'the SSLRequest', 1000)
      if (pg.requests.length > before) assert.ok(pg.requests.at(-1)!.equals(SSL))
      // TLS can only come after a first answer of exactly one byte 'S'.
      const first = steps[0]
      const sFirst = first !== undefined && 'write' in first && first.write.equals(Buffer.from('S'))
      const tlsNext = steps[1] !== undefined && 'tls' in steps[1]
      if (socket) {
        assert.ok(sFirst && tlsNext, `connected after ${JSON.stringify(steps)}`)
        assert.ok(socket instanceof TLSSocket)
        socket.destroy()
        played++
      } else {
        assert.ok(error instanceof ConnectError, String(error))
        coded(error)
        assert.ok(['tls', 'reset', 'timeout', 'error'].includes(error.reason), error.reason)
      }
    }),
    60,
    3000,
  )
  assert.ok(played > 0, 'the handshake succeeded at least once')
})
