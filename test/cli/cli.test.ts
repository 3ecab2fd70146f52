// The sluice command line, run as a user would: the built CLI (and npx for the demo).
import assert from 'node:assert/strict'
import { execFile } from 'node:child_process'
import { readFileSync } from 'node:fs'
import { join } from 'node:path'
import { test } from 'node:test'
import { promisify } from 'node:util'
import { loadConfigText } from '../../src/config/load.ts'
import { echoServer, identServer } from '../../src/testkit/fixtures.ts'
import { freePort } from '../../src/testkit/ports.ts'
import { cli, exchange, root, runSluice, SluiceProcess, testScope, waitFor } from '../helpers.ts'
import { makeCa, makeCert } from '../tls-certs.ts'

const run = promisify(execFile)
const t = testScope()

/** Run `sluice args…` to completion: exit code, stdout, stderr. */
async function sluice(...args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  try {
    const r = await run(process.execPath, [cli, ...args], {
      cwd: t.tmp.dir,
      env: { ...process.env, SLUICE_CONFIG: '' },
    })
    return { code: 0, stdout: r.stdout, stderr: r.stderr }
  } catch (err) {
    const e = err as { code: number; stdout: string; stderr: string }
    return { code: e.code, stdout: e.stdout, stderr: e.stderr }
  }
}

test('help, version and usage errors', async () => {
  const help = await sluice('--help')
  assert.equal(help.code, 0)
  for (const cmd of ['run', 'check', 'schema', 'demo', 'test'])
    assert.match(help.stdout, new RegExp(`^  ${cmd} `, 'm'))
  assert.equal((await sluice()).code, 2)
  const pkg = JSON.parse(readFileSync(join(root, 'package.json'), 'utf8')) as { version: string }
  assert.equal((await sluice('version')).stdout.trim(), pkg.version)
  const unknown = await sluice('frobnicate')
  assert.equal(unknown.code, 2)
  assert.match(unknown.stderr, /ERR_USAGE: unknown command "frobnicate"/)
  const flag = await sluice('run', '--bogus')
  assert.equal(flag.code, 2)
  assert.match(flag.stderr, /ERR_USAGE: Unknown option '--bogus'.*sluice run --help/)
  assert.match((await sluice('run', '--help')).stdout, /--no-watch/)
  const level = await sluice('run', '--log-level', 'loud')
  assert.equal(level.code, 2)
  assert.match(level.stderr, /--log-level must be one of/)
})

test('check prints the normalised config and the plan; its output loads back to the same config', async () => {
  const file = t.tmp.file(
    'fly.json',
    JSON.stringify({ Apps: [{ Name: 'a', Ports: [7001, 7002], Targets: ['127.0.0.1:9001'] }] }),
  )
  const r = await sluice('check', '-c', file)
  assert.equal(r.code, 0, r.stderr)
  assert.match(r.stdout, /fly\.json: valid \(fly format, json\)/)
  assert.match(r.stdout, /strategy: round-robin/)
  assert.match(r.stdout, /connect_timeout: 3s/)
  assert.match(r.stdout, /# {3}bind \*:7001 for a/)
  const original = loadConfigText(readFileSync(file, 'utf8'), file).config
  const printed = loadConfigText(r.stdout, 'printed.yaml').config
  printed.source = original.source
  assert.deepEqual(printed, original)
  const json = JSON.parse((await sluice('check', '-c', file, '--json')).stdout) as {
    format: string
    plan: string[]
  }
  assert.equal(json.format, 'fly')
  assert.deepEqual(json.plan, ['add app a', 'bind *:7001 for a', 'bind *:7002 for a'])
})

test('check exits 1 and names file, line, field and reason', async () => {
  const file = t.tmp.file('bad.yaml', 'apps:\n  - name: a\n    listen: [1]\n    targets: ["nope"]\n')
  const r = await sluice('check', '-c', file)
  assert.equal(r.code, 1)
  assert.match(r.stderr, /ERR_CONFIG_INVALID: invalid config/)
  assert.match(r.stderr, /bad\.yaml:4: apps\[0\]\.targets\[0\]: "nope" has no port/)
  const none = await sluice('check')
  assert.equal(none.code, 1)
  assert.match(none.stderr, /sluice\.yaml: no such file/)
})

test('check names each tunnel certificate, key or CA file that is missing or does not parse (sluice YAML and ptproxy TOML)', async () => {
  const dir = t.tmp.dir
  const ca = makeCa(dir, 'cca')
  const mine = makeCert(dir, ca, 'cmine', { cn: 'foo.example.org', dns: ['foo.example.org'], client: true })
  const other = makeCert(dir, ca, 'cother', { cn: 'foo.example.org', dns: ['foo.example.org'], client: true })
  const garbage = t.tmp.file('garbage.pem', 'not PEM at all\n')
  const app = (name: string, port: number, tls: string) =>
    `  - name: ${name}\n    kind: tunnel\n    mode: client\n    listen: ["127.0.0.1:${port}"]\n    peer: 127.0.0.1:1\n    peer_hostname: bar.example.org\n    tls: ${tls}\n`
  const good = t.tmp.file(
    'tgood.yaml',
    `apps:\n${app('a', 20001, `{ca: ${ca.cert}, cert: ${mine.cert}, key: ${mine.key}}`)}`,
  )
  const ok = await sluice('check', '-c', good)
  assert.equal(ok.code, 0, ok.stderr)
  const bad = t.tmp.file(
    'tbad.yaml',
    `apps:\n${app('a', 20001, `{ca: ${ca.cert}, cert: missing.pem, key: ${garbage}}`)}${app('b', 20002, `{ca: ${mine.key}, cert: ${mine.cert}, key: ${other.key}}`)}`,
  )
  const r = await sluice('check', '-c', bad)
  assert.equal(r.code, 1)
  assert.match(r.stderr, /^sluice: ERR_TUNNEL_CERT: a certificate, key or CA file cannot be used$/m)
  const where = (line: number, field: string) => `tbad\\.yaml:${line}: apps\\[${field}\\]\\.tls\\.`
  assert.match(r.stderr, new RegExp(`${where(8, '0')}cert: \\S+/missing\\.pem: no such file`))
  assert.match(r.stderr, new RegExp(`${where(8, '0')}key: \\S+garbage\\.pem: no PEM private key`))
  assert.match(r.stderr, new RegExp(`${where(15, '1')}ca: \\S+cmine\\.key: no PEM certificate`))
  assert.match(
    r.stderr,
    new RegExp(`${where(15, '1')}key: \\S+cother\\.key: the key does not belong to the certificate`),
  )
  // ptproxy's TOML: its own field names.
  const toml = t.tmp.file(
    'tbad.toml',
    `[general]\nmode = "Client"\npeer_hostname = "bar.example.org"\nconnect_address = "127.0.0.1"\nhttp_bind_address = "127.0.0.1:20003"\n\n[tls]\nca = "garbage.pem"\ncert = "nowhere.pem"\nkey = "cmine.key"\n`,
  )
  const p = await sluice('check', '-c', toml)
  assert.equal(p.code, 1)
  assert.match(p.stderr, /ERR_TUNNEL_CERT/)
  assert.match(p.stderr, /tbad\.toml: tls\.cert: \S+\/nowhere\.pem: no such file/)
  assert.match(p.stderr, /tbad\.toml: tls\.ca: \S+\/garbage\.pem: no PEM certificate/)
  assert.doesNotMatch(p.stderr, /tls\.key/)
})

test('schema prints a JSON Schema with every app field described', async () => {
  const r = await sluice('schema')
  assert.equal(r.code, 0)
  const schema = JSON.parse(r.stdout) as {
    properties: { apps: { items: { anyOf: { properties: Record<string, { description?: string }> }[] } } }
  }
  const [tcpApp, httpApp] = schema.properties.apps.items.anyOf
  assert.ok(httpApp!.properties.rules && httpApp!.properties.destination)
  const app = tcpApp!.properties
  for (const field of [
    'name',
    'listen',
    'targets',
    'strategy',
    'connect_timeout',
    'health',
    'max_connections',
  ])
    assert.ok(app[field], field)
  assert.match(app.connect_timeout!.description ?? '', /one connect attempt/)
  const faults = (
    app.faults as unknown as { items: { anyOf: { properties: { type: { const: string } } }[] } }
  ).items.anyOf
  assert.equal(faults.length, 14)
  assert.ok(faults.some((f) => f.properties.type.const === 'packet_loss'))
})

test('test ping, balancer and simulate check a proxy from outside', async () => {
  const [a, b] = [await identServer({ name: 'A' }), await identServer({ name: 'B' })]
  const e1 = await echoServer()
  for (const f of [a, b, e1]) t.defer(() => f.close())
  const [rr, echo] = [await freePort(), await freePort()]
  const p = await runSluice(
    t.tmp.file(
      't.yaml',
      `apps:\n  - {name: rr, listen: [${rr}], targets: ["${a.address}", "${b.address}"]}\n  - {name: e, listen: [${echo}], targets: ["${e1.address}"]}\n`,
    ),
  )
  t.defer(() => p.stop())
  const ping = await sluice('test', 'ping', `127.0.0.1:${echo}`, '-n', '3', '-i', '10ms')
  assert.equal(ping.code, 0, ping.stderr)
  assert.equal(ping.stdout.match(/^seq=\d+ dial=/gm)?.length, 3)
  assert.match(ping.stdout, /3 rounds, 3 ok, 0 failed/)
  assert.match(ping.stdout, /total min\/p50\/p90\/p99\/max = /)
  const dead = await sluice('test', 'ping', String(await freePort()), '-n', '1')
  assert.equal(dead.code, 1)
  assert.match(dead.stdout, /FAILED: ECONNREFUSED/)

  const seq = await sluice('test', 'balancer', `:${rr}`, '--expect', 'A,B', '-n', '6')
  assert.equal(seq.code, 0, seq.stdout)
  assert.match(seq.stdout, /A=3 B=3/)
  assert.match(seq.stdout, /sequence as expected/)
  const wrong = await sluice('test', 'balancer', `:${rr}`, '--expect', 'A,A', '-n', '2')
  assert.equal(wrong.code, 1)
  assert.match(wrong.stdout, /MISMATCH \(expected A\)/)

  const sim = await sluice('test', 'simulate', `127.0.0.1:${echo}`, '-c', '5', '-n', '20', '--json')
  assert.equal(sim.code, 0, sim.stderr)
  const s = JSON.parse(sim.stdout) as { ok: number; failed: number; latencyMs: { p99: number } }
  assert.equal(s.ok, 100)
  assert.equal(s.failed, 0)
  assert.ok(s.latencyMs.p99 > 0)
  const reuse = JSON.parse(
    (await sluice('test', 'simulate', `127.0.0.1:${echo}`, '-c', '3', '-n', '50', '--reuse', '--json'))
      .stdout,
  ) as { ok: number }
  assert.equal(reuse.ok, 150)
})

test('test serve runs a fixture server', async () => {
  const port = await freePort()
  const p = new SluiceProcess([
    'test',
    'serve',
    'ident',
    '--listen',
    `127.0.0.1:${port}`,
    '--name',
    'fixture-1',
  ])
  t.defer(() => p.stop())
  await waitFor(() => p.stdout.includes('listening'), 'the fixture to listen')
  assert.equal((await exchange(port, 'x')).data.toString(), 'fixture-1\nx')
  p.signal('SIGTERM')
  assert.equal((await p.exited).code, 0)
})

test('npx sluice demo --once shows real proxying with nothing else installed', async () => {
  const r = await promisify(execFile)('npx', ['sluice', 'demo', '--once'], { cwd: root, timeout: 60_000 })
  assert.match(r.stdout, /connection 1 → backend-[12]/)
  assert.match(r.stdout, /GET \/ → hello from origin-[12]/)
  // After nine connections the dead target has failed three times and is ejected.
  assert.match(r.stdout, /127\.0\.0\.1:\d+ +DOWN +connections: 0/)
  const answered = r.stdout.match(/connection \d → backend-[12]/g) ?? []
  assert.equal(answered.length, 9)
  // A person reads this: sluice's own log lines come readable, never as raw JSON.
  for (const line of `${r.stdout}${r.stderr}`.split('\n')) assert.doesNotMatch(line, /^\s*\{"/, line)
  assert.match(r.stderr, /target skipped, trying the next .*reason=refused/)
})

test('every subcommand prints its help with --help and exits 0', async () => {
  for (const cmd of ['run', 'proxy', 'check', 'schema', 'demo', 'test', 'version']) {
    const r = await sluice(cmd, '--help')
    assert.equal(r.code, 0, `${cmd}: ${r.stderr}`)
    assert.match(r.stdout, new RegExp(`^Usage: sluice ${cmd}`), cmd)
  }
})

test('run and check find the config file: -c, $SLUICE_CONFIG, $FPROXY_CONFIG_PATH, $SIDECAR_CONFIG, ./sluice.yaml, ./config.yaml', async () => {
  const app = (port: number) =>
    `apps: [{name: a${port}, listen: ["127.0.0.1:${port}"], targets: ["127.0.0.1:1"]}]\n`
  const dir = t.tmp.dir
  const checkWith = async (env: Record<string, string>) => {
    const r = await run(process.execPath, [cli, 'check'], {
      cwd: dir,
      env: { ...process.env, SLUICE_CONFIG: '', FPROXY_CONFIG_PATH: '', SIDECAR_CONFIG: '', ...env },
    }).catch((e: { stdout: string; stderr: string }) => e)
    return `${r.stdout}${r.stderr}`
  }
  const none = await checkWith({})
  assert.match(none, /ERR_CONFIG_NOT_FOUND/)
  assert.match(none, /sluice\.yaml/)
  t.tmp.file('config.yaml', app(1))
  assert.match(await checkWith({}), /config\.yaml: valid/)
  t.tmp.file('sluice.yaml', app(2))
  assert.match(await checkWith({}), /sluice\.yaml: valid/)
  const sidecar = t.tmp.file('sidecar.yaml', app(3))
  assert.match(await checkWith({ SIDECAR_CONFIG: sidecar }), /sidecar\.yaml: valid/)
  const fproxy = t.tmp.file(
    'fproxy.json',
    JSON.stringify({ Apps: [{ Name: 'f', Ports: [7005], Targets: ['127.0.0.1:1'] }] }),
  )
  assert.match(
    await checkWith({ SIDECAR_CONFIG: sidecar, FPROXY_CONFIG_PATH: fproxy }),
    /fproxy\.json: valid/,
  )
  const own = t.tmp.file('own.yaml', app(4))
  assert.match(await checkWith({ SLUICE_CONFIG: own, FPROXY_CONFIG_PATH: fproxy }), /own\.yaml: valid/)
  // run takes the same file: the app from $FPROXY_CONFIG_PATH listens.
  const port = await freePort()
  const fp2 = t.tmp.file(
    'fproxy2.json',
    JSON.stringify({ Apps: [{ Name: 'f2', Ports: [port], Targets: ['127.0.0.1:1'] }] }),
  )
  const p = t.process(['run', '--admin', '127.0.0.1:0', '--log-format', 'json'], {
    SLUICE_CONFIG: '',
    SIDECAR_CONFIG: '',
    FPROXY_CONFIG_PATH: fp2,
  })
  await p.started()
  assert.match(p.stderr, /fproxy2\.json/)
  assert.notEqual((await exchange(port, 'x')).error, 'ECONNREFUSED')
})
