// Acceptance: ../shared/acceptance/faults.md, the mapping CLI (M1-M6): `sluice proxy` as a child
// process, TLS and PostgreSQL remotes on loopback, certificates made in the test.
import assert from 'node:assert/strict'
import { execFile } from 'node:child_process'
import { readFileSync } from 'node:fs'
import { createServer as createHttpServer, type IncomingMessage } from 'node:http'
import { createServer as createHttpsServer } from 'node:https'
import { test } from 'node:test'
import { createServer as createTlsServer } from 'node:tls'
import { promisify } from 'node:util'
import { echoServer } from '../../src/testkit/fixtures.ts'
import { freePort } from '../../src/testkit/ports.ts'
import { curl, exchange, getJson, openEcho, type SluiceProcess, testScope } from '../helpers.ts'
import { psql, startPostgres } from '../postgres.ts'
import { makeCa, makeCert } from '../tls-certs.ts'

const t = testScope()

/** `sluice proxy ARGS` with JSON logs and an admin API on a free port, once it listens. */
async function sluiceProxy(args: string[], env: Record<string, string> = {}): Promise<SluiceProcess> {
  const p = t.process(
    ['proxy', ...args, '--admin', '127.0.0.1:0', '--log-format', 'json', '--log-level', 'debug'],
    env,
  )
  await p.started()
  return p
}

test('M1: PORT=HOST:PORT forwards', async () => {
  const e = await t.fixture(echoServer())
  const port = await freePort()
  await sluiceProxy(['--proxy', `${port}=127.0.0.1:${e.port}`])
  assert.equal((await exchange(port, 'mapped')).data.toString(), 'mapped')
  assert.equal(e.accepted, 1)
})

test('M2: tls:// opens TLS to the remote with SNI; an untrusted certificate fails with a logged reason', async () => {
  const ca = makeCa(t.tmp.dir, 'm2ca')
  const cert = makeCert(t.tmp.dir, ca, 'm2server', { cn: 'localhost', dns: ['localhost'] })
  const sni: string[] = []
  const server = createTlsServer({ cert: readFileSync(cert.cert), key: readFileSync(cert.key) }, (s) => {
    sni.push((s as unknown as { servername: string }).servername)
    s.on('error', () => {})
    s.pipe(s)
  })
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()))
  t.defer(() => server.close())
  const tlsPort = (server.address() as { port: number }).port
  const [trusted, byEnv, untrusted] = [await freePort(), await freePort(), await freePort()]
  await sluiceProxy(['--proxy', `${trusted}=tls://localhost:${tlsPort}`, '--upstream-ca', ca.cert])
  const c = await openEcho(trusted)
  assert.equal(await c.say('clear text in'), 'clear text in')
  c.socket.destroy()
  assert.deepEqual(sni, ['localhost'])
  await sluiceProxy(['--proxy', `${byEnv}=tls://localhost:${tlsPort}`], { NODE_EXTRA_CA_CERTS: ca.cert })
  const d = await openEcho(byEnv)
  assert.equal(await d.say('trusted through NODE_EXTRA_CA_CERTS'), 'trusted through NODE_EXTRA_CA_CERTS')
  d.socket.destroy()
  const p = await sluiceProxy(['--proxy', `${untrusted}=tls://localhost:${tlsPort}`])
  const r = await exchange(untrusted, 'nope', { timeoutMs: 5000 })
  assert.equal(r.error, 'ECONNRESET')
  const line = await p.waitLog((l) => l.reason === 'tls', 'the TLS failure')
  assert.equal(line.code, 'ERR_UPSTREAM_TLS')
  assert.match(
    String(line.error),
    /TLS handshake failed: .*(UNABLE_TO_VERIFY_LEAF_SIGNATURE|self.signed|unable to verify)/i,
  )
})

test('M3: psqls:// to a real PostgreSQL: psql without SSL works and the server sees the session encrypted', async () => {
  const pg = await startPostgres()
  t.defer(() => pg.stop())
  const port = await freePort()
  await sluiceProxy(['--proxy', `${port}=psqls://127.0.0.1:${pg.port}`, '--upstream-ca', pg.ca.cert])
  const conn = (mode: string) => `host=127.0.0.1 port=${port} user=postgres dbname=postgres sslmode=${mode}`
  assert.equal(psql(conn('disable'), 'select 6 * 7'), '42')
  assert.equal(psql(conn('disable'), 'select ssl from pg_stat_ssl where pid = pg_backend_pid()'), 't')
  // A client that prefers SSL is told no by sluice and goes on in clear text, still encrypted beyond.
  assert.equal(psql(conn('prefer'), 'select ssl from pg_stat_ssl where pid = pg_backend_pid()'), 't')
  // Without the proxy, with SSL off, the same query says f: the check can tell.
  assert.equal(
    psql(
      `host=127.0.0.1 port=${pg.port} user=postgres dbname=postgres sslmode=disable`,
      'select ssl from pg_stat_ssl where pid = pg_backend_pid()',
    ),
    'f',
  )
})

test('M4: the protocol implies the port when the mapping omits it', async () => {
  const [a, b, c, d] = [await freePort(), await freePort(), await freePort(), await freePort()]
  const p = await sluiceProxy([
    '--proxy',
    `${a}=https://localhost`,
    '--proxy',
    `${b}=http://localhost`,
    '--proxy',
    `${c}=psql://localhost`,
    '--proxy',
    `${d}=psqls://localhost`,
  ])
  type Status = { apps: { name: string; targets: { address: string }[] }[] }
  const status = await getJson<Status>(`${await p.admin()}/status`)
  const target = (port: number) => status.apps.find((x) => x.name === `proxy-${port}`)!.targets[0]!.address
  // http and https mappings forward requests: their destination is a URL, shown in the start line.
  const started = await p.waitLog((l) => Array.isArray(l.apps), 'the start line')
  const destination = (port: number) =>
    (started.apps as { name: string; destination?: string }[]).find((x) => x.name === `proxy-${port}`)!
      .destination
  assert.equal(destination(a), 'https://localhost:443')
  assert.equal(destination(b), 'http://localhost:80')
  assert.equal(target(c), 'localhost:5432')
  assert.equal(target(d), 'localhost:5432')
})

test('M5: malformed mappings exit ≠ 0 quoting the mapping and the rule', async () => {
  const cases: [string, RegExp][] = [
    ['=x:1', /the listen port before "=" is missing/],
    ['abc=x:1', /the listen port "abc" is not a number/],
    ['70000=x:1', /port 70000 is out of range/],
    ['1=ftp://x', /unknown protocol "ftp"/],
    ['1=x:', /the remote port after ":" is missing/],
    ['1=:80', /the remote host is missing/],
  ]
  for (const [mapping, re] of cases) {
    const p = t.process(['proxy', '--proxy', mapping, '--admin', 'off'])
    const { code } = await p.exited
    assert.equal(code, 2, mapping)
    assert.ok(p.stderr.includes(`--proxy "${mapping}"`), p.stderr)
    assert.match(p.stderr, re)
    assert.match(p.stderr, /grammar: PORT=HOST:PORT or PORT=PROTO:\/\/HOST\[:PORT\]/)
  }
})

test('M6: fault flags mean what they mean in fault; --duration ends the process', async () => {
  const e = await t.fixture(echoServer())
  const port = await freePort()
  const p = await sluiceProxy([
    '--proxy',
    `${port}=127.0.0.1:${e.port}`,
    '--with-latency',
    '--latency-mean',
    '100',
    '--latency-stddev',
    '0',
  ])
  // fault's default latency acts once per direction: the first reply waits, the next does not.
  const c = await openEcho(port)
  let t0 = performance.now()
  assert.equal(await c.say('first'), 'first')
  const first = performance.now() - t0
  t0 = performance.now()
  assert.equal(await c.say('second'), 'second')
  const second = performance.now() - t0
  assert.ok(first >= 95 && first < 200, `first ${first.toFixed(0)} ms`)
  assert.ok(second < 50, `second ${second.toFixed(0)} ms`)
  c.socket.destroy()
  const faults = (
    await getJson<{ faults: { type: string; direction: string }[] }>(
      `${await p.admin()}/apps/proxy-${port}/faults`,
    )
  ).faults
  assert.deepEqual(
    faults.map((f) => [f.type, f.direction]),
    [['latency', 'to-client']],
  )

  // Per read/write, client side, egress: every reply delayed.
  const port2 = await freePort()
  await sluiceProxy([
    '--proxy',
    `${port2}=127.0.0.1:${e.port}`,
    '--with-latency',
    '--latency-mean',
    '60',
    '--latency-per-read-write',
    '--latency-side',
    'client',
    '--latency-direction',
    'egress',
  ])
  const d = await openEcho(port2)
  for (const word of ['a', 'b']) {
    t0 = performance.now()
    assert.equal(await d.say(word), word)
    assert.ok(performance.now() - t0 >= 55, `${word}: ${(performance.now() - t0).toFixed(0)} ms`)
  }
  d.socket.destroy()

  // The other families, and --duration: the process ends by itself with 0.
  const port3 = await freePort()
  const q = await sluiceProxy([
    '--proxy',
    `${port3}=127.0.0.1:${e.port}`,
    '--with-bandwidth',
    '--bandwidth-rate',
    '2',
    '--bandwidth-unit',
    'kbps',
    '--with-jitter',
    '--jitter-amplitude',
    '5',
    '--with-packet-loss',
    '--packet-loss-rate',
    '0.1',
    '--with-blackhole',
    '--blackhole-sched',
    'start:0s,duration:200ms',
    '--duration',
    '2s',
  ])
  const all = (
    await getJson<{ faults: { type: string; rate?: number }[] }>(
      `${await q.admin()}/apps/proxy-${port3}/faults`,
    )
  ).faults
  assert.deepEqual(all.map((f) => f.type).sort(), ['bandwidth', 'blackhole', 'jitter', 'packet_loss'])
  assert.equal(all.find((f) => f.type === 'bandwidth')!.rate, 2000)
  const t1 = performance.now()
  assert.equal((await exchange(port3, 'x'.repeat(1000), { timeoutMs: 5000 })).data.length, 1000)
  assert.ok(performance.now() - t1 >= 300, 'held by the blackhole window, then at 2000 B/s')
  const started = performance.now()
  assert.equal((await q.exited).code, 0)
  assert.ok(performance.now() - started < 3000)
})

/** An HTTP(S) origin on loopback that answers with the Host it saw and `size` bytes of body. */
async function httpOrigin(opts: { tls?: { cert: string; key: string }; size?: number } = {}) {
  const seen: IncomingMessage['headers'][] = []
  const handler = (req: IncomingMessage, res: import('node:http').ServerResponse) => {
    seen.push(req.headers)
    req.resume()
    const body = Buffer.alloc(opts.size ?? 0, 'b')
    res.writeHead(200, { 'x-seen-host': String(req.headers.host), 'content-length': body.length })
    res.end(body)
  }
  const server = opts.tls
    ? createHttpsServer({ cert: readFileSync(opts.tls.cert), key: readFileSync(opts.tls.key) }, handler)
    : createHttpServer(handler)
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()))
  t.defer(() => new Promise<void>((r) => server.close(() => r())))
  t.defer(() => server.closeAllConnections())
  return { port: (server.address() as { port: number }).port, seen }
}

test("M7: http:// and https:// mappings forward requests with the remote's Host, adding nothing", async () => {
  const ca = makeCa(t.tmp.dir, 'm7ca')
  const cert = makeCert(t.tmp.dir, ca, 'm7server', { cn: 'localhost', dns: ['localhost'] })
  const plain = await httpOrigin()
  const secure = await httpOrigin({ tls: cert })
  const [a, b] = [await freePort(), await freePort()]
  await sluiceProxy([
    '--proxy',
    `${a}=http://localhost:${plain.port}`,
    '--proxy',
    `${b}=https://localhost:${secure.port}`,
    '--upstream-ca',
    ca.cert,
  ])
  const r = await curl([`http://127.0.0.1:${a}/p?q=1`])
  assert.equal(r.status, 200)
  assert.match(r.head, new RegExp(`x-seen-host: localhost:${plain.port}`, 'i'))
  const s = await curl([`http://127.0.0.1:${b}/`])
  assert.equal(s.status, 200)
  assert.match(s.head, new RegExp(`x-seen-host: localhost:${secure.port}`, 'i'))
  for (const h of [...plain.seen, ...secure.seen]) {
    assert.equal(h['x-forwarded-for'], undefined)
    assert.equal(h.forwarded, undefined)
  }
})

test('M8: --with-http-response answers a share of requests with the status and body given', async () => {
  const origin = await httpOrigin()
  const [all, some, none] = [await freePort(), await freePort(), await freePort()]
  const flags = (p: string) => [
    '--with-http-response',
    '--http-response-status',
    '418',
    '--http-response-body',
    'short and stout',
    '--http-response-trigger-probability',
    p,
  ]
  const p = await sluiceProxy(['--proxy', `${all}=http://127.0.0.1:${origin.port}`, ...flags('1')])
  const r = await curl([`http://127.0.0.1:${all}/`])
  assert.equal(r.status, 418)
  assert.equal(r.body, 'short and stout')
  assert.equal(origin.seen.length, 0, 'an injected answer never reaches the remote')
  const faults = (
    await getJson<{ faults: Record<string, unknown>[] }>(`${await p.admin()}/apps/proxy-${all}/faults`)
  ).faults
  assert.deepEqual(
    faults.map((f) => [f.type, f.status, f.body]),
    [['http_error', 418, 'short and stout']],
  )

  await sluiceProxy(['--proxy', `${none}=http://127.0.0.1:${origin.port}`, ...flags('0')])
  for (let i = 0; i < 5; i++) assert.equal((await curl([`http://127.0.0.1:${none}/`])).status, 200)

  // Probability 0.5 over 200 requests on one keep-alive connection: the split is far from 0 and 200.
  await sluiceProxy(['--proxy', `${some}=http://127.0.0.1:${origin.port}`, ...flags('0.5')])
  const urls = Array.from({ length: 200 }, () => `http://127.0.0.1:${some}/`)
  const { stdout } = await promisify(execFile)('curl', [
    '-s',
    '-o',
    '/dev/null',
    '-w',
    '%{http_code}\\n',
    ...urls,
  ])
  // Bodies go to stdout too (-o applies to the first URL only): each line ends with its status.
  const codes = stdout
    .trim()
    .split('\n')
    .map((line) => line.slice(-3))
  assert.equal(codes.length, 200)
  const teapots = codes.filter((c) => c === '418').length
  assert.equal(teapots + codes.filter((c) => c === '200').length, 200)
  assert.ok(teapots > 60 && teapots < 140, `${teapots} of 200 answered 418`)
})

test('M9: on an http mapping, latency is per request and byte-level faults still act on the bytes', async () => {
  const origin = await httpOrigin({ size: 40_000 })
  const port = await freePort()
  const p = await sluiceProxy([
    '--proxy',
    `${port}=http://localhost:${origin.port}`,
    '--with-latency',
    '--latency-mean',
    '150',
    '--with-bandwidth',
    '--bandwidth-rate',
    '40',
    '--bandwidth-unit',
    'kbps',
  ])
  const t0 = performance.now()
  const r = await curl([`http://127.0.0.1:${port}/big`])
  const took = performance.now() - t0
  assert.equal(r.status, 200)
  assert.equal(r.body.length, 40_000)
  assert.match(r.head, new RegExp(`x-seen-host: localhost:${origin.port}`, 'i'))
  // 150 ms before the response, then 40 kB at 40 kB/s: about 1150 ms; unfaulted this takes a few ms.
  assert.ok(took >= 900, `took ${took.toFixed(0)} ms`)
  type Status = { apps: { name: string; kind: string; faults: { type: string }[] }[] }
  const apps = (await getJson<Status>(`${await p.admin()}/status`)).apps
  assert.deepEqual(
    apps.map((a) => [a.name, a.kind, a.faults.map((f) => f.type)]),
    [
      [`proxy-${port}`, 'http', ['latency']],
      [`proxy-${port}-bytes`, 'tcp', ['bandwidth']],
    ],
  )
})

test('M10: --with-http-response without an http mapping, or with a bad status, exits 2 naming the flag', async () => {
  const cases: [string[], RegExp][] = [
    [['--proxy', '1=127.0.0.1:9', '--with-http-response'], /--with-http-response .*needs at least one http/],
    [
      ['--proxy', '1=http://127.0.0.1:9', '--with-http-response', '--http-response-status', '99'],
      /--http-response-status must be a number between 200 and 599, not "99"/,
    ],
    [
      ['--proxy', '1=http://127.0.0.1:9', '--with-http-response', '--http-response-trigger-probability', '2'],
      /--http-response-trigger-probability must be a number between 0 and 1/,
    ],
  ]
  for (const [args, re] of cases) {
    const p = t.process(['proxy', ...args, '--admin', 'off'])
    const { code } = await p.exited
    assert.equal(code, 2, args.join(' '))
    assert.match(p.stderr, re)
  }
})
