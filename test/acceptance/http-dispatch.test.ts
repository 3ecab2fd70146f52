// Acceptance: ../shared/acceptance/http-dispatch.md (C1-C9), plus HTTP faults and reloads. sluice
// runs as a child process with the sidecar's YAML (or its own format); curl, node:http and the
// WebSocket client built into Node are the clients; the origins record what reaches them.
import assert from 'node:assert/strict'
import { execFile } from 'node:child_process'
import { createHash, randomBytes } from 'node:crypto'
import { writeFileSync } from 'node:fs'
import { Agent, createServer, request, type Server } from 'node:http'
import { connect, type Socket } from 'node:net'
import { before, test } from 'node:test'
import { promisify } from 'node:util'
import { freePort } from '../../src/testkit/ports.ts'
import { curl, exchange, type SluiceProcess, testScope, waitFor } from '../helpers.ts'

const run = promisify(execFile)
const t = testScope()

interface Seen {
  method: string
  url: string
  headers: Record<string, string | string[] | undefined>
  raw: string[]
  sha: string
  bytes: number
}

/** An origin that records each request and answers by `handler` (default: 200 with its name). */
async function origin(
  name: string,
  handler?: (req: Seen, res: import('node:http').ServerResponse) => void,
): Promise<{ port: number; seen: Seen[]; connections: number; server: Server }> {
  const o = { port: 0, seen: [] as Seen[], connections: 0, server: null as unknown as Server }
  const server = createServer((req, res) => {
    const hash = createHash('sha256')
    let bytes = 0
    req.on('data', (d: Buffer) => {
      hash.update(d)
      bytes += d.length
    })
    req.on('end', () => {
      const s: Seen = {
        method: req.method!,
        url: req.url!,
        headers: req.headers,
        raw: req.rawHeaders,
        sha: hash.digest('hex'),
        bytes,
      }
      o.seen.push(s)
      res.setHeader('Destination_app', 'ok')
      if (handler) handler(s, res)
      else res.end(`ok-${name}`)
    })
  })
  const sockets = new Set<Socket>()
  server.on('connection', (c: Socket) => {
    o.connections++
    sockets.add(c)
    c.on('close', () => sockets.delete(c))
  })
  server.on('upgrade', (req, socket: Socket) => {
    // A minimal WebSocket server: handshake, then echo text frames (small, masked from clients).
    const key = req.headers['sec-websocket-key'] as string
    const accept = createHash('sha1').update(`${key}258EAFA5-E914-47DA-95CA-C5AB0DC85B11`).digest('base64')
    socket.write(
      `HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: ${accept}\r\nX-Origin: ${name}\r\n\r\n`,
    )
    socket.on('data', (d: Buffer) => {
      const len = d[1]! & 0x7f
      const mask = d.subarray(2, 6)
      const payload = Buffer.from(d.subarray(6, 6 + len).map((b, i) => b ^ mask[i % 4]!))
      const text = Buffer.from(`${name}:${payload.toString()}`)
      socket.write(Buffer.concat([Buffer.from([0x81, text.length]), text]))
    })
  })
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()))
  o.port = (server.address() as { port: number }).port
  o.server = server
  t.defer(() => new Promise<void>((r) => server.close(() => r())))
  // Upgraded sockets are no longer the HTTP server's: end every socket by hand.
  t.defer(() => {
    for (const c of sockets) c.destroy()
  })
  return o
}

let h0: Awaited<ReturnType<typeof origin>>
let h1: Awaited<ReturnType<typeof origin>>
let sluice: SluiceProcess
let port = 0
let url = ''

before(async () => {
  h0 = await origin('h0', (s, res) => {
    if (s.url === '/missing') {
      res.statusCode = 404
      res.end('nope')
    } else if (s.url === '/redirect') {
      res.writeHead(302, { Location: '/elsewhere' })
      res.end()
    } else res.end('ok-h0')
  })
  h1 = await origin('h1', (_s, res) => {
    res.statusCode = 201
    res.end('ok-h1')
  })
  port = await freePort()
  url = `http://127.0.0.1:${port}`
  const file = t.tmp.file(
    'sidecar.yaml',
    `key: environment
destination: http://127.0.0.1:${h0.port}
rewrites:
  dev:
    destination: http://127.0.0.1:${h1.port}
    patch: [{key: Host, val: example.com}, {key: dispatched, val: true}]
  qa:
    patch: [{key: dispatched, val: true}]
`,
  )
  sluice = await t.sluice(file, [], { SIDECAR_PORT: String(port) })
})

/** Requests seen by an origin since `mark`. */
function since(o: { seen: Seen[] }, mark: number): Seen[] {
  return o.seen.slice(mark)
}

test('C1: a header value picks the rule: destination, path and query exact, patches applied', async () => {
  const m0 = h0.seen.length
  const m1 = h1.seen.length
  const r = await curl([`${url}/a/b?x=1&y=2`, '-H', 'environment: dev', '-H', 'X-Custom: 1'])
  assert.equal(r.status, 201)
  assert.equal(r.body, 'ok-h1')
  const got = since(h1, m1)
  assert.equal(got.length, 1)
  assert.equal(got[0]!.method, 'GET')
  assert.equal(got[0]!.url, '/a/b?x=1&y=2')
  const hosts = got[0]!.raw.filter((_, i, a) => i % 2 === 0 && a[i]!.toLowerCase() === 'host')
  assert.equal(hosts.length, 1)
  assert.equal(got[0]!.headers.host, 'example.com')
  assert.equal(got[0]!.headers.dispatched, 'true')
  assert.equal(got[0]!.headers['x-custom'], '1')
  assert.equal(since(h0, m0).length, 0)
})

test('C2: no header, other values and other case go to the default; header names are case-insensitive', async () => {
  for (const h of [[], ['-H', 'environment: prod'], ['-H', 'environment: DEV']]) {
    const m0 = h0.seen.length
    const r = await curl([`${url}/`, ...h])
    assert.equal(r.body, 'ok-h0', `with ${h.join(' ')}`)
    const s = since(h0, m0)[0]!
    assert.equal(s.headers.host, `127.0.0.1:${h0.port}`)
    assert.equal(s.headers.dispatched, undefined)
  }
  const m1 = h1.seen.length
  const r = await curl([`${url}/`, '-H', 'ENVIRONMENT: dev'])
  assert.equal(r.body, 'ok-h1')
  assert.equal(since(h1, m1).length, 1)
})

test('C3: a rewrite without destination patches and uses the default destination', async () => {
  const m0 = h0.seen.length
  const r = await curl([`${url}/q`, '-H', 'environment: qa'])
  assert.equal(r.body, 'ok-h0')
  assert.equal(since(h0, m0)[0]!.headers.dispatched, 'true')
})

test('C4: methods and 1 MiB bodies pass unchanged; status, body and headers come back; redirects are not followed', async () => {
  const body = randomBytes(1 << 20)
  const sha = createHash('sha256').update(body).digest('hex')
  const file = t.tmp.file('body.bin', '')
  writeFileSync(file, body)
  for (const method of ['POST', 'PUT', 'PATCH', 'DELETE']) {
    const m0 = h0.seen.length
    const r = await curl([
      '-X',
      method,
      '--data-binary',
      `@${file}`,
      '-H',
      'Content-Type: application/octet-stream',
      `${url}/upload`,
    ])
    assert.equal(r.status, 200, method)
    const s = since(h0, m0)[0]!
    assert.equal(s.method, method)
    assert.equal(s.sha, sha, `${method} body`)
    assert.equal(s.headers['content-type'], 'application/octet-stream')
  }
  // Chunked upload, streamed.
  const m0 = h0.seen.length
  await curl([
    '-X',
    'POST',
    '-H',
    'Transfer-Encoding: chunked',
    '--data-binary',
    `@${file}`,
    `${url}/chunked`,
  ])
  assert.equal(since(h0, m0)[0]!.sha, sha)
  const head = await curl(['-I', `${url}/`])
  assert.equal(head.status, 200)
  const options = await curl(['-X', 'OPTIONS', `${url}/`])
  assert.equal(options.status, 200)
  assert.equal(h0.seen.at(-1)!.method, 'OPTIONS')
  const missing = await curl([`${url}/missing`])
  assert.equal(missing.status, 404)
  assert.equal(missing.body, 'nope')
  assert.match(missing.head, /^Destination_app: ok$/m)
  const redirect = await curl([`${url}/redirect`])
  assert.equal(redirect.status, 302)
  assert.match(redirect.head, /^Location: \/elsewhere$/m)
  assert.equal(h0.seen.at(-1)!.url, '/redirect')
})

test('C5: X-Forwarded-For is appended; X-Forwarded-Proto, X-Forwarded-Host and Forwarded when enabled', async () => {
  let m0 = h0.seen.length
  await curl([`${url}/`, '-H', 'X-Forwarded-For: 10.0.0.1'])
  assert.equal(since(h0, m0)[0]!.headers['x-forwarded-for'], '10.0.0.1, 127.0.0.1')
  m0 = h0.seen.length
  await curl([`${url}/`])
  assert.equal(since(h0, m0)[0]!.headers['x-forwarded-for'], '127.0.0.1')
  assert.equal(since(h0, m0)[0]!.headers.forwarded, undefined)

  const p = await freePort()
  const file = t.tmp.file(
    'fwd.yaml',
    `apps:
  - name: fwd
    kind: http
    listen: ["127.0.0.1:${p}"]
    destination: http://127.0.0.1:${h0.port}
    forwarded: {x_forwarded_proto: true, x_forwarded_host: true, forwarded: true}
`,
  )
  await t.sluice(file)
  m0 = h0.seen.length
  await curl([`http://127.0.0.1:${p}/`, '-H', 'Forwarded: for=10.0.0.1'])
  const s = since(h0, m0)[0]!
  assert.equal(s.headers['x-forwarded-proto'], 'http')
  assert.equal(s.headers['x-forwarded-host'], `127.0.0.1:${p}`)
  assert.equal(s.headers.forwarded, `for=10.0.0.1, for=127.0.0.1;host="127.0.0.1:${p}";proto=http`)
})

test('C6 (i): an unreachable destination gives 502 naming it, the connection survives; a slow one past the timeout gives 504', async () => {
  const closed = await freePort()
  const slow = await origin('slow', (_s, res) => {
    setTimeout(() => res.end('late'), 3000)
  })
  const p = await freePort()
  const file = t.tmp.file(
    'errors.yaml',
    `apps:
  - name: errors
    kind: http
    listen: ["127.0.0.1:${p}"]
    destination: http://127.0.0.1:${h0.port}
    rules:
      - match: {target: down}
        destination: http://127.0.0.1:${closed}
      - match: {target: slow}
        destination: http://127.0.0.1:${slow.port}
        timeout: 500ms
`,
  )
  const s = await t.sluice(file)
  const started = Date.now()
  // Two requests on one connection (curl reuses it with --next): the 502, then a good one.
  const { stdout, stderr } = await run('curl', [
    '-s',
    '-v',
    '-H',
    'target: down',
    `http://127.0.0.1:${p}/x`,
    '--next',
    `http://127.0.0.1:${p}/y`,
  ])
  assert.ok(Date.now() - started < 5000)
  assert.match(stdout, /^sluice: cannot reach destination http:\/\/127\.0\.0\.1:\d+: .*refused/)
  assert.match(stdout, /ok-h0$/)
  assert.match(stderr, /Re-using existing connection|Reusing existing/)
  const warned = await s.waitLog((l) => l.msg === 'destination unreachable: 502', '502 log line')
  assert.equal(warned.destination, `http://127.0.0.1:${closed}`)
  const timedOut = await curl(['-H', 'target: slow', `http://127.0.0.1:${p}/`])
  assert.equal(timedOut.status, 504)
  assert.match(timedOut.body, /did not answer within 500ms/)
})

test('C6 (ii): a sidecar config without destination is refused at start, naming the field', async () => {
  const file = t.tmp.file(
    'nodest.yaml',
    'key: environment\nrewrites:\n  dev:\n    patch: [{key: a, val: b}]\n',
  )
  const p = t.process(['run', '-c', file, '--admin', 'off'], { SIDECAR_PORT: String(await freePort()) })
  const { code } = await p.exited
  assert.notEqual(code, 0)
  assert.match(p.stderr, /destination/)
})

test('C6 (iii): SIGTERM lets the request in flight finish, refuses new connections, exits within 5 s', async () => {
  const slow = await origin('slow2', (_s, res) => {
    setTimeout(() => res.end('finished'), 2000)
  })
  const p = await freePort()
  const file = t.tmp.file('term.yaml', `key: environment\ndestination: http://127.0.0.1:${slow.port}\n`)
  const s = t.process([
    'run',
    '-c',
    file,
    '--admin',
    'off',
    '--log-format',
    'json',
    '--listen',
    `127.0.0.1:${p}`,
  ])
  await s.started()
  const inflight = curl([`http://127.0.0.1:${p}/`])
  await waitFor(() => slow.seen.length === 1, 'the request to reach the origin')
  const signalled = Date.now()
  s.signal('SIGTERM')
  await waitFor(() => s.logs.some((l) => String(l.msg).startsWith('listeners closed')), 'shutdown to begin')
  const refused = await exchange(p, 'GET / HTTP/1.1\r\nHost: x\r\n\r\n', { timeoutMs: 2000 })
  assert.equal(refused.error, 'ECONNREFUSED')
  const r = await inflight
  assert.equal(r.status, 200)
  assert.equal(r.body, 'finished')
  const { code } = await s.exited
  assert.equal(code, 0)
  assert.ok(Date.now() - signalled < 5000)
  // The shutdown lines come in the order things happen, and no message repeats its fields.
  const order = s.logs.map((l) => String(l.msg)).filter((m) => !m.startsWith('sluice started'))
  assert.deepEqual(order, [
    'stopping: no new connections, open ones finish (a second signal exits at once)',
    'listeners closed; draining connections',
    'every connection ended',
    'exiting',
  ])
  assert.equal(s.logs.find((l) => String(l.msg).startsWith('listeners closed'))!.connections, 1)
})

test('C7: 200 keep-alive clients, 10 000 mixed requests: each answered by the right origin over pooled connections', async () => {
  const a = await origin('pa', (s, res) => res.end(`pa ${s.headers.environment ?? ''}`))
  const b = await origin('pb', (s, res) => res.end(`pb ${s.headers.environment ?? ''}`))
  const p = await freePort()
  const file = t.tmp.file(
    'load.yaml',
    `apps:
  - name: load
    kind: http
    listen: ["127.0.0.1:${p}"]
    destination: http://127.0.0.1:${a.port}
    pool: {max_connections: 32}
    rules:
      - match: {environment: dev}
        destination: http://127.0.0.1:${b.port}
`,
  )
  await t.sluice(file, ['--log-level', 'info'])
  const agent = new Agent({ keepAlive: true, maxSockets: 200 })
  const values = ['dev', 'prod', '', 'qa']
  let wrong = 0
  let done = 0
  const one = (i: number) =>
    new Promise<void>((resolve, reject) => {
      const env = values[i % values.length]!
      const req = request(
        { host: '127.0.0.1', port: p, path: `/r/${i}`, agent, headers: env ? { environment: env } : {} },
        (res) => {
          let text = ''
          res.setEncoding('utf8')
          res.on('data', (d) => (text += d))
          res.on('end', () => {
            const want = env === 'dev' ? `pb dev` : `pa ${env}`
            if (text !== want) wrong++
            done++
            resolve()
          })
        },
      )
      req.on('error', reject)
      req.end()
    })
  let next = 0
  const worker = async () => {
    while (next < 10_000) await one(next++)
  }
  await Promise.all(Array.from({ length: 200 }, worker))
  agent.destroy()
  assert.equal(done, 10_000)
  assert.equal(wrong, 0)
  assert.ok(a.connections <= 32, `origin a saw ${a.connections} connections`)
  assert.ok(b.connections <= 32, `origin b saw ${b.connections} connections`)
  assert.equal(a.seen.length + b.seen.length, 10_000)
})

test('C8: a WebSocket upgrade is routed by header and frames pass both ways', async () => {
  const ws = new WebSocket(`ws://127.0.0.1:${port}/socket`)
  const got = await new Promise<string>((resolve, reject) => {
    ws.onopen = () => ws.send('hello')
    ws.onmessage = (e) => resolve(String(e.data))
    ws.onerror = () => reject(new Error('websocket error'))
  })
  ws.close()
  // The browser WebSocket API sends no custom headers: that upgrade went to the default
  // destination; a handshake written by hand carries the header that routes it to h1.
  assert.equal(got, 'h0:hello')
  const key = randomBytes(16).toString('base64')
  const s = connect({ port, host: '127.0.0.1' })
  await new Promise((r) => s.once('connect', r))
  s.write(
    `GET /ws HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: ${key}\r\nSec-WebSocket-Version: 13\r\nenvironment: dev\r\n\r\n`,
  )
  let data = Buffer.alloc(0)
  s.on('data', (d: Buffer) => (data = Buffer.concat([data, d])))
  await waitFor(() => data.includes('\r\n\r\n'), 'the 101')
  assert.match(data.toString('latin1'), /^HTTP\/1\.1 101 Switching Protocols/)
  assert.match(data.toString('latin1'), /X-Origin: h1/)
  data = Buffer.alloc(0)
  const mask = randomBytes(4)
  const payload = Buffer.from('ping').map((b, i) => b ^ mask[i % 4]!)
  s.write(Buffer.concat([Buffer.from([0x81, 0x80 | 4]), mask, payload]))
  await waitFor(() => data.length >= 9, 'an echoed frame')
  assert.equal(data.subarray(2).toString(), 'h1:ping')
  s.destroy()
})

test('C9: malformed requests get 400 (431 for huge heads), nothing reaches an origin, sluice keeps serving', async () => {
  const cases: [string, Buffer, number][] = [
    ['bad request line', Buffer.from('GARBAGE\r\n\r\n'), 400],
    ['header without colon', Buffer.from('GET / HTTP/1.1\r\nHost: x\r\nNoColon\r\n\r\n'), 400],
    [
      'Content-Length and Transfer-Encoding',
      Buffer.from(
        'POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\n',
      ),
      400,
    ],
    [
      'Content-Length longer than the body',
      Buffer.from('POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 10\r\n\r\nabc'),
      400,
    ],
    [
      'Content-Length shorter than the body',
      Buffer.from('POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\n\r\nabc\x00\x01garbage'),
      400,
    ],
    [
      '1 MB of headers',
      Buffer.from(`GET / HTTP/1.1\r\nHost: x\r\nX-Big: ${'a'.repeat(1 << 20)}\r\n\r\n`),
      431,
    ],
  ]
  const before0 = h0.seen.length
  const before1 = h1.seen.length
  for (const [what, bytes, status] of cases) {
    const r = await exchange(port, bytes, { timeoutMs: 5000 })
    const text = r.data.toString('latin1')
    assert.match(text, new RegExp(`^HTTP/1\\.1 ${status} `), `${what}: ${text.slice(0, 80)} ${r.error}`)
    assert.match(text, /Connection: close/, what)
  }
  assert.equal(h0.seen.length, before0)
  assert.equal(h1.seen.length, before1)
  const ok = await curl([`${url}/`])
  assert.equal(ok.status, 200)
  assert.ok(
    sluice.count(
      (l) => l.msg === 'request refused' && l.status === 400 && l.code === 'ERR_HTTP_BAD_REQUEST',
    ) >= 5,
  )
})

test('HTTP faults: http_error with a probability and latency before the response, counted in /metrics', async () => {
  const p = await freePort()
  const file = t.tmp.file(
    'hfaults.yaml',
    `apps:
  - name: hf
    kind: http
    listen: ["127.0.0.1:${p}"]
    destination: http://127.0.0.1:${h0.port}
    rules:
      - name: broken
        match: {x-case: broken}
        faults: [{type: http_error, status: 503, body: "injected", probability: 1}]
      - name: slow
        match: {x-case: slow}
        faults: [{type: latency, latency: 300ms, direction: to-client}]
`,
  )
  const s = await t.sluice(file)
  const m0 = h0.seen.length
  const broken = await curl(['-H', 'x-case: broken', `http://127.0.0.1:${p}/`])
  assert.equal(broken.status, 503)
  assert.equal(broken.body, 'injected', 'an injected body is sent exactly as given')
  assert.equal(h0.seen.length, m0, 'the error answer never reaches the origin')
  const started = Date.now()
  const slow = await curl(['-H', 'x-case: slow', `http://127.0.0.1:${p}/`])
  assert.equal(slow.body, 'ok-h0')
  assert.ok(Date.now() - started >= 300)
  const metrics = await (await fetch(`${await s.admin()}/metrics`)).text()
  assert.match(
    metrics,
    /sluice_faults_applied_total\{app="hf",target="rule:broken",fault="http_error-to-client",type="http_error"\} 1/,
  )
  assert.match(
    metrics,
    /sluice_http_requests_total\{app="hf",rule="broken",destination="http:\/\/127\.0\.0\.1:\d+",code="5xx"\} 1/,
  )
  assert.match(metrics, /sluice_http_upstream_duration_seconds_count\{app="hf",destination=/)
})

test('reload: changed rules apply to the next request on the same keep-alive connection', async () => {
  const p = await freePort()
  const doc = (dest: number) => `apps:
  - name: rl
    kind: http
    listen: ["127.0.0.1:${p}"]
    destination: http://127.0.0.1:${h0.port}
    rules:
      - match: {environment: dev}
        destination: http://127.0.0.1:${dest}
`
  const file = t.tmp.file('reload.yaml', doc(h0.port))
  const s = await t.sluice(file)
  const agent = new Agent({ keepAlive: true, maxSockets: 1 })
  const get = () =>
    new Promise<{ body: string; socket: Socket }>((resolve, reject) => {
      const req = request({ host: '127.0.0.1', port: p, agent, headers: { environment: 'dev' } }, (res) => {
        let body = ''
        res.on('data', (d) => (body += d))
        res.on('end', () => resolve({ body, socket: req.socket as Socket }))
      })
      req.on('error', reject)
      req.end()
    })
  const first = await get()
  assert.equal(first.body, 'ok-h0')
  writeFileSync(file, doc(h1.port))
  await s.waitLog((l) => l.msg === 'config reloaded', 'reload')
  const second = await get()
  assert.equal(second.body, 'ok-h1')
  assert.equal(second.socket, first.socket, 'the same client connection')
  agent.destroy()
})

test('bad http config: each field error names its path', async () => {
  const file = t.tmp.file(
    'bad-http.yaml',
    `apps:
  - name: b
    kind: http
    listen: [1]
    destination: ftp://x
    rules:
      - match: {}
        headers: {set: {"Bad Name": x}}
        faults: [{type: bandwidth, rate: 10}]
`,
  )
  const p = t.process(['check', '-c', file])
  const { code } = await p.exited
  assert.notEqual(code, 0)
  assert.match(p.stderr, /apps\[0\]\.destination.*scheme "ftp"/)
  assert.match(p.stderr, /apps\[0\]\.rules\[0\]\.match.*at least one header/)
  assert.match(p.stderr, /apps\[0\]\.rules\[0\]\.headers\.set/)
})
