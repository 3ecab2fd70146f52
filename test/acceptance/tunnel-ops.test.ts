// Acceptance, the tunnel in operation (issue 11): certificates refused on either side, the origin
// pool reused between loads. Two sluice processes as in tunnel.test.ts.
import assert from 'node:assert/strict'
import { spawn } from 'node:child_process'
import { copyFileSync, readFileSync, writeFileSync } from 'node:fs'
import { connect as h2connect } from 'node:http2'
import { createServer as createTcpServer } from 'node:net'
import { test } from 'node:test'
import { freePort } from '../../src/testkit/ports.ts'
import { curl, getJson, type LogLine, type SluiceProcess, testScope, waitFor } from '../helpers.ts'
import { makeCert } from '../tls-certs.ts'
import { raw, tunnelKit, until } from './tunnel-kit.ts'

const t = testScope()
const { dir, ca, otherCa, clientCert, serverCert, origin, pair, notifyReceiver } = tunnelKit(t)

/** `n` GETs through the tunnel at once (curl --parallel), each on its own connection; their status codes. */
async function parallel(url: string, n: number): Promise<string[]> {
  const args = ['-s', '-o', '/dev/null', '-w', '%{http_code}\\n', '--parallel', '--parallel-max', String(n)]
  for (let i = 0; i < n; i++) args.push(`${url}/p${i}`)
  const out = await new Promise<string>((resolve) => {
    const c = spawn('curl', args)
    let s = ''
    c.stdout.setEncoding('utf8').on('data', (d: string) => (s += d))
    c.on('exit', () => resolve(s))
  })
  return out.match(/\d{3}/g) ?? []
}

test('the origin pool: after a load stops, the next one reuses the connections to B', async () => {
  const o = await origin((_req, res) => setTimeout(() => res.end('ok'), 20))
  const p = await pair({ originPort: o.port })
  await p.up()
  for (let i = 0; i < 10; i++) assert.equal((await curl([`${p.url}/s${i}`])).status, 200)
  const sequential = o.accepted
  assert.ok(sequential <= 2, `${sequential} connections for sequential requests`)
  await new Promise((r) => setTimeout(r, 1000))
  for (let i = 0; i < 10; i++) assert.equal((await curl([`${p.url}/t${i}`])).status, 200)
  assert.equal(o.accepted, sequential, 'sequential requests after a pause reuse the pooled connection')
  // A parallel load opens up to one connection per request; the next one finds them in the pool.
  const first = await parallel(p.url, 20)
  assert.equal(first.filter((c) => c === '200').length, 20, first.join(' '))
  const afterLoad = o.accepted
  assert.ok(afterLoad <= sequential + 20, `${afterLoad} connections`)
  await new Promise((r) => setTimeout(r, 1000))
  const second = await parallel(p.url, 20)
  assert.equal(second.filter((c) => c === '200').length, 20, second.join(' '))
  assert.equal(o.accepted, afterLoad, 'the second load opened no new connection to B')
})

/** Requests through the tunnel get 503 for `ms` (no session comes up); B sees none. */
async function refusedFor(url: string, ms: number) {
  const end = performance.now() + ms
  while (performance.now() < end) {
    assert.equal((await curl([`${url}/`])).status, 503)
    await new Promise((r) => setTimeout(r, 250))
  }
}

test('mTLS, server side: an expired client certificate, a foreign CA, or none at all is refused; B sees nothing', async () => {
  const o = await origin()
  const expired = makeCert(dir, ca, 'texpired', {
    cn: 'foo.example.org',
    dns: ['foo.example.org'],
    client: true,
    days: -1,
  })
  const foreign = makeCert(dir, otherCa, 'tforeign2', {
    cn: 'foo.example.org',
    dns: ['foo.example.org'],
    client: true,
  })
  const pairs = [
    await pair({ originPort: o.port, clientCert: expired }),
    await pair({ originPort: o.port, clientCert: foreign }),
  ]
  const servers: SluiceProcess[] = []
  for (const p of pairs) {
    servers.push(await p.server())
    await p.client()
  }
  // No client certificate at all: an HTTP/2 client that trusts the server and tries a request.
  const bare = await new Promise<string>((resolve) => {
    const session = h2connect(`https://127.0.0.1:${pairs[0]!.tunnel}`, {
      ca: readFileSync(ca.cert),
      servername: 'bar.example.org',
    })
    session.on('error', (err) => resolve(`session error: ${err.message}`))
    const req = session.request({ ':path': '/bare' })
    req.on('response', (h) => resolve(`response ${h[':status']}`))
    req.on('error', (err) => resolve(`stream error: ${err.message}`))
    req.end()
  })
  assert.doesNotMatch(bare, /^response/, bare)
  for (const p of pairs) await refusedFor(p.url, 1500)
  assert.equal(o.seen.length, 0, 'B received nothing')
  const [exp, frn] = servers as [SluiceProcess, SluiceProcess]
  // The server says why it refused each one, and who tried.
  const refusal = async (s: SluiceProcess, re: RegExp) => {
    const line = await s.waitLog(
      (l) => l.msg === 'tunnel session refused' && re.test(String(l.error)),
      `a refusal matching ${re}`,
    )
    assert.match(String(line.remote), /^127\.0\.0\.1:\d+$/)
    assert.equal(line.code, 'ERR_TUNNEL_PEER_REFUSED')
  }
  await refusal(exp, /client certificate has expired \(CERT_HAS_EXPIRED\)/)
  await refusal(exp, /client sent no certificate/)
  await refusal(frn, /not signed by a CA in tls\.ca/)
})

test('mTLS, client side: a server certificate from another CA, or for another name, is refused; B sees nothing', async () => {
  const o = await origin()
  const strangerServer = makeCert(dir, otherCa, 'tstranger', {
    cn: 'bar.example.org',
    dns: ['bar.example.org'],
  })
  const pairs = [
    await pair({ originPort: o.port, serverCert: strangerServer }),
    await pair({ originPort: o.port, clientPeerHostname: 'other.example.org' }),
  ]
  const clients: SluiceProcess[] = []
  for (const p of pairs) {
    await p.server()
    clients.push(await p.client())
  }
  for (const p of pairs) await refusedFor(p.url, 1500)
  assert.equal(o.seen.length, 0, 'B received nothing')
  const [stranger, misnamed] = clients as [SluiceProcess, SluiceProcess]
  const failure = (c: SluiceProcess, re: RegExp) =>
    waitFor(() => c.logs.find((l) => re.test(String(l.error))), `a session failure matching ${re}`)
  await failure(stranger, /certificate/i)
  await failure(misnamed, /other\.example\.org/)
})

test('an unreachable peer: attempts back off from connect_interval, one warning, then "session established" when it is back', async () => {
  const o = await origin()
  const p = await pair({
    originPort: o.port,
    transport: '{keepalive_interval: 500ms, idle_timeout: 2s, connect_interval: 200ms, connect_timeout: 2s}',
  })
  // Where the server will be, a listener that takes each connection and closes it: it counts attempts.
  let accepts = 0
  const counter = createTcpServer((s) => {
    accepts++
    s.destroy()
  })
  await new Promise<void>((r) => counter.listen(p.tunnel, '127.0.0.1', () => r()))
  t.defer(() => counter.close())
  const client = await p.client()
  const since = client.logs.length
  await new Promise((r) => setTimeout(r, 4000))
  // Every 200 ms for 4 s would be 2 sessions × 20 attempts; backing off (200, 400, 800, 1600 ms…), 5 each.
  assert.ok(accepts >= 6 && accepts <= 14, `${accepts} attempts in 4 s`)
  type Status = { apps: { name: string; sessions: { attempts: number; up: boolean }[] }[] }
  const sessions = (await getJson<Status>(`${await client.admin()}/status`)).apps[0]!.sessions
  const attempts = sessions.reduce((n, s) => n + s.attempts, 0)
  assert.ok(Math.abs(attempts - accepts) <= 2, `status says ${attempts}, the listener saw ${accepts}`)
  // Logged once, not once per attempt: one warning, and no other line since start (debug aside).
  const warnings = client.logs.filter((l) => Number(l.level) >= 40)
  assert.deepEqual(
    warnings.map((l) => l.msg?.split(':')[0]),
    ['tunnel peer unreachable'],
    JSON.stringify(warnings),
  )
  const said = client.logs.slice(since).filter((l) => Number(l.level) === 30)
  assert.deepEqual(said, [])
  assert.equal(warnings[0]!.code, 'ERR_TUNNEL_SESSION')
  // The server takes the port: the sessions come up, saying how long it took.
  await new Promise<void>((r) => counter.close(() => r()))
  await p.server()
  await until(`${p.url}/`, 200, 8000)
  const back = await client.waitLog(
    (l) => String(l.msg).startsWith('tunnel session established'),
    'established',
  )
  assert.ok(Number(back.failedAttempts) >= 6, JSON.stringify(back))
})

test('sessions are logged when established and closed, with the peer certificate name and address, on both sides', async () => {
  const o = await origin()
  const p = await pair({ originPort: o.port })
  const { server, client } = await p.up()
  const lines = (s: SluiceProcess, msg: string, n: number) =>
    waitFor(() => {
      const found = s.logs.filter((l) => l.msg === msg || String(l.msg).startsWith(`${msg},`))
      return found.length >= n ? found : null
    }, `${n} × ${msg}`)
  const opened = await lines(server, 'tunnel session established', 2)
  for (const l of opened) {
    assert.equal(l.cn, 'foo.example.org')
    assert.match(String(l.san), /DNS:foo\.example\.org/)
    assert.match(String(l.remote), /^127\.0\.0\.1:\d+$/)
  }
  for (const l of await lines(client, 'tunnel session established', 2)) {
    assert.equal(l.cn, 'bar.example.org')
    assert.equal(l.peer, `127.0.0.1:${p.tunnel}`)
  }
  // The client stops: the server says each session closed, who it was, how many requests it carried.
  client.signal('SIGINT')
  await client.exited
  const closed = await lines(server, 'tunnel session closed', 2)
  assert.deepEqual(closed.map((l) => l.remote).sort(), opened.map((l) => l.remote).sort())
  for (const l of closed) {
    assert.equal(l.cn, 'foo.example.org')
    assert.equal(typeof l.requests, 'number')
  }
  assert.ok(closed.reduce((n, l) => n + Number(l.requests), 0) >= 1)
  // The server goes away: the client says its sessions closed, with a code.
  const again = await p.client()
  await until(`${p.url}/`, 200, 5000)
  server.signal('SIGKILL')
  for (const l of await lines(again, 'tunnel session closed', 2)) {
    assert.equal(l.code, 'ERR_TUNNEL_SESSION')
    assert.equal(l.cn, 'bar.example.org')
  }
})

test('every tunnel failure on a log line or in a synthetic answer carries its code, on both sides', async () => {
  const o = await origin((req, res) => {
    if (req.url === '/never') return
    if (req.url === '/cut') {
      res.writeHead(200, { 'content-length': '100000' })
      res.write('the first part')
      setTimeout(() => res.socket?.destroy(), 100)
      return
    }
    res.end('ok')
  })
  const p = await pair({
    originPort: o.port,
    serverTransport: '{keepalive_interval: 500ms, idle_timeout: 2s, request_timeout: 1s}',
  })
  const { server, client } = await p.up()
  const noOrigin = await pair({ originPort: await freePort() })
  const server2 = await noOrigin.server()
  await noOrigin.client()
  const alone = await pair({ originPort: o.port })
  const lonely = await alone.client()
  const coded = (head: string, body: string, code: string) => {
    assert.match(head, new RegExp(`^sluice-error: ${code}\\r?$`, 'im'), head)
    assert.ok(body.startsWith(`${code}: `), body)
  }
  // The server side: the origin refuses (502), or says nothing within request_timeout (504).
  const refused = await until(`${noOrigin.url}/`, 502, 5000)
  coded(refused.head, refused.body, 'ERR_TUNNEL_ORIGIN')
  const late = await curl([`${p.url}/never`])
  assert.equal(late.status, 504)
  coded(late.head, late.body, 'ERR_TUNNEL_ORIGIN_TIMEOUT')
  // The origin cuts its response: the stream is reset and A's connection cut, not ended as if whole.
  await assert.rejects(curl([`${p.url}/cut`]))
  // The client side: no session (503), CONNECT (405), another upgrade (501), no Host and garbage (400).
  const down = await curl([`${alone.url}/`])
  assert.equal(down.status, 503)
  coded(down.head, down.body, 'ERR_TUNNEL_DOWN')
  const split = (text: string) => {
    const i = text.indexOf('\r\n\r\n')
    return [text.slice(0, i), text.slice(i + 4)] as const
  }
  for (const [request, status, code] of [
    ['CONNECT x:443 HTTP/1.1\r\nHost: x:443\r\n\r\n', 405, 'ERR_TUNNEL_UNSUPPORTED'],
    [
      'GET / HTTP/1.1\r\nHost: x\r\nConnection: Upgrade\r\nUpgrade: h2c\r\n\r\n',
      501,
      'ERR_TUNNEL_UNSUPPORTED',
    ],
    ['GET / HTTP/1.1\r\n\r\n', 400, 'ERR_TUNNEL_BAD_REQUEST'],
    ['NOT HTTP AT ALL\r\n\r\n', 400, 'ERR_TUNNEL_BAD_REQUEST'],
  ] as const) {
    const answer = await raw(p.listen, request)
    assert.match(answer, new RegExp(`^HTTP/1\\.1 ${status} `), answer)
    coded(...split(answer), code)
  }
  // Each of those is a log line with the same code; no warning or error of either side lacks one.
  const has = (s: SluiceProcess, code: string, n = 1) =>
    waitFor(() => s.logs.filter((l) => l.code === code).length >= n, `${n} × ${code} logged`)
  await has(server, 'ERR_TUNNEL_ORIGIN_TIMEOUT')
  await has(server, 'ERR_TUNNEL_ORIGIN')
  await has(server2, 'ERR_TUNNEL_ORIGIN')
  await has(client, 'ERR_TUNNEL_STREAM')
  await has(client, 'ERR_TUNNEL_UNSUPPORTED', 2)
  await has(client, 'ERR_TUNNEL_BAD_REQUEST', 2)
  await has(lonely, 'ERR_TUNNEL_DOWN')
  await has(lonely, 'ERR_TUNNEL_SESSION')
  const uncoded = (s: SluiceProcess): LogLine[] =>
    s.logs.filter((l) => Number(l.level) >= 40 && !/^ERR_TUNNEL_[A-Z_]+$/.test(String(l.code)))
  for (const s of [server, client, server2, lonely]) assert.deepEqual(uncoded(s), [])
})

test('certificate files that cannot be used: run refuses to start with ERR_TUNNEL_CERT; a reload with them is refused and the sessions go on', async () => {
  const o = await origin()
  const missing = await pair({
    originPort: o.port,
    clientCert: { cert: `${dir}/absent.pem`, key: clientCert.key },
    serverCert: { cert: serverCert.cert, key: `${dir}/tca.pem` },
  })
  for (const [file, re] of [
    [missing.clientFile, /apps\[0\]\.tls\.cert: \S+absent\.pem: no such file/],
    [missing.serverFile, /apps\[0\]\.tls\.key: \S+tca\.pem: no PEM private key/],
  ] as const) {
    const p = t.process(['run', '-c', file, '--admin', 'off'])
    const exit = await Promise.race([
      p.exited,
      new Promise((r) => setTimeout(() => r('still running'), 5000)),
    ])
    assert.deepEqual(exit, { code: 1, signal: null })
    assert.match(p.stderr, /ERR_TUNNEL_CERT/)
    assert.match(p.stderr, re)
  }
  // Copies that a rotation can spoil.
  const copy = (c: { cert: string; key: string }, name: string) => {
    const out = { cert: `${dir}/${name}.pem`, key: `${dir}/${name}.key` }
    copyFileSync(c.cert, out.cert)
    copyFileSync(c.key, out.key)
    return out
  }
  const cc = copy(clientCert, 'rotc')
  const sc = copy(serverCert, 'rots')
  const p = await pair({ originPort: o.port, clientCert: cc, serverCert: sc })
  const { server, client } = await p.up()
  writeFileSync(cc.cert, 'half written\n')
  writeFileSync(sc.key, '')
  for (const s of [client, server]) {
    s.signal('SIGHUP')
    const line = await s.waitLog(
      (l) => l.msg === 'config rejected; the running config stays in force',
      'rejected',
    )
    assert.equal(line.code, 'ERR_TUNNEL_CERT')
  }
  // The sessions stay up on the certificates in use.
  await new Promise((r) => setTimeout(r, 500))
  assert.equal((await curl([`${p.url}/`])).status, 200)
  assert.equal(
    client.count((l) => l.msg === 'tunnel session closed'),
    0,
  )
})

test('a fatal start error (a certificate file, a port in use) reaches systemd as STATUS= before the exit', async () => {
  const o = await origin()
  const sock = `${dir}/fatal-notify.sock`
  const rx = notifyReceiver(sock)
  await waitFor(() => rx.messages.includes('ready'), 'the notify receiver')
  const bad = await pair({ originPort: o.port, clientCert: { cert: `${dir}/gone.pem`, key: clientCert.key } })
  const taken = await pair({ originPort: o.port })
  const holder = createTcpServer()
  await new Promise<void>((r) => holder.listen(taken.tunnel, '127.0.0.1', () => r()))
  t.defer(() => holder.close())
  for (const [file, re] of [
    [
      bad.clientFile,
      /(^|\|)STATUS=failed to start: ERR_TUNNEL_CERT: .*apps\[0\]\.tls\.cert: \S+gone\.pem: no such file/,
    ],
    [taken.serverFile, /(^|\|)STATUS=failed to start: ERR_LISTEN: .*127\.0\.0\.1:\d+/],
  ] as const) {
    const p = t.process(['run', '-c', file, '--admin', 'off'], { NOTIFY_SOCKET: sock })
    const exit = await Promise.race([
      p.exited,
      new Promise((r) => setTimeout(() => r('still running'), 5000)),
    ])
    assert.deepEqual(exit, { code: 1, signal: null }, p.stderr)
    // Sent before the exit: it is there once the process is gone.
    const status = rx.messages.find((m) => re.test(m))
    assert.ok(status, `${re} in ${JSON.stringify(rx.messages)}`)
  }
})

test('the client front: a slow head is cut at timeouts.header with 408, an oversized one gets 431 without a reset, B sees neither', async () => {
  const o = await origin()
  const p = await pair({ originPort: o.port, client: '    timeouts: {header: 1s, idle: 30s}\n' })
  const { client } = await p.up()
  const seen = o.seen.length
  // A byte every 150 ms: an idle timer would never fire; the deadline does.
  const { connect } = await import('node:net')
  const slow = connect(p.listen, '127.0.0.1')
  let got = ''
  let closed = false
  slow.setEncoding('latin1')
  slow.on('data', (d: string) => (got += d))
  slow.on('error', () => {})
  slow.on('close', () => (closed = true))
  const head = 'GET /slow HTTP/1.1\r\nHost: b\r\nX-Slow: '
  let i = 0
  const drip = setInterval(() => {
    if (!closed) slow.write(head[i++ % head.length]!)
  }, 150)
  t.defer(() => clearInterval(drip))
  await waitFor(() => closed, 'the slow client to be cut while it keeps sending', 5000)
  clearInterval(drip)
  assert.match(got, /^HTTP\/1\.1 408 /)
  assert.match(got, /ERR_TUNNEL_CLIENT_TIMEOUT/)
  // 64 KiB of header: 431, answered and closed, not reset.
  const flood = await new Promise<{ text: string; error: string | null }>((resolve) => {
    const s = connect(p.listen, '127.0.0.1')
    let text = ''
    s.setEncoding('latin1')
    s.on('data', (d: string) => (text += d))
    s.on('error', (e: NodeJS.ErrnoException) => resolve({ text, error: e.code ?? e.message }))
    s.on('end', () => resolve({ text, error: null }))
    s.write(`GET / HTTP/1.1\r\nHost: b\r\nX-Big: ${'a'.repeat(64 * 1024)}\r\n\r\n`)
  })
  assert.equal(flood.error, null)
  assert.match(flood.text, /^HTTP\/1\.1 431 /)
  assert.match(flood.text, /ERR_TUNNEL_HEAD_TOO_LARGE/)
  assert.equal(o.seen.length, seen, 'B saw nothing of either')
  // A connection that sends nothing is closed at the deadline, quietly (no 408 for no request).
  const idle = connect(p.listen, '127.0.0.1')
  let idleGot = ''
  let idleClosed = false
  idle.setEncoding('latin1')
  idle.on('data', (d: string) => (idleGot += d))
  idle.on('error', () => {})
  idle.on('close', () => (idleClosed = true))
  await waitFor(() => idleClosed, 'the silent connection to be closed at the header deadline', 5000)
  assert.equal(idleGot, '')
  // And a normal request still goes through.
  assert.equal((await curl([`${p.url}/after`])).status, 200)
  assert.ok(client.logs.some((l) => l.code === 'ERR_TUNNEL_CLIENT_TIMEOUT'))
})

test('a disabled tunnel client opens no session to its peer; enabled by a reload, it does', async () => {
  let accepted = 0
  const peer = createTcpServer((s) => {
    accepted++
    s.destroy()
  })
  await new Promise<void>((r) => peer.listen(0, '127.0.0.1', () => r()))
  t.defer(() => new Promise<void>((r) => peer.close(() => r())))
  const peerPort = (peer.address() as { port: number }).port
  const listen = await freePort()
  const doc = (enabled: boolean) => `apps:
  - name: off
    kind: tunnel
    mode: client
    enabled: ${enabled}
    listen: ["127.0.0.1:${listen}"]
    peer: 127.0.0.1:${peerPort}
    peer_hostname: bar.example.org
    tls: {ca: ${ca.cert}, cert: ${clientCert.cert}, key: ${clientCert.key}}
`
  const file = t.tmp.file('disabled-client.yaml', doc(false))
  const p = await t.sluice(file)
  // A reload round trip: whatever the start did has reached the peer by now.
  writeFileSync(file, `${doc(false)}# touched\n`)
  await p.waitLog((l) => String(l.msg).startsWith('config reloaded'), 'a reload')
  assert.equal(accepted, 0, 'no connection to the peer while disabled')
  writeFileSync(file, doc(true))
  await waitFor(() => accepted > 0, 'a session attempt once enabled')
})
