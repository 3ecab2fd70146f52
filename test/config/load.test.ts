import assert from 'node:assert/strict'
import { after, test } from 'node:test'
import { loadConfigFile, loadConfigText } from '../../src/config/load.ts'
import type { TcpAppSpec } from '../../src/config/types.ts'
import { ConfigError } from '../../src/errors.ts'
import { tempDir } from '../helpers.ts'

const tmp = tempDir()
after(() => tmp.cleanup())

/** The ConfigError loading `text` as `name` throws. */
function failure(text: string, name = 'c.yaml'): ConfigError {
  try {
    loadConfigText(text, name)
  } catch (err) {
    assert.ok(err instanceof ConfigError, `expected ConfigError, got ${err}`)
    return err
  }
  assert.fail(`expected ${name} to be rejected`)
}

test('Fly.io JSON is recognised without a flag', () => {
  const { config } = loadConfigText(
    JSON.stringify({
      Apps: [
        { Name: 'five-thousand', Ports: [5001, 5200], Targets: ['tcp-echo.fly.dev:5001', '127.0.0.1:7'] },
      ],
    }),
    'config.json',
  )
  assert.equal(config.source.format, 'fly')
  const app = config.apps[0] as TcpAppSpec
  assert.equal(app.name, 'five-thousand')
  assert.deepEqual(
    app.listen.map((l) => l.key),
    ['*:5001', '*:5200'],
  )
  assert.deepEqual(
    app.targets.map((t) => t.key),
    ['tcp-echo.fly.dev:5001', '127.0.0.1:7'],
  )
  assert.equal(app.strategy, 'round-robin')
})

test('tcpproxy YAML is recognised without a flag', () => {
  const { config } = loadConfigText(
    'apps:\n  - name: a\n    ports: [6001, 6002]\n    targets: ["127.0.0.1:9001"]\n',
    'x.yaml',
  )
  assert.equal(config.source.format, 'tcpproxy')
  assert.deepEqual(
    config.apps[0]!.listen.map((l) => l.port),
    [6001, 6002],
  )
})

test("sluice's own format in YAML, JSON and TOML gives the same config", () => {
  const yaml = `
admin: false
drain_timeout: 5s
defaults:
  connect_timeout: 500ms
apps:
  - name: web
    listen: [8080, "127.0.0.1:8081"]
    targets:
      - 127.0.0.1:9001
      - { address: 127.0.0.1:9002, weight: 3 }
    strategy: weighted-round-robin
    idle_timeout: 1m
    health: { interval: 1s, send: "PING\\r\\n", expect: "+PONG" }
`
  const json = JSON.stringify({
    admin: false,
    drain_timeout: '5s',
    defaults: { connect_timeout: '500ms' },
    apps: [
      {
        name: 'web',
        listen: [8080, '127.0.0.1:8081'],
        targets: ['127.0.0.1:9001', { address: '127.0.0.1:9002', weight: 3 }],
        strategy: 'weighted-round-robin',
        idle_timeout: '1m',
        health: { interval: '1s', send: 'PING\r\n', expect: '+PONG' },
      },
    ],
  })
  const toml = `
admin = false
drain_timeout = "5s"
[defaults]
connect_timeout = "500ms"
[[apps]]
name = "web"
listen = [8080, "127.0.0.1:8081"]
targets = ["127.0.0.1:9001", { address = "127.0.0.1:9002", weight = 3 }]
strategy = "weighted-round-robin"
idle_timeout = "1m"
health = { interval = "1s", send = "PING\\r\\n", expect = "+PONG" }
`
  const a = loadConfigText(yaml, 's.yaml').config
  const b = loadConfigText(json, 's.json').config
  const c = loadConfigText(toml, 's.toml').config
  for (const x of [a, b, c]) x.source = { file: null, format: 'sluice' }
  assert.deepEqual(a, b)
  assert.deepEqual(a, c)
  const app = a.apps[0] as TcpAppSpec
  assert.equal(a.admin, null)
  assert.equal(a.drainTimeout, 5000)
  assert.equal(app.connectTimeout, 500)
  assert.equal(app.idleTimeout, 60_000)
  assert.deepEqual(app.health, {
    interval: 1000,
    timeout: 1000,
    rise: 2,
    fall: 3,
    send: 'PING\r\n',
    expect: '+PONG',
  })
  assert.deepEqual(app.passive, { failures: 3, cooldown: 10_000 })
  assert.equal(app.targets[1]!.weight, 3)
})

test('the syntax is sniffed when the extension says nothing', () => {
  assert.equal(
    loadConfigText('{"Apps":[{"Name":"a","Ports":[1],"Targets":["h:1"]}]}', 'conf').config.source.format,
    'fly',
  )
  assert.equal(
    loadConfigText('[[apps]]\nname="a"\nlisten=[1]\ntargets=["h:1"]\n', 'conf').config.apps[0]!.name,
    'a',
  )
  assert.equal(
    loadConfigText('apps:\n- {name: a, ports: [1], targets: ["h:1"]}\n', 'conf').config.source.format,
    'tcpproxy',
  )
})

test('defaults are explicit: admin on 127.0.0.1:8474, passive ejection on, keepalive 60s', () => {
  const { config } = loadConfigText('apps: [{name: a, listen: [1], targets: ["h:1"]}]', 'a.yaml')
  assert.deepEqual(config.admin, { host: '127.0.0.1', port: 8474, token: null })
  const app = config.apps[0] as TcpAppSpec
  assert.equal(app.keepAlive, 60_000)
  assert.equal(app.noDelay, true)
  assert.equal(app.idleTimeout, 0)
  assert.equal(app.maxConnections, 0)
  assert.equal(app.health, null)
})

test('syntax errors name the file and line', () => {
  const json = failure('{"Apps": [\n  {"Name": "a",}\n]}', 'bad.json')
  assert.equal(json.code, 'ERR_CONFIG_PARSE')
  assert.match(json.message, /^bad\.json:2: invalid JSON/)
  const yaml = failure('apps:\n  - name: a\n   listen: [1]\n', 'bad.yaml')
  assert.equal(yaml.code, 'ERR_CONFIG_PARSE')
  assert.match(yaml.message, /bad\.yaml:\d+: invalid YAML/)
  const toml = failure('[[apps]]\nname = \n', 'bad.toml')
  assert.equal(toml.code, 'ERR_CONFIG_PARSE')
  assert.match(toml.message, /bad\.toml:2: invalid TOML/)
  assert.match(failure('apps: [1]\napps: [2]\n').message, /invalid YAML/)
  assert.match(failure('', 'empty.yaml').message, /empty/)
  // An alias without its anchor parses but has no value: a parse error, not a ReferenceError.
  const alias = failure('apps: *a\n', 'alias.yaml')
  assert.equal(alias.code, 'ERR_CONFIG_PARSE')
  assert.match(alias.message, /^alias\.yaml: invalid YAML: Unresolved alias/)
})

test('invalid fields name the path, the line and the reason', () => {
  const cases: [string, string, RegExp][] = [
    [
      'apps:\n  - name: a\n    listen: [1]\n    targets: ["h"]\n',
      'c.yaml:4: apps[0].targets[0]',
      /has no port/,
    ],
    [
      'apps:\n  - name: a\n    listen: [99999]\n    targets: ["h:1"]\n',
      'c.yaml:3: apps[0].listen[0]',
      /out of range/,
    ],
    [
      'apps:\n  - name: a\n    lisen: [1]\n    listen: [1]\n    targets: ["h:1"]\n',
      'c.yaml:3: apps[0].lisen',
      /unknown field "lisen" \(did you mean "listen"\?\)/,
    ],
    [
      'apps:\n  - name: a\n    listen: [1]\n    targets: ["h:1"]\n    strategy: fastest\n',
      'apps[0].strategy',
      /must be one of round-robin/,
    ],
    [
      'apps:\n  - name: a\n    listen: [1]\n    targets: ["h:1"]\n    connect_timeout: soon\n',
      'apps[0].connect_timeout',
      /not a duration/,
    ],
    ['apps:\n  - name: a\n    listen: []\n    targets: ["h:1"]\n', 'apps[0].listen', /at least one address/],
    ['apps:\n  - name: a\n    listen: [1]\n    targets: []\n', 'apps[0].targets', /at least one target/],
    [
      'apps:\n  - name: a\n    listen: [1]\n    targets: ["h:1"]\n    health: {interval: 1s, timeout: 2s}\n',
      'apps[0].health.timeout',
      /not be longer than health.interval/,
    ],
    [
      'apps:\n  - name: a\n    kind: udp\n    listen: [1]\n    targets: ["h:1"]\n',
      'apps[0].kind',
      /unknown kind "udp"/,
    ],
    ['apps: {name: a}\n', 'apps', /must be a list of apps/],
    [
      'apps:\n  - name: a\n    listen: [1]\n    targets: ["h:1"]\n    max_connections: -1\n',
      'apps[0].max_connections',
      /at least 0/,
    ],
    ['admin: 0.0.0.0:8474\napps: []\n', 'admin', /reachable off this machine/],
    ['lg: {level: info}\napps: []\n', 'lg', /unknown field "lg" \(did you mean "log"\?\)/],
  ]
  for (const [text, where, re] of cases) {
    const err = failure(text)
    assert.equal(err.code, 'ERR_CONFIG_INVALID', text)
    assert.ok(err.message.includes(where), `expected "${where}" in: ${err.message}`)
    assert.match(err.message, re)
  }
})

test('a port in two apps names the port and both apps', () => {
  const err = failure(
    'apps:\n  - {name: a, listen: [7000, 7001], targets: ["h:1"]}\n  - {name: b, listen: ["127.0.0.1:7001"], targets: ["h:2"]}\n',
  )
  assert.match(
    err.message,
    /apps\[1\]\.listen\[0\]: port 7001 .* used by two apps: "a" \(apps\[0\]\.listen\[1\]\) and "b"/,
  )
  const dupName = failure(
    'apps:\n  - {name: a, listen: [1], targets: ["h:1"]}\n  - {name: a, listen: [2], targets: ["h:2"]}\n',
  )
  assert.match(dupName.message, /apps\[1\]\.name: "a" is already the name of apps\[0\]/)
  const adminClash = failure(
    'admin: 127.0.0.1:7000\napps:\n  - {name: a, listen: [7000], targets: ["h:1"]}\n',
  )
  assert.match(adminClash.message, /admin port 7000 is also used by app "a"/)
})

test('errors in Fly and tcpproxy files use their own field names', () => {
  const fly = failure(JSON.stringify({ Apps: [{ Name: 'a', Ports: [70000], Targets: ['h:1'] }] }), 'f.json')
  assert.match(fly.message, /Apps\[0\]\.Ports\[0\]: port 70000 is out of range/)
  const flyUnknown = failure(JSON.stringify({ Apps: [{ Name: 'a', Port: [1], Targets: ['h:1'] }] }), 'f.json')
  assert.match(flyUnknown.message, /Apps\[0\]\.Port/)
  const flyDup = failure(
    JSON.stringify({
      Apps: [
        { Name: 'a', Ports: [1], Targets: ['h:1'] },
        { Name: 'b', Ports: [1], Targets: ['h:1'] },
      ],
    }),
    'f.json',
  )
  assert.match(flyDup.message, /Apps\[1\]\.Ports\[0\]: port 1 .*"a".*"b"/)
  const tcp = failure('apps:\n  - name: a\n    ports: [1]\n    targets: ["nope"]\n')
  assert.match(tcp.message, /c\.yaml:4: apps\[0\]\.targets\[0\]/)
  const tcpDup = failure(
    'apps:\n  - {name: a, ports: [5], targets: ["h:1"]}\n  - {name: b, ports: [5], targets: ["h:1"]}\n',
  )
  assert.match(tcpDup.message, /apps\[1\]\.ports\[0\]: port 5/)
})

test('a target listed twice is kept twice (a second rotation slot)', () => {
  const { config } = loadConfigText('apps: [{name: a, ports: [1], targets: ["h:1", "h:2", "h:1"]}]', 'd.yaml')
  assert.deepEqual(
    (config.apps[0] as TcpAppSpec).targets.map((t) => t.key),
    ['h:1', 'h:2', 'h:1'],
  )
})

test('every problem is reported at once', () => {
  const err = failure('apps:\n  - name: a\n    listen: [0]\n    targets: ["x", "y:1"]\n    strategy: nope\n')
  assert.ok(err.issues.length >= 2, err.message)
})

test('missing, unreadable and directory paths are told apart', () => {
  assert.throws(() => loadConfigFile(`${tmp.dir}/nope.yaml`), {
    code: 'ERR_CONFIG_NOT_FOUND',
    message: /nope\.yaml: no such file/,
  })
  assert.throws(() => loadConfigFile(tmp.dir), { code: 'ERR_CONFIG_READ', message: /is a directory/ })
  const ok = tmp.file('ok.yaml', 'apps: []\n')
  assert.equal(loadConfigFile(ok).config.apps.length, 0)
})

test('a fault that cannot act on the kind is refused, on the app and on one of its targets', () => {
  for (const [doc, path] of [
    [
      'apps: [{name: a, listen: [1], targets: ["h:1"], faults: [{type: http_error, status: 500}]}]',
      'apps[0].faults[0].type',
    ],
    [
      'apps: [{name: a, listen: [1], targets: [{address: "h:1", faults: [{type: http_error, status: 500}]}]}]',
      'apps[0].targets[0].faults[0].type',
    ],
  ] as const) {
    assert.throws(
      () => loadConfigText(doc, 'a.yaml'),
      (e: ConfigError) =>
        e.code === 'ERR_CONFIG_INVALID' &&
        e.issues.some((i) => i.path === path && /http apps/.test(i.message)),
      path,
    )
  }
})

test('a missing required field is named as missing, not as an unknown field', () => {
  for (const [doc, path] of [
    ['apps: [{listen: [1], targets: ["h:1"]}]', 'apps[0].name'],
    ['apps: [{name: a, kind: http, listen: [1]}]', 'apps[0].destination'],
  ] as const) {
    assert.throws(
      () => loadConfigText(doc, 'a.yaml'),
      (e: ConfigError) =>
        e.issues.some((i) => i.path === path && i.message === 'is required') && !/undefined/.test(e.message),
      path,
    )
  }
})

test("ptproxy's QUIC fields that map onto sluice's transport keep that field's bounds", () => {
  const ptproxy = (transport: string) =>
    `[general]\nmode = "Client"\npeer_hostname = "p.example"\n[tls]\ncert = "/c"\nkey = "/k"\n[transport]\n${transport}\n`
  const ok = loadConfigText(ptproxy('keep_alive_interval = 500\nreceive_window = 0'), 'c.toml').config
  const app = ok.apps[0]!
  assert.ok(app.kind === 'tunnel')
  assert.equal(app.keepaliveInterval, 500)
  assert.equal(app.sessionWindow, 65_535)
  const long = failure(ptproxy('keep_alive_interval = 3000000000'), 'c.toml')
  assert.equal(long.code, 'ERR_CONFIG_INVALID')
  assert.deepEqual(
    long.issues.map((i) => i.path),
    ['transport.keep_alive_interval'],
  )
  assert.match(long.message, /longer than the longest duration.*sets transport\.keepalive_interval/)
  assert.match(
    failure(ptproxy('max_concurrent_http_streams = 1e300'), 'c.toml').message,
    /transport\.max_concurrent_http_streams: must be at most 100000/,
  )
})
