// The http app's edges that real clients hit: a client that leaves with its request in flight,
// Expect: 100-continue, and the code in the log line of every answer sluice gives itself. sluice
// runs in this process (the same Controller `sluice run` starts); the origins are raw sockets that
// record every byte, the clients are raw sockets and curl.
import assert from 'node:assert/strict'
import { createServer as createHttpServer } from 'node:http'
import { connect, createServer, type Server, type Socket } from 'node:net'
import { test } from 'node:test'
import { freePort } from '../../src/testkit/ports.ts'
import { blackhole, curl, type LogLine, testScope, waitFor } from '../helpers.ts'

/** curl arguments for a body sent with Expect: 100-continue, curl waiting up to 20 s for the 100. */
const expect100 = (body: string) => [
  '--expect100-timeout',
  '20',
  '-H',
  'Expect: 100-continue',
  '--data-binary',
  body,
]
const t = testScope()

interface RawConn {
  socket: Socket
  bytes: Buffer
  closed: boolean
}

/** An origin that keeps every connection's bytes and calls `onHead` once per request head seen. */
async function rawOrigin(onHead: (c: RawConn, head: string) => void = () => {}) {
  const conns: RawConn[] = []
  const server: Server = createServer({ allowHalfOpen: true }, (socket) => {
    const c: RawConn = { socket, bytes: Buffer.alloc(0), closed: false }
    conns.push(c)
    let searched = 0
    socket.on('data', (d: Buffer) => {
      c.bytes = Buffer.concat([c.bytes, d])
      const end = c.bytes.indexOf('\r\n\r\n', searched)
      if (end >= 0 && searched >= 0) {
        searched = -1
        onHead(c, c.bytes.toString('latin1', 0, end + 4))
      }
    })
    socket.on('error', () => {})
    // sluice closing its side (FIN or RST) is what the tests wait for.
    const gone = () => {
      c.closed = true
    }
    socket.on('end', gone)
    socket.on('close', gone)
  })
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()))
  const port = (server.address() as { port: number }).port
  t.defer(() => {
    for (const c of conns) c.socket.destroy()
    return new Promise<void>((r) => server.close(() => r()))
  })
  return { port, conns }
}

async function app(destPort: number, extra: Record<string, unknown> = {}) {
  const port = await freePort()
  const e = await t.engine({
    apps: [
      { name: 'web', kind: 'http', listen: [port], destination: `http://127.0.0.1:${destPort}`, ...extra },
    ],
  })
  return { port, e }
}

function client(port: number): Promise<{ s: Socket; got: () => string; ended: () => boolean }> {
  return new Promise((resolve, reject) => {
    let data = ''
    let ended = false
    const s = connect({ port, host: '127.0.0.1', allowHalfOpen: true }, () =>
      resolve({ s, got: () => data, ended: () => ended }),
    )
    s.on('data', (d: Buffer) => {
      data += d.toString('latin1')
    })
    s.on('end', () => {
      ended = true
    })
    s.on('close', () => {
      ended = true
    })
    s.on('error', reject)
  })
}

const lines = (logs: LogLine[], code: string) => logs.filter((l) => l.code === code)

test('a client that resets with its request in flight: the upstream socket closes at once, logged with a code', async () => {
  const o = await rawOrigin() // never answers
  const { port, e } = await app(o.port)
  const c = await client(port)
  c.s.write('GET /slow HTTP/1.1\r\nHost: x\r\n\r\n')
  await waitFor(() => o.conns.length === 1 && o.conns[0]!.bytes.length > 0, 'the request to reach the origin')
  c.s.resetAndDestroy()
  await waitFor(() => o.conns[0]!.closed, 'sluice to close the upstream connection', 3000)
  await waitFor(() => lines(e.logs, 'ERR_HTTP_CLIENT_ABORTED').length === 1, 'the abort log line')
})

test('a client that closes (FIN) with its request in flight aborts the upstream exchange by default', async () => {
  const o = await rawOrigin()
  const { port, e } = await app(o.port)
  const c = await client(port)
  c.s.write('GET /slow HTTP/1.1\r\nHost: x\r\n\r\n')
  await waitFor(() => o.conns[0]?.bytes.length, 'the request to reach the origin')
  c.s.end()
  await waitFor(() => o.conns[0]!.closed, 'sluice to close the upstream connection', 3000)
  await waitFor(() => c.ended(), 'sluice to close the client connection')
  const line = lines(e.logs, 'ERR_HTTP_CLIENT_ABORTED')[0]!
  assert.equal(line.destination, `http://127.0.0.1:${o.port}`)
})

test('abort_on_close: false answers a client that half-closed after its request', async () => {
  const o = await rawOrigin((c) => {
    setImmediate(() => c.socket.write('HTTP/1.1 200 OK\r\nContent-Length: 4\r\n\r\nhalf'))
  })
  const { port } = await app(o.port, { abort_on_close: false })
  const c = await client(port)
  c.s.end('GET /h HTTP/1.1\r\nHost: x\r\n\r\n')
  await waitFor(() => c.ended(), 'the response and the close')
  assert.match(c.got(), /^HTTP\/1\.1 200 OK\r\n[\s\S]*\r\n\r\nhalf$/)
  assert.match(c.got(), /Connection: close/i)
})

test('a request queued for a pooled connection is taken out of the queue when its client leaves', async () => {
  const o = await rawOrigin()
  const { port, e } = await app(o.port, { pool: { max_connections: 1 } })
  const first = await client(port)
  first.s.write('GET /1 HTTP/1.1\r\nHost: x\r\n\r\n')
  await waitFor(() => o.conns[0]?.bytes.length, 'the first request at the origin')
  const waiting = async () => {
    await e.metrics.scrape()
    return e.metric('sluice_http_pool_waiting', { app: 'web' })
  }
  const queued = await Promise.all([client(port), client(port), client(port)])
  for (const q of queued) q.s.write('GET /2 HTTP/1.1\r\nHost: x\r\n\r\n')
  await waitFor(async () => (await waiting()) === 3, 'three requests in the pool queue')
  for (const q of queued) q.s.resetAndDestroy()
  await waitFor(async () => (await waiting()) === 0, 'the queue to empty when the clients left')
  // The busy connection is still the first client's, and serves it.
  o.conns[0]!.socket.write('HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok')
  await waitFor(() => first.got().endsWith('\r\n\r\nok'), 'the first response')
  assert.equal(o.conns.length, 1)
  assert.equal(lines(e.logs, 'ERR_HTTP_CLIENT_ABORTED').length, 3)
  first.s.destroy()
})

test('Expect: 100-continue: the origin 100 reaches the client before it sends the body (curl does not wait)', async () => {
  const origin = createHttpServer((req, res) => {
    let n = 0
    req.on('data', (d: Buffer) => {
      n += d.length
    })
    req.on('end', () => res.end(`got ${n}`))
  })
  await new Promise<void>((r) => origin.listen(0, '127.0.0.1', () => r()))
  t.defer(() => new Promise<void>((r) => origin.close(() => r())))
  const { port } = await app((origin.address() as { port: number }).port)
  // A raw client: head only, then wait for the 100 (it never comes while sluice holds the head).
  const c = await client(port)
  c.s.write('POST /up HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\nExpect: 100-continue\r\n\r\n')
  await waitFor(() => c.got().startsWith('HTTP/1.1 100 Continue\r\n\r\n'), 'the interim 100 Continue', 3000)
  c.s.write('hello')
  await waitFor(() => c.got().endsWith('got 5'), 'the final response')
  assert.match(c.got(), /^HTTP\/1\.1 100 Continue\r\n\r\nHTTP\/1\.1 200 OK\r\n/)
  c.s.destroy()
  // curl with a 20 s expect timeout: it would sit that out if no 100 came (the test would time out).
  const r = await curl([...expect100('x'.repeat(2048)), `http://127.0.0.1:${port}/curl`])
  assert.equal(r.status, 200)
  assert.equal(r.body, 'got 2048')
})

test('Expect: 100-continue: a final status before 100 comes back, the body never reaches the origin', async () => {
  const o = await rawOrigin((c) => {
    c.socket.write('HTTP/1.1 417 Expectation Failed\r\nContent-Length: 4\r\n\r\nnope')
  })
  const { port } = await app(o.port)
  const c = await client(port)
  c.s.write('PUT /big HTTP/1.1\r\nHost: x\r\nContent-Length: 10\r\nExpect: 100-continue\r\n\r\n')
  await waitFor(() => c.got().endsWith('nope'), 'the 417')
  assert.match(c.got(), /^HTTP\/1\.1 417 Expectation Failed\r\n/)
  assert.match(c.got(), /Connection: close/i)
  const headLen = o.conns[0]!.bytes.length
  // A client that sends its body anyway: nothing of it is passed on, and the connection closes.
  c.s.write('0123456789')
  await waitFor(() => c.ended(), 'sluice to close the client connection')
  assert.equal(o.conns[0]!.bytes.length, headLen)
  assert.ok(!o.conns[0]!.bytes.toString('latin1').includes('0123456789'))
  // With curl: the 417 is its answer, at once.
  assert.equal((await curl([...expect100('y'.repeat(4096)), `http://127.0.0.1:${port}/curl`])).status, 417)
  assert.ok(!o.conns.some((x) => x.bytes.toString('latin1').includes('yyyy')))
})

test('every answer sluice gives itself carries a stable code in its log line', async () => {
  const hole = await blackhole()
  t.defer(() => hole.close())
  const silent = await rawOrigin() // accepts, never answers
  const garbage = await rawOrigin((c) => c.socket.end('SMTP ready\r\n\r\n'))
  const closed = await freePort()
  const port = await freePort()
  const dest = (p: number) => `http://127.0.0.1:${p}`
  const e = await t.engine({
    apps: [
      {
        name: 'web',
        kind: 'http',
        listen: [port],
        destination: dest(closed),
        timeouts: { upstream: '300ms', header: '300ms' },
        limits: { max_header_size: '1KiB' },
        rules: [
          { name: 'slow', match: { 'x-to': 'slow' }, destination: dest(silent.port) },
          { name: 'bad', match: { 'x-to': 'bad' }, destination: dest(garbage.port) },
        ],
      },
    ],
  })
  const ask = async (raw: string, status: number, code: string) => {
    const c = await client(port)
    c.s.write(raw)
    await waitFor(() => new RegExp(`^HTTP/1\\.1 ${status} `).test(c.got()), `${status} for ${code}`, 3000)
    c.s.destroy()
    await waitFor(() => lines(e.logs, code).length > 0, `a log line with ${code}`)
    const l = lines(e.logs, code)[0]!
    assert.equal(l.app, 'web')
  }
  await ask('GET / HTTP/1.1\r\nHost: x\r\nBad Name: 1\r\n\r\n', 400, 'ERR_HTTP_BAD_REQUEST')
  await ask(`GET / HTTP/1.1\r\nHost: x\r\nX-Big: ${'a'.repeat(2048)}\r\n\r\n`, 431, 'ERR_HTTP_HEAD_TOO_LARGE')
  await ask('CONNECT x:443 HTTP/1.1\r\nHost: x:443\r\n\r\n', 405, 'ERR_HTTP_METHOD')
  await ask(
    'POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: gzip, chunked\r\n\r\n',
    501,
    'ERR_HTTP_NOT_IMPLEMENTED',
  )
  await ask('GET / HTTP/1.1\r\nHost: x\r\n', 408, 'ERR_HTTP_CLIENT_TIMEOUT')
  await ask('GET / HTTP/1.1\r\nHost: x\r\n\r\n', 502, 'ERR_HTTP_UPSTREAM_CONNECT')
  await ask('GET / HTTP/1.1\r\nHost: x\r\nX-To: bad\r\n\r\n', 502, 'ERR_HTTP_UPSTREAM_BAD_RESPONSE')
  await ask('GET / HTTP/1.1\r\nHost: x\r\nX-To: slow\r\n\r\n', 504, 'ERR_HTTP_UPSTREAM_TIMEOUT')
  assert.equal(lines(e.logs, 'ERR_HTTP_UPSTREAM_CONNECT')[0]!.cause, 'ERR_CONNECT_REFUSED')
})

test('Expect: 100-continue on a pooled connection the origin just closed is retried on a fresh one (no body went yet)', async () => {
  let conns = 0
  const server = createServer({ allowHalfOpen: true }, (socket) => {
    const n = ++conns
    let buf = ''
    socket.on('error', () => {})
    socket.on('data', (d: Buffer) => {
      buf += d.toString('latin1')
      if (n === 1 && buf.includes('GET /warm')) {
        buf = ''
        socket.write('HTTP/1.1 200 OK\r\nContent-Length: 4\r\n\r\nwarm')
      } else if (n === 1 && buf.includes('PUT /up')) {
        socket.destroy() // the keep-alive connection dies as it is reused
      } else if (n === 2 && buf.includes('\r\n\r\n') && !buf.includes('sent100')) {
        buf += 'sent100'
        socket.write('HTTP/1.1 100 Continue\r\n\r\n')
      } else if (n === 2 && buf.endsWith('hello')) {
        socket.end('HTTP/1.1 201 Created\r\nContent-Length: 6\r\n\r\nstored')
      }
    })
  })
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()))
  t.defer(() => new Promise<void>((r) => server.close(() => r())))
  const { port } = await app((server.address() as { port: number }).port)
  const c = await client(port)
  c.s.write('GET /warm HTTP/1.1\r\nHost: x\r\n\r\n')
  await waitFor(() => c.got().endsWith('warm'), 'the warm-up response')
  c.s.write('PUT /up HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\nExpect: 100-continue\r\n\r\n')
  await waitFor(() => c.got().includes('100 Continue'), 'the 100 from the fresh connection')
  c.s.write('hello')
  await waitFor(() => c.got().includes('201 Created'), 'the final answer')
  assert.equal(conns, 2)
  c.s.destroy()
})

test('timeouts.header is a deadline for the whole head: a client sending a byte at a time is cut with 408', async () => {
  const o = await rawOrigin()
  const { port, e } = await app(o.port, { timeouts: { header: '1s' } })
  const c = await client(port)
  const head = 'GET /slow HTTP/1.1\r\nHost: x\r\nX-Slow: '
  let i = 0
  const drip = setInterval(() => {
    if (!c.ended()) c.s.write(head[i++ % head.length]!)
  }, 150)
  t.defer(() => clearInterval(drip))
  await waitFor(() => c.ended(), 'the slow client to be cut while it keeps sending', 4000)
  clearInterval(drip)
  assert.match(c.got(), /^HTTP\/1\.1 408 /)
  assert.equal(o.conns.length, 0, 'nothing reached the origin')
  assert.equal(lines(e.logs, 'ERR_HTTP_CLIENT_TIMEOUT').length, 1)
})

test('empty lines before a request count against timeouts.header: CRLFs every 300 ms are cut with 408', async () => {
  const o = await rawOrigin()
  const { port } = await app(o.port, { timeouts: { header: '1s' } })
  const c = await client(port)
  const drip = setInterval(() => {
    if (!c.ended()) c.s.write('\r\n')
  }, 300)
  t.defer(() => clearInterval(drip))
  await waitFor(() => c.ended(), 'the CRLF dripper to be cut', 4000)
  clearInterval(drip)
  assert.match(c.got(), /^HTTP\/1\.1 408 /)
  assert.equal(o.conns.length, 0)
})
