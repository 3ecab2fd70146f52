import assert from 'node:assert/strict'
import { createHash, randomBytes } from 'node:crypto'
import { connect, createServer, type Server, type Socket } from 'node:net'
import { after, test } from 'node:test'
import { Pipe } from '../../src/net/pipe.ts'
import { waitFor } from '../helpers.ts'

const servers: Server[] = []
const sockets = new Set<Socket>()
after(() => {
  // Destroy every socket too: a failed test must not leave the process alive.
  for (const s of sockets) s.destroy()
  for (const s of servers) s.close()
})

function track(s: Socket): Socket {
  sockets.add(s)
  return s
}

function listen(onConn: (s: Socket) => void): Promise<number> {
  const s = createServer({ allowHalfOpen: true }, (c) => onConn(track(c)))
  servers.push(s)
  return new Promise((r) => s.listen(0, '127.0.0.1', () => r((s.address() as { port: number }).port)))
}

/** A proxy on loopback built from Pipe alone; `pipes` collects each Pipe once closed. */
async function proxy(upstreamPort: number, idleTimeout = 0) {
  const closed: Pipe[] = []
  const open: Pipe[] = []
  const port = await listen((client) => {
    const up = track(connect({ port: upstreamPort, host: '127.0.0.1', allowHalfOpen: true }))
    up.once('connect', () => open.push(new Pipe(client, up, { idleTimeout, onClose: (p) => closed.push(p) })))
  })
  return { port, closed, open }
}

test('backpressure: a reader that stops reading stops the writer; nothing piles up in the proxy', async () => {
  let held: Socket | null = null
  const received = createHash('sha256')
  let n = 0
  const up = await listen((s) => {
    held = s
    s.pause()
    s.on('data', (d: Buffer) => {
      received.update(d)
      n += d.length
    })
    s.on('end', () => s.end())
  })
  const px = await proxy(up)
  const data = randomBytes(64 * 1024 * 1024)
  const client = track(connect(px.port, '127.0.0.1'))
  let written = 0
  let finished = false
  const pump = () => {
    while (written < data.length) {
      const piece = data.subarray(written, written + 65536)
      written += piece.length
      if (!client.write(piece)) return client.once('drain', pump)
    }
    client.end()
    finished = true
  }
  client.once('connect', pump)
  await waitFor(() => px.open.length === 1 && held, 'the pipe')
  // The writer stalls: wait until it has stopped making progress, then check how far it got.
  let last = -1
  await waitFor(
    async () => {
      const was = last
      last = written
      await new Promise((r) => setTimeout(r, 200))
      return written === was && written > 0
    },
    'the writer to stall',
    10_000,
  )
  assert.equal(finished, false)
  assert.ok(written < data.length / 2, `the client wrote ${written} bytes into a stalled pipe`)
  const pipe = px.open[0]!
  assert.ok(
    pipe.upstream.writableLength <= 1024 * 1024,
    `proxy buffers ${pipe.upstream.writableLength} bytes`,
  )
  held!.resume()
  await waitFor(() => finished && n === data.length, 'all bytes through once reading resumes', 15_000)
  assert.equal(received.digest('hex'), createHash('sha256').update(data).digest('hex'))
  client.destroy()
})

test('a reset from the upstream reaches the client as a reset', async () => {
  const up = await listen((s) => s.once('data', () => s.resetAndDestroy()))
  const px = await proxy(up)
  const err = await new Promise<string>((resolve) => {
    const c = track(connect(px.port, '127.0.0.1', () => c.write('x')))
    c.on('error', (e: NodeJS.ErrnoException) => resolve(e.code ?? ''))
    c.on('close', () => resolve('closed without error'))
  })
  assert.equal(err, 'ECONNRESET')
  await waitFor(() => px.closed.length === 1, 'the pipe to close')
  assert.equal(px.closed[0]!.cause, 'upstream-reset')
})

test('idle timeout closes both sides of a quiet connection', async () => {
  const up = await listen((s) => s.pipe(s))
  const px = await proxy(up, 150)
  const c = track(connect(px.port, '127.0.0.1'))
  let closedAt = 0
  c.on('close', () => {
    closedAt = Date.now()
  })
  c.on('error', () => {})
  const t0 = Date.now()
  await waitFor(() => closedAt > 0, 'the idle connection to close', 2000)
  assert.ok(closedAt - t0 >= 140, `closed after ${closedAt - t0}ms`)
  await waitFor(() => px.closed.length === 1, 'the pipe to report')
  assert.equal(px.closed[0]!.cause, 'idle')
})

test('half-close both ways: each side gets its FIN and all data', async () => {
  const up = await listen((s) => {
    s.on('data', () => {})
    s.on('end', () => s.end('server done'))
  })
  const px = await proxy(up)
  const got = await new Promise<string>((resolve) => {
    let buf = ''
    const c = track(
      connect({ port: px.port, host: '127.0.0.1', allowHalfOpen: true }, () => c.end('client done')),
    )
    c.setEncoding('utf8')
    c.on('data', (d: string) => (buf += d))
    c.on('end', () => resolve(buf))
  })
  assert.equal(got, 'server done')
  await waitFor(() => px.closed.length === 1, 'both sides closed')
  assert.equal(px.closed[0]!.cause, 'done')
})
