// The HTTP/1.1 head parser, body framing and dispatch decisions, as plain functions.
import assert from 'node:assert/strict'
import { test } from 'node:test'
import { parseDestination } from '../../src/config/http.ts'
import type { HttpAppSpec } from '../../src/config/types.ts'
import { ChunkedFraming, LengthFraming } from '../../src/http/body.ts'
import { canStartRequest, HeadError, headEnd, parseRequest, parseResponse } from '../../src/http/head.ts'
import { compileRules, foldEdits, pick, upstreamHead, upstreamTarget } from '../../src/http/rules.ts'

const limits = { maxHeaderSize: 32768, maxHeaders: 100 }
const req = (text: string) => {
  const b = Buffer.from(text, 'latin1')
  return parseRequest(b, headEnd(b), limits)
}
const refused = (text: string): number => {
  try {
    req(text)
    return 0
  } catch (err) {
    assert.ok(err instanceof HeadError)
    return err.status
  }
}

test('request heads: framing, keep-alive and upgrade are read from the fields', () => {
  const r = req('POST /a?b=1 HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\nX-A: 1\r\nx-a: 2\r\n\r\n')
  assert.equal(r.method, 'POST')
  assert.equal(r.target, '/a?b=1')
  assert.equal(r.body, 'length')
  assert.equal(r.length, 5)
  assert.equal(r.keepAlive, true)
  assert.deepEqual(r.fields.names, ['Host', 'Content-Length', 'X-A', 'x-a'])
  assert.equal(req('GET / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n').body, 'chunked')
  assert.equal(req('GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n').keepAlive, false)
  assert.equal(req('GET / HTTP/1.0\r\n\r\n').keepAlive, false)
  assert.equal(
    req('GET / HTTP/1.1\r\nHost: x\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\r\n').upgrade,
    'websocket',
  )
  assert.equal(req('GET / HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\n\r\n').upgrade, null)
})

test('request heads: smuggling vectors and malformed input are refused with the right status', () => {
  const cases: [string, number][] = [
    ['GET / HTTP/1.1\r\nHost: x\r\nContent-Length: 1\r\nTransfer-Encoding: chunked\r\n\r\n', 400],
    ['GET / HTTP/1.1\r\nHost: x\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\n', 400],
    ['GET / HTTP/1.1\r\nHost: x\r\nContent-Length: 1, 2\r\n\r\n', 400],
    ['GET / HTTP/1.1\r\nHost: x\r\nContent-Length: -1\r\n\r\n', 400],
    ['GET / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: gzip, chunked\r\n\r\n', 501],
    // RFC 9112 6.3: a request whose final coding is not chunked has no determinable length.
    ['GET / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: gzip\r\n\r\n', 400],
    ['GET / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked, identity\r\n\r\n', 400],
    ['GET / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: xchunked\r\n\r\n', 400],
    ['GET / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding : chunked\r\n\r\n', 400],
    ['GET / HTTP/1.1\r\nHost: x\r\n folded\r\n\r\n', 400],
    ['GET / HTTP/1.1\r\nHost: x\r\nX: a\nb\r\n\r\n', 400],
    ['GET / HTTP/1.1\r\n\r\n', 400],
    ['GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n', 400],
    ['GET /a b HTTP/1.1\r\nHost: x\r\n\r\n', 400],
    ['GET / HTTP/2.0\r\nHost: x\r\n\r\n', 400],
    [`GET / HTTP/1.1\r\nHost: x\r\n${'A: b\r\n'.repeat(101)}\r\n`, 431],
    // Only space and tab are whitespace around a value: NBSP (0xA0), VT and FF are part of it.
    ['GET / HTTP/1.1\r\nHost: x\r\nContent-Length: 3\xa0\r\n\r\n', 400],
    ['GET / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\xa0\r\n\r\n', 400],
    ['GET / HTTP/1.1\r\nHost: x\r\nX: a\x0b\r\n\r\n', 400],
  ]
  for (const [text, status] of cases) assert.equal(refused(text), status, JSON.stringify(text))
  assert.equal(refused('GET / HTTP/1.1\r\nHost: x\r\nContent-Length: 3, 3\r\n\r\n'), 0)
  assert.deepEqual(req('GET / HTTP/1.1\r\nHost: x\r\nX: \t\xa0v\xa0 \r\n\r\n').fields.values, [
    'x',
    '\xa0v\xa0',
  ])
})

test('response heads: body framing by method, status, Transfer-Encoding and Content-Length', () => {
  const res = (text: string, method = 'GET') => {
    const b = Buffer.from(text)
    return parseResponse(b, headEnd(b), method, limits)
  }
  assert.equal(res('HTTP/1.1 200 OK\r\nContent-Length: 3\r\n\r\n').body, 'length')
  assert.equal(res('HTTP/1.1 200 OK\r\nContent-Length: 3\r\n\r\n', 'HEAD').body, 'none')
  assert.equal(res('HTTP/1.1 204 No Content\r\n\r\n').body, 'none')
  assert.equal(res('HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n').body, 'chunked')
  assert.equal(res('HTTP/1.1 200 OK\r\n\r\n').body, 'close')
  assert.equal(res('HTTP/1.0 200 OK\r\nContent-Length: 1\r\n\r\n').keepAlive, false)
  assert.equal(res('HTTP/1.1 200\r\n\r\n').reason, '')
  assert.throws(() => res('HTTP/1.1 OK\r\n\r\n'), HeadError)
})

test('chunked framing finds the exact end, across any split, and refuses malformed sizes', () => {
  const body = Buffer.from('5;ext=1\r\nhello\r\nA\r\n0123456789\r\n0\r\nTrailer: x\r\n\r\nNEXT')
  for (let split = 0; split <= body.length - 4; split++) {
    const f = new ChunkedFraming()
    const a = f.take(body.subarray(0, split), 0)
    const b = f.take(body, split)
    assert.equal(a + b, body.length - 4, `split at ${split}`)
    assert.ok(f.done)
  }
  for (const bad of ['x\r\n', '5\r\nhelloXX', '5\nhello', 'fffffffffffff\r\n']) {
    const f = new ChunkedFraming()
    assert.equal(f.take(Buffer.from(bad), 0), -1, bad)
  }
  const l = new LengthFraming(3)
  assert.equal(l.take(Buffer.from('abcdef'), 1), 3)
  assert.ok(l.done)
})

test('bytes after a request: a request line may follow, garbage may not', () => {
  assert.ok(canStartRequest(Buffer.from('GET / HTTP/1.1\r\n')))
  assert.ok(canStartRequest(Buffer.from('GE')))
  assert.ok(canStartRequest(Buffer.from('\r\nPOST ')))
  assert.ok(!canStartRequest(Buffer.from('\x00garbage')))
  assert.ok(!canStartRequest(Buffer.from(' GET')))
})

test('destinations: scheme, default ports, authority and path prefix', () => {
  const d = parseDestination('https://example.com/api/')
  assert.ok(typeof d !== 'string')
  assert.equal(d.port, 443)
  assert.equal(d.authority, 'example.com')
  assert.equal(d.pathPrefix, '/api')
  assert.ok(d.tls)
  const v6 = parseDestination('http://[::1]:8080')
  assert.ok(typeof v6 !== 'string')
  assert.equal(v6.host, '::1')
  assert.equal(v6.authority, '[::1]:8080')
  assert.match(String(parseDestination('ftp://x')), /not http or https/)
  assert.match(String(parseDestination('http://x/?q=1')), /query/)
  assert.equal(upstreamTarget('/a?b', '/api'), '/api/a?b')
  assert.equal(upstreamTarget('http://h:1/p?q', ''), '/p?q')
  assert.equal(upstreamTarget('*', ''), '*')
})

test('header edits fold in order; rules match first-wins; the upstream head is rebuilt once', () => {
  const folded = foldEdits([
    { op: 'set', name: 'A', value: '1' },
    { op: 'add', name: 'A', value: '2' },
    { op: 'remove', name: 'B', value: '' },
    { op: 'set', name: 'Host', value: 'h' },
  ])
  assert.deepEqual([...folded.drop], ['a', 'b'])
  assert.deepEqual(folded.append, [
    ['A', '1'],
    ['A', '2'],
  ])
  assert.equal(folded.host, 'h')
  const dest = parseDestination('http://127.0.0.1:9000') as never
  const other = parseDestination('http://127.0.0.1:9001/v1') as never
  const app = {
    destination: dest,
    headers: [],
    upstreamTimeout: 1000,
    rules: [
      {
        name: 'a',
        match: [{ header: 'env', op: 'prefix', value: 'de' }],
        destination: other,
        headers: [{ op: 'remove', name: 'X-Drop', value: '' }],
        timeout: null,
        faults: [],
      },
      {
        name: 'b',
        match: [
          { header: 'env', op: 'present', value: '' },
          { header: 'k', op: 'regex', value: '^[0-9]+$' },
        ],
        destination: null,
        headers: [],
        timeout: 5,
        faults: [],
      },
    ],
  } as unknown as HttpAppSpec
  const rules = compileRules(app)
  const r = req(
    'GET /x HTTP/1.1\r\nHost: client\r\nenv: dev\r\nX-Drop: 1\r\nConnection: keep-alive, X-Hop\r\nX-Hop: 1\r\nKeep-Alive: 5\r\nX-Forwarded-For: 10.0.0.1\r\n\r\n',
  )
  const rule = pick(rules, r.fields)
  assert.equal(rule.name, 'a')
  const head = upstreamHead(r, rule, {
    clientIp: '127.0.0.1',
    preserveHost: false,
    forwarded: { xForwardedFor: true, xForwardedProto: false, xForwardedHost: false, forwarded: false },
  })
  assert.equal(
    head,
    'GET /v1/x HTTP/1.1\r\nHost: 127.0.0.1:9001\r\nenv: dev\r\nX-Forwarded-For: 10.0.0.1, 127.0.0.1\r\n\r\n',
  )
  assert.equal(pick(rules, req('GET / HTTP/1.1\r\nHost: x\r\nenv: prod\r\nk: 12\r\n\r\n').fields).name, 'b')
  assert.equal(
    pick(rules, req('GET / HTTP/1.1\r\nHost: x\r\nenv: prod\r\nk: x\r\n\r\n').fields).name,
    'default',
  )
})
