// Acceptance: ../shared/acceptance/tunnel.md (D1-D9). Two sluice processes, a client and a server
// joined by mutually authenticated HTTP/2 sessions; certificates made here with openssl; curl and
// raw sockets as service A; a recording node:http origin as service B.
import assert from 'node:assert/strict'
import { execFile, spawn } from 'node:child_process'
import { createHash } from 'node:crypto'
import { copyFileSync } from 'node:fs'
import { createServer } from 'node:http'
import { join } from 'node:path'
import { test } from 'node:test'
import { promisify } from 'node:util'
import { freePort } from '../../src/testkit/ports.ts'
import { curl, getJson, type SluiceProcess, testScope, waitFor } from '../helpers.ts'
import { makeCert } from '../tls-certs.ts'
import { raw, tunnelKit, until } from './tunnel-kit.ts'

const t = testScope()
const { dir, ca, otherCa, clientCert, origin, pair, notifyReceiver } = tunnelKit(t)

test('D1: method, target, body and Host reach B; hop-by-hop fields go both ways; a Date is added', async () => {
  const o = await origin((_req, res) => {
    res.sendDate = false
    res.setHeader('Connection', 'close, X-Resp-Hop')
    res.setHeader('X-Resp-Hop', '1')
    res.setHeader('X-Keep', '1')
    res.end('fine')
  })
  // ptproxy's own TOML for both sides, paths relative to the files.
  const [listen, tunnel] = [await freePort(), await freePort()]
  const clientToml = t.tmp.file(
    'd1-client.toml',
    `[general]
mode = "Client"
peer_hostname = "bar.example.org"
connect_address = "127.0.0.1"
quic_port = ${tunnel}
http_bind_address = "127.0.0.1:${listen}"

[tls]
ca = "tca.pem"
cert = "tclient.pem"
key = "tclient.key"
`,
  )
  const serverToml = t.tmp.file(
    'd1-server.toml',
    `[general]
mode = "Server"
peer_hostname = "foo.example.org"
bind_address = "127.0.0.1"
quic_port = ${tunnel}
http_connect_address = "127.0.0.1:${o.port}"

[tls]
ca = "tca.pem"
cert = "tserver.pem"
key = "tserver.key"

[transport]
initial_window = 487500
congestion_algorithm = "Bbr"
max_idle_timeout = 4000
`,
  )
  const server = await t.sluice(serverToml)
  await t.sluice(clientToml)
  // QUIC-only fields are reported at start, not silently dropped.
  await server.waitLog((l) => l.field === 'initial_window', 'initial_window reported')
  await server.waitLog((l) => l.field === 'congestion_algorithm', 'congestion_algorithm reported')
  const mapped = await server.waitLog((l) => l.field === 'max_idle_timeout', 'max_idle_timeout reported')
  assert.match(String(mapped.msg), /4000 → transport\.idle_timeout and transport\.connect_timeout/)
  const url = `http://127.0.0.1:${listen}`
  await until(`${url}/warm`, 200, 5000)
  const r = await curl([
    '-X',
    'POST',
    '--data-binary',
    'abc',
    '-H',
    'Host: api.internal',
    '-H',
    'x-end: 1',
    '-H',
    'Connection: keep-alive, X-Hop',
    '-H',
    'X-Hop: 1',
    '-H',
    'Keep-Alive: timeout=5',
    '-H',
    'TE: trailers',
    '-H',
    'Proxy-Authorization: x',
    `${url}/p?q=1`,
  ])
  assert.equal(r.status, 200)
  assert.equal(r.body, 'fine')
  assert.match(r.head, /^x-keep: 1$/im)
  assert.doesNotMatch(r.head, /x-resp-hop/i)
  const date = /^date: (.+)$/im.exec(r.head)?.[1]
  assert.ok(date && Math.abs(Date.parse(date) - Date.now()) < 60_000, `Date ${date}`)
  const got = o.seen.at(-1)!
  assert.equal(got.method, 'POST')
  assert.equal(got.url, '/p?q=1')
  assert.equal(got.body, 'abc')
  assert.equal(got.headers.host, 'api.internal')
  assert.equal(got.headers['x-end'], '1')
  for (const h of ['x-hop', 'keep-alive', 'te', 'proxy-authorization'])
    assert.equal(got.headers[h], undefined, h)
  // The server side's own hop to B may say keep-alive; nothing of A's Connection header gets there.
  assert.doesNotMatch(String(got.headers.connection ?? ''), /x-hop/i)
})

test('D2: 503 from the client side while the server is away; sessions come up and go down by themselves', async () => {
  const o = await origin()
  const p = await pair({ originPort: o.port })
  const client = await p.client()
  const t0 = performance.now()
  const before = await curl([`${p.url}/`])
  assert.ok(performance.now() - t0 < 1000)
  assert.equal(before.status, 503)
  assert.match(before.head, /^server: sluice-tunnel-client$/im)
  assert.match(before.body, /tunnel .* is not established/)
  const server = await p.server()
  await until(`${p.url}/`, 200, 300 + 5000)
  // The status JSON shows each session; the metrics count them.
  type Status = { apps: { name: string; sessions: { up: boolean; rttMs: number | null; peer: string }[] }[] }
  const status = await getJson<Status>(`${await client.admin()}/status`)
  const sessions = status.apps.find((a) => a.name === 'to-b')!.sessions
  assert.equal(sessions.length, 2)
  for (const s of sessions) {
    assert.equal(s.up, true)
    assert.equal(typeof s.rttMs, 'number')
    assert.equal(s.peer, `127.0.0.1:${p.tunnel}`)
  }
  const metrics = await (await fetch(`${await client.admin()}/metrics`)).text()
  assert.match(metrics, /^sluice_tunnel_sessions\{app="to-b"\} 2$/m)
  assert.match(metrics, /^sluice_tunnel_requests_total\{app="to-b",code="5xx"\} [1-9]/m)
  server.signal('SIGKILL')
  await server.exited
  const after = await until(`${p.url}/`, 503, 8000)
  assert.match(after.body, /not established/)
})

test('D3: 502 from the server side when B is down; CONNECT 405 and an unknown Transfer-Encoding 400 from the client side', async () => {
  const closed = await freePort()
  const p = await pair({ originPort: closed })
  await p.server()
  await p.client()
  const r = await until(`${p.url}/`, 502, 5000)
  assert.match(r.head, /^server: sluice-tunnel-server$/im)
  assert.match(r.body, /origin 127\.0\.0\.1:\d+ could not be reached: connection refused/)

  const o = await origin()
  const q = await pair({ originPort: o.port })
  await q.up()
  const seen = o.seen.length
  const connectAnswer = await raw(q.listen, 'CONNECT x:443 HTTP/1.1\r\nHost: x:443\r\n\r\n')
  assert.match(connectAnswer, /^HTTP\/1\.1 405 /)
  assert.match(connectAnswer, /Server: sluice-tunnel-client/i)
  const te = await raw(
    q.listen,
    'POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: gzip, chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\n',
  )
  assert.match(te, /^HTTP\/1\.1 400 /)
  assert.match(te, /Server: sluice-tunnel-client/i)
  assert.equal(o.seen.length, seen, 'B received nothing')
})

test('D3b: no Host, or a proxy-style absolute target, is a 400 from the client side with a code; B sees nothing', async () => {
  const o = await origin()
  const q = await pair({ originPort: o.port })
  const { client } = await q.up()
  const seen = o.seen.length
  const noHost = await raw(q.listen, 'GET / HTTP/1.1\r\n\r\n')
  assert.match(noHost, /^HTTP\/1\.1 400 /)
  assert.match(noHost, /Host/)
  const absolute = await raw(
    q.listen,
    'GET http://elsewhere.example/ HTTP/1.1\r\nHost: elsewhere.example\r\n\r\n',
  )
  assert.match(absolute, /^HTTP\/1\.1 400 /)
  assert.match(absolute, /absolute-form/)
  assert.match(absolute, /Server: sluice-tunnel-client/i)
  assert.equal(o.seen.length, seen, 'B received nothing')
  const lines = await waitFor(
    () =>
      client.logs.filter((l) => l.status === 400).length >= 2
        ? client.logs.filter((l) => l.status === 400)
        : null,
    'the two 400s logged',
  )
  for (const l of lines) assert.equal(l.code, 'ERR_TUNNEL_BAD_REQUEST')
})

test('D3c: a client that half-closes after its request (socat) still gets the whole response', async () => {
  const body = 'x'.repeat(200_000)
  const o = await origin((_req, res) => setTimeout(() => res.end(body), 100))
  const q = await pair({ originPort: o.port })
  await q.up()
  const { stdout } = await promisify(execFile)(
    'sh',
    ['-c', `printf 'GET /half HTTP/1.1\\r\\nHost: x\\r\\n\\r\\n' | socat -t 5 - TCP:127.0.0.1:${q.listen}`],
    { encoding: 'latin1', maxBuffer: 1 << 20, timeout: 10_000 },
  )
  assert.match(stdout, /^HTTP\/1\.1 200 /)
  assert.equal(stdout.slice(stdout.indexOf('\r\n\r\n') + 4).length, body.length, 'the whole body')
})

test('D3d: when a client closes its sessions the server closes the sockets: no CLOSE-WAIT, gauges back to 0', async () => {
  const o = await origin()
  const q = await pair({ originPort: o.port })
  const server = await q.server()
  const closeWait = async () => {
    const { stdout } = await promisify(execFile)('ss', [
      '-Htan',
      'state',
      'close-wait',
      `( sport = :${q.tunnel} )`,
    ])
    return stdout.split('\n').filter(Boolean).length
  }
  for (let i = 0; i < 3; i++) {
    const client = await q.client()
    await until(`${q.url}/`, 200, 5000)
    await client.stop()
  }
  await waitFor(async () => (await closeWait()) === 0, 'no socket of the tunnel server in CLOSE-WAIT', 5000)
  const admin = await server.admin()
  await waitFor(
    async () => {
      const text = await (await fetch(`${admin}/metrics`)).text()
      return (
        /^sluice_tunnel_sessions\{[^}]*\} 0$/m.test(text) &&
        /^sluice_connections_active\{[^}]*\} 0$/m.test(text)
      )
    },
    'sluice_tunnel_sessions and sluice_connections_active back to 0',
    5000,
  )
})

test('D4: wrong CA, wrong client name, wrong expected name: no session for 10 s, 503s, B untouched', async () => {
  const o = await origin()
  const foreign = makeCert(dir, otherCa, 'tforeign', {
    cn: 'foo.example.org',
    dns: ['foo.example.org'],
    client: true,
  })
  const evil = makeCert(dir, ca, 'tevil', { cn: 'evil.example.org', dns: ['evil.example.org'], client: true })
  const pairs = [
    await pair({ originPort: o.port, clientCert: foreign }),
    await pair({ originPort: o.port, clientCert: evil }),
    await pair({ originPort: o.port, serverPeerHostname: 'other.example.org' }),
  ]
  const servers: SluiceProcess[] = []
  for (const p of pairs) {
    servers.push(await p.server())
    await p.client()
  }
  const end = performance.now() + 10_000
  while (performance.now() < end) {
    for (const p of pairs) assert.equal((await curl([`${p.url}/`])).status, 503)
    await new Promise((r) => setTimeout(r, 500))
  }
  assert.equal(o.seen.length, 0)
  // The server says why it refused each one.
  for (const s of servers) await s.waitLog((l) => l.msg === 'tunnel session refused', 'a refusal')
  for (const s of servers)
    assert.deepEqual(
      s.logs.filter((l) => l.msg === 'tunnel session established'),
      [],
    )
  // With the right certificates: 200.
  const good = await pair({ originPort: o.port })
  await good.up()
})

test('D5: chunked bodies both ways and Content-Length kept', async () => {
  const o = await origin((req, res, body) => {
    if (req.url === '/len') {
      res.setHeader('Content-Length', '5')
      res.end('hello')
    } else if (req.url === '/chunked') {
      res.write('part one, ')
      setTimeout(() => res.end('part two'), 50)
    } else res.end(`got ${body.length}`)
  })
  const p = await pair({ originPort: o.port })
  await p.up()
  const answer = await raw(
    p.listen,
    'POST /up HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n3;ext=1\r\nabc\r\n4\r\ndefg\r\n0\r\n\r\n',
  )
  assert.match(answer, /^HTTP\/1\.1 200 /)
  assert.equal(o.seen.at(-1)!.body, 'abcdefg')
  const len = await curl([`${p.url}/len`])
  assert.match(len.head, /^content-length: 5$/im)
  assert.equal(len.body, 'hello')
  const ch = await curl([`${p.url}/chunked`])
  assert.equal(ch.body, 'part one, part two')
  assert.match(ch.head, /^transfer-encoding: chunked$/im)
})

test('D6: add_forwarded appends RFC 7239 elements, on the client and then on the server too', async () => {
  const o = await origin()
  const p = await pair({ originPort: o.port, client: '    add_forwarded: true' })
  await p.up()
  await curl(['-H', 'Forwarded: for=1.2.3.4', `${p.url}/f`])
  const one = String(o.seen.at(-1)!.headers.forwarded)
  assert.match(
    one,
    new RegExp(`^for=1\\.2\\.3\\.4, for="127\\.0\\.0\\.1:\\d+";by="127\\.0\\.0\\.1:${p.listen}";proto=http$`),
  )

  const q = await pair({
    originPort: o.port,
    client: '    add_forwarded: true',
    server: '    add_forwarded: true',
  })
  await q.up()
  await curl(['-H', 'Forwarded: for=1.2.3.4', `${q.url}/f`])
  const two = String(o.seen.at(-1)!.headers.forwarded)
  assert.match(
    two,
    new RegExp(
      `^for=1\\.2\\.3\\.4, for="127\\.0\\.0\\.1:\\d+";by="127\\.0\\.0\\.1:${q.listen}";proto=http, for="127\\.0\\.0\\.1:\\d+";by="127\\.0\\.0\\.1:${q.tunnel}";proto=https$`,
    ),
  )
})

test('D7: SIGINT drains, a second exits 130, systemd is told, bad configs are refused', async () => {
  const o = await origin((req, res) => {
    if (req.url === '/slow') setTimeout(() => res.end('late but whole'), 2000)
    else res.end('ok')
  })
  const sock = join(dir, 'notify.sock')
  const rx = notifyReceiver(sock)
  await waitFor(() => rx.messages.includes('ready'), 'the notify receiver')
  const p = await pair({
    originPort: o.port,
    client: '    watchdog_factor: 2',
    env: { NOTIFY_SOCKET: sock, WATCHDOG_USEC: '400000' },
  })
  await p.server()
  const client = await p.client()
  await waitFor(() => rx.messages.find((m) => m.includes('READY=1')), 'READY=1')
  await waitFor(() => rx.messages.find((m) => m.includes('STATUS=tunnel established')), 'STATUS established')
  // WATCHDOG=1 about every 400 ms / 2.
  const w0 = rx.messages.filter((m) => m.includes('WATCHDOG=1')).length
  await new Promise((r) => setTimeout(r, 1000))
  const watchdogs = rx.messages.filter((m) => m.includes('WATCHDOG=1')).length - w0
  assert.ok(watchdogs >= 3 && watchdogs <= 7, `${watchdogs} WATCHDOG=1 in 1 s`)

  const slow = curl([`${p.url}/slow`])
  // Mid-request: B has the request (an idle connection would just be closed by the drain).
  await waitFor(() => o.seen.some((x) => x.url === '/slow'), 'B to have the slow request')
  client.signal('SIGINT')
  await waitFor(() => rx.messages.find((m) => m.includes('STOPPING=1')), 'STOPPING=1')
  await waitFor(
    async () => (await raw(p.listen, 'GET / HTTP/1.1\r\nHost: x\r\n\r\n', 300)) === '',
    'new connections refused',
  )
  const r = await slow
  assert.equal(r.status, 200)
  assert.equal(r.body, 'late but whole')
  assert.equal((await client.exited).code, 0)

  // Two signals: exit 130 at once.
  const q = await pair({ originPort: o.port })
  const { client: c2 } = await q.up()
  // Cut when sluice exits at once: curl fails, which is what exit-now means.
  const pending = curl([`${q.url}/slow`]).then(
    () => 'answered',
    () => 'cut',
  )
  await waitFor(
    () => o.seen.filter((x) => x.url === '/slow').length === 2,
    'B to have the second slow request',
  )
  c2.signal('SIGINT')
  await new Promise((r) => setTimeout(r, 100))
  c2.signal('SIGINT')
  assert.equal((await c2.exited).code, 130)
  assert.equal(await pending, 'cut')

  // Bad configs: exit ≠ 0, the error on stderr, naming the field.
  const unknown = t.tmp.file(
    'd7-unknown.toml',
    `[general]\nmode = "Client"\npeer_hostname = "x"\nfancy = 1\n[tls]\ncert = "a"\nkey = "b"\n`,
  )
  const noOrigin = t.tmp.file(
    'd7-noorigin.toml',
    `[general]\nmode = "Server"\npeer_hostname = "x"\n[tls]\ncert = "a"\nkey = "b"\n`,
  )
  for (const [file, re] of [
    [unknown, /general\.fancy/],
    [noOrigin, /general\.http_connect_address/],
  ] as const) {
    const bad = t.process(['run', '-c', file, '--admin', 'off'])
    const { code } = await bad.exited
    assert.notEqual(code, 0)
    assert.match(bad.stderr, re)
  }
})

test('D8: 200 concurrent one-second requests share the sessions', async () => {
  const o = await origin((_req, res) => setTimeout(() => res.end('slow'), 1000))
  const p = await pair({ originPort: o.port })
  await p.up()
  const t0 = performance.now()
  // curl --parallel: 200 transfers at once, each on its own connection.
  const args = ['-s', '-o', '/dev/null', '-w', '%{http_code}\\n', '--parallel', '--parallel-max', '200']
  for (let i = 0; i < 200; i++) args.push(`${p.url}/c${i}`)
  const out = await new Promise<string>((resolve) => {
    const c = spawn('curl', args)
    let s = ''
    c.stdout.setEncoding('utf8').on('data', (d: string) => (s += d))
    c.on('exit', () => resolve(s))
  })
  const took = performance.now() - t0
  // Bodies ("slow") land on stdout too (-o covers the first URL only): count the status codes.
  const codes = out.match(/\d{3}/g) ?? []
  assert.equal(codes.length, 200, out.slice(0, 200))
  assert.equal(codes.filter((c) => c === '200').length, 200, out.slice(0, 200))
  assert.ok(took < 3000, `took ${took.toFixed(0)} ms`)
})

test('D9: a stalled session fails its requests within idle_timeout; the client reconnects afterwards', async () => {
  const o = await origin((req, res) => {
    if (req.url === '/slow') setTimeout(() => res.end('late'), 4000)
    else res.end('ok')
  })
  const p = await pair({ originPort: o.port })
  const { server } = await p.up()
  const t0 = performance.now()
  const inflight = curl([`${p.url}/slow`])
  await new Promise((r) => setTimeout(r, 200))
  server.signal('SIGSTOP')
  const r = await inflight
  const took = performance.now() - t0
  assert.ok([502, 503].includes(r.status), `status ${r.status}`)
  // idle_timeout 2 s, PINGs every 500 ms: the session is dropped well before the origin would answer.
  assert.ok(took < 3500, `failed after ${took.toFixed(0)} ms`)
  await new Promise((r) => setTimeout(r, 1500))
  server.signal('SIGCONT')
  await until(`${p.url}/`, 200, 8000)
})

test('WebSocket: the upgrade rides an extended CONNECT stream (RFC 8441) and frames pass both ways; other upgrades get 501', async () => {
  // B: a minimal WebSocket echo server (handshake, then small masked text frames echoed back).
  const server = createServer((_req, res) => res.end('plain'))
  const sockets = new Set<import('node:net').Socket>()
  server.on('upgrade', (req, socket: import('node:net').Socket) => {
    sockets.add(socket)
    const key = String(req.headers['sec-websocket-key'])
    const accept = createHash('sha1').update(`${key}258EAFA5-E914-47DA-95CA-C5AB0DC85B11`).digest('base64')
    socket.write(
      `HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: ${accept}\r\nX-Origin: b\r\n\r\n`,
    )
    socket.on('data', (d: Buffer) => {
      const len = d[1]! & 0x7f
      const mask = d.subarray(2, 6)
      const payload = Buffer.from(d.subarray(6, 6 + len).map((b, i) => b ^ mask[i % 4]!))
      const text = Buffer.from(`b:${payload.toString()}`)
      socket.write(Buffer.concat([Buffer.from([0x81, text.length]), text]))
    })
  })
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()))
  t.defer(() => {
    for (const s of sockets) s.destroy()
    return new Promise<void>((r) => server.close(() => r()))
  })
  const p = await pair({ originPort: (server.address() as { port: number }).port })
  await p.up()
  const ws = new WebSocket(`ws://127.0.0.1:${p.listen}/socket`)
  const got: string[] = []
  await new Promise<void>((resolve, reject) => {
    ws.onopen = () => ws.send('hello')
    ws.onmessage = (e) => {
      got.push(String(e.data))
      if (got.length === 1) ws.send('again')
      else resolve()
    }
    ws.onerror = () => reject(new Error('websocket error'))
  })
  ws.close()
  assert.deepEqual(got, ['b:hello', 'b:again'])
  const other = await raw(
    p.listen,
    'GET / HTTP/1.1\r\nHost: x\r\nConnection: Upgrade\r\nUpgrade: h2c\r\n\r\n',
  )
  assert.match(other, /^HTTP\/1\.1 501 /)
  assert.match(other, /not carried by the tunnel/)
})

test('reload: rotated certificate files are read again on SIGHUP, and the sessions come up with them', async () => {
  const o = await origin()
  // The client starts with a certificate the server refuses (wrong name), at paths that stay.
  const evil = makeCert(dir, ca, 'trot', { cn: 'evil.example.org', dns: ['evil.example.org'], client: true })
  const p = await pair({ originPort: o.port, clientCert: evil })
  await p.server()
  const client = await p.client()
  await new Promise((r) => setTimeout(r, 1000))
  assert.equal((await curl([`${p.url}/`])).status, 503)
  // Rotate: the same paths now hold a good certificate.
  copyFileSync(clientCert.cert, evil.cert)
  copyFileSync(clientCert.key, evil.key)
  client.signal('SIGHUP')
  await until(`${p.url}/`, 200, 5000)
  await client.waitLog(
    (l) => String(l.msg).startsWith('tunnel settings or certificates changed'),
    'the rotation',
  )
})

test('request_timeout: an origin that never answers gets a 504 from the server side, naming the wait', async () => {
  const o = await origin((req, res) => {
    if (req.url !== '/never') res.end('ok')
  })
  const p = await pair({
    originPort: o.port,
    serverTransport: '{keepalive_interval: 500ms, idle_timeout: 2s, request_timeout: 1s}',
  })
  await p.up()
  const t0 = performance.now()
  const r = await curl([`${p.url}/never`])
  assert.equal(r.status, 504)
  assert.match(r.head, /^server: sluice-tunnel-server$/im)
  assert.match(r.head, /^sluice-error: ERR_TUNNEL_ORIGIN_TIMEOUT$/im)
  assert.match(r.body, /no response within 1000ms/)
  assert.ok(performance.now() - t0 < 3000)
})
