// Unit tests: the tunnel's header rules and the ptproxy TOML mapping.
import assert from 'node:assert/strict'
import { test } from 'node:test'
import { loadConfigText } from '../../src/config/load.ts'
import { toDocument } from '../../src/config/print.ts'
import {
  appendForwarded,
  endToEnd,
  forwardedElement,
  supportedTransferEncoding,
} from '../../src/tunnel/headers.ts'

test('endToEnd drops hop-by-hop fields and those Connection lists, keeps duplicates in order', () => {
  const raw = [
    'Host',
    'a',
    'Connection',
    'keep-alive, X-Hop',
    'X-Hop',
    '1',
    'Set-Cookie',
    'a=1',
    'TE',
    'trailers',
    'Set-Cookie',
    'b=2',
    'Proxy-Authorization',
    'x',
  ]
  assert.deepEqual(endToEnd(raw), [
    ['set-cookie', 'a=1'],
    ['set-cookie', 'b=2'],
  ])
})

test('Forwarded elements quote nodes and append after existing values', () => {
  const el = forwardedElement(
    { remoteAddress: '::1', remotePort: 5, localAddress: '127.0.0.1', localPort: 80 },
    'http',
  )
  assert.equal(el, 'for="[::1]:5";by="127.0.0.1:80";proto=http')
  assert.deepEqual(
    appendForwarded(
      [
        ['forwarded', 'for=1.2.3.4'],
        ['x', '1'],
      ],
      el,
    ),
    [
      ['x', '1'],
      ['forwarded', `for=1.2.3.4, ${el}`],
    ],
  )
})

test('only chunked is a supported request Transfer-Encoding', () => {
  assert.equal(supportedTransferEncoding(undefined), true)
  assert.equal(supportedTransferEncoding('Chunked'), true)
  assert.equal(supportedTransferEncoding('gzip, chunked'), false)
})

test('ptproxy TOML: detected, paths relative to the file, QUIC-only fields kept as ignored, unknown keys refused', () => {
  const text = `[general]
mode = "Server"
peer_hostname = "foo.example.org"
http_connect_address = "localhost:8081"
[tls]
ca = "rootCA.pem"
cert = "bar.pem"
key = "bar-key.pem"
[transport]
max_idle_timeout = 3000
stream_receive_window = 4000000
initial_rtt = 150
[system]
add_forwarded = true
wait_for_first_attempt = false
`
  const { config } = loadConfigText(text, '/etc/ptproxy/b.toml')
  const app = config.apps[0]!
  assert.equal(config.source.format, 'ptproxy')
  assert.equal(app.kind, 'tunnel')
  if (app.kind !== 'tunnel') return
  assert.equal(app.mode, 'server')
  assert.equal(app.listen[0]!.key, '[::]:20010')
  assert.deepEqual(app.target, { host: 'localhost', port: 8081 })
  assert.equal(app.tls.ca, '/etc/ptproxy/rootCA.pem')
  assert.equal(app.idleTimeout, 3000)
  assert.equal(app.streamWindow, 4_000_000)
  assert.equal(app.addForwarded, true)
  // Meaningless on a server, but kept as written (and printed, so that it reads back the same).
  assert.equal(app.waitForFirstAttempt, false)
  assert.match(app.ignored.initial_rtt!, /ignored/)
  assert.equal(config.admin, null)
  assert.throws(
    () => loadConfigText(text.replace('[system]', '[system]\nfancy = 1'), '/x.toml'),
    /system\.fancy/,
  )
  // `sluice check` prints it in sluice's format and that reads back the same: mapped QUIC fields
  // come back as the sluice fields they set, ignored ones as written.
  const again = loadConfigText(JSON.stringify(toDocument(config)), '/etc/ptproxy/b.json').config.apps[0]
  const { mapped, quic, ...rest } = app
  assert.deepEqual(again, { ...rest, mapped: {}, quic: { initial_rtt: 150 } })
  assert.match(mapped.max_idle_timeout!, /3000 → transport\.idle_timeout and transport\.connect_timeout/)
  assert.equal(quic.stream_receive_window, 4_000_000)
})

test("a tunnel server's client-only fields, when set, are printed so that they read back", () => {
  const text = `apps:
  - {name: s, kind: tunnel, mode: server, listen: ["[::1]:1024"], origin: "127.0.0.1:1",
     peer_hostname: p.example, sessions: 1, tls: {cert: /c.pem, key: /c.key}}
`
  const { config } = loadConfigText(text, '/x.yaml')
  const again = loadConfigText(JSON.stringify(toDocument(config)), '/y.json').config
  assert.deepEqual(again.apps, config.apps)
})
