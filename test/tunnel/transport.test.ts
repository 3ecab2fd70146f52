// The tunnel's transport server on its own, with real sockets: what happens before a session.
import assert from 'node:assert/strict'
import { once } from 'node:events'
import { readFileSync } from 'node:fs'
import { connect, createServer, type Socket } from 'node:net'
import { test } from 'node:test'
import { transportServer } from '../../src/tunnel/transport.ts'
import { testScope, waitFor } from '../helpers.ts'
import { makeCa, makeCert } from '../tls-certs.ts'

const t = testScope()

test('a handshake that stalls, or is half-closed, is dropped after connect_timeout', async () => {
  const ca = makeCa(t.tmp.dir, 'tca')
  const cert = makeCert(t.tmp.dir, ca, 'ts', { cn: 'server.test', dns: ['server.test'] })
  const server = transportServer(
    {
      ca: readFileSync(ca.cert),
      cert: readFileSync(cert.cert),
      key: readFileSync(cert.key),
      skipVerify: false,
      peerHostname: 'c',
    },
    { streamWindow: 65_535, sessionWindow: 65_535, maxConcurrentStreams: 10, connectTimeout: 300 },
    { stream: () => {}, refused: () => {}, opened: () => {}, closed: () => {} },
  )
  t.defer(() => server.close())
  // As sluice's listeners do: half-open allowed, the socket handed to the transport.
  const accepted: Socket[] = []
  const listener = createServer({ allowHalfOpen: true }, (s) => {
    accepted.push(s)
    server.accept(s)
  })
  listener.listen(0, '127.0.0.1')
  await once(listener, 'listening')
  t.defer(() => new Promise((r) => listener.close(r)))
  const port = (listener.address() as { port: number }).port
  // The start of a ClientHello, then FIN; and one that just stops.
  for (const end of [true, false]) {
    const c = connect(port, '127.0.0.1')
    c.on('error', () => {})
    await once(c, 'connect')
    c.write(Buffer.from('16030100c8010000c40303', 'hex'))
    if (end) c.end()
    t.defer(() => c.destroy())
  }
  await waitFor(() => accepted.length === 2, 'both accepted')
  const started = performance.now()
  await waitFor(() => accepted.every((s) => s.destroyed), 'both dropped', 3000)
  assert.ok(performance.now() - started < 2000)
})
