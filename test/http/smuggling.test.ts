// A request-smuggling corpus through the http app, over real sockets. Each request is either
// refused (the right status, the connection closed, no complete request at the origin) or
// forwarded in exactly one unambiguous form: the origin (Node's llhttp, strict) reads exactly the
// requests sluice meant, with the same bodies, and the upstream head has one framing field.
import assert from 'node:assert/strict'
import { createServer } from 'node:http'
import { connect } from 'node:net'
import { before, test } from 'node:test'
import { freePort } from '../../src/testkit/ports.ts'
import { testScope, waitFor } from '../helpers.ts'

const t = testScope()

interface Seen {
  method: string
  url: string
  body: string
  rawHeaders: string[]
}

const done: Seen[] = []
let port = 0

before(async () => {
  const origin = createServer((req, res) => {
    let body = ''
    req.setEncoding('latin1')
    req.on('data', (d: string) => {
      body += d
    })
    req.on('end', () => {
      done.push({ method: req.method!, url: req.url!, body, rawHeaders: req.rawHeaders })
      res.end(`ok ${body.length}`)
    })
  })
  await new Promise<void>((r) => origin.listen(0, '127.0.0.1', () => r()))
  t.defer(() => {
    origin.closeAllConnections()
    return new Promise<void>((r) => origin.close(() => r()))
  })
  port = await freePort()
  await t.engine({
    apps: [
      {
        name: 'web',
        kind: 'http',
        listen: [port],
        destination: `http://127.0.0.1:${(origin.address() as { port: number }).port}`,
        timeouts: { header: '2s', body: '2s' },
      },
    ],
  })
})

/** Send `raw`, read until sluice closes (or `settle` ms after a complete answer on keep-alive). */
function send(raw: string | Buffer): Promise<{ text: string; closed: boolean }> {
  return new Promise((resolve, reject) => {
    let text = ''
    const s = connect({ port, host: '127.0.0.1' })
    const timer = setTimeout(() => {
      s.destroy()
      resolve({ text, closed: false })
    }, 4000)
    s.on('data', (d: Buffer) => {
      text += d.toString('latin1')
    })
    s.on('error', () => {})
    s.on('close', () => {
      clearTimeout(timer)
      resolve({ text, closed: true })
    })
    s.on('connect', () => s.write(raw))
    s.on('error', reject)
  })
}

const H = 'POST / HTTP/1.1\r\nHost: x\r\n'

const refused: [string, string | Buffer, number][] = [
  ['CL.TE', `${H}Content-Length: 6\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\nG`, 400],
  ['TE.CL', `${H}Transfer-Encoding: chunked\r\nContent-Length: 6\r\n\r\n0\r\n\r\nG`, 400],
  ['two differing Content-Length', `${H}Content-Length: 5\r\nContent-Length: 6\r\n\r\nhello!`, 400],
  ['a differing Content-Length list', `${H}Content-Length: 5, 6\r\n\r\nhello!`, 400],
  ['Content-Length with a sign', `${H}Content-Length: +5\r\n\r\nhello`, 400],
  ['negative Content-Length', `${H}Content-Length: -1\r\n\r\n`, 400],
  ['hex Content-Length', `${H}Content-Length: 0x5\r\n\r\nhello`, 400],
  ['Content-Length of 20 digits', `${H}Content-Length: 99999999999999999999\r\n\r\n`, 400],
  ['TE xchunked', `${H}Transfer-Encoding: xchunked\r\n\r\n0\r\n\r\n`, 400],
  ['TE chunked, identity', `${H}Transfer-Encoding: chunked, identity\r\n\r\n0\r\n\r\n`, 400],
  ['TE identity', `${H}Transfer-Encoding: identity\r\n\r\nhello`, 400],
  ['TE chunked twice', `${H}Transfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n`, 400],
  ['TE with a quoted coding', `${H}Transfer-Encoding: "chunked"\r\n\r\n0\r\n\r\n`, 400],
  ['TE gzip, chunked', `${H}Transfer-Encoding: gzip, chunked\r\n\r\n0\r\n\r\n`, 501],
  ['TE in HTTP/1.0', 'POST / HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n', 400],
  ['space before the colon', `${H}Transfer-Encoding : chunked\r\n\r\n0\r\n\r\n`, 400],
  ['obs-fold', `${H}X-A: 1\r\n continued\r\nContent-Length: 0\r\n\r\n`, 400],
  ['obs-fold of Transfer-Encoding', `${H}Transfer-Encoding:\r\n chunked\r\n\r\n0\r\n\r\n`, 400],
  ['a field line starting with a space', `${H} Transfer-Encoding: chunked\r\n\r\n0\r\n\r\n`, 400],
  ['bare LF line ends', 'GET / HTTP/1.1\nHost: x\n\n', 400],
  ['a bare LF in one line', `${H}X-A: 1\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n`, 400],
  ['a bare CR in a value', `${H}X-A: 1\rTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n`, 400],
  ['NUL in a name', `${H}X\u0000A: 1\r\n\r\n`, 400],
  ['NUL in a value', `${H}X-A: a\u0000b\r\n\r\n`, 400],
  ['DEL in a value', `${H}X-A: a\u007fb\r\n\r\n`, 400],
  ['a vertical tab after Content-Length', `${H}Content-Length: 5\u000b\r\n\r\nhello`, 400],
  ['a control in the request line', 'GET /a\u0001b HTTP/1.1\r\nHost: x\r\n\r\n', 400],
  ['two Host fields', 'GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n', 400],
  ['no Host in HTTP/1.1', 'GET / HTTP/1.1\r\n\r\n', 400],
  ['HTTP/1.2', 'GET / HTTP/1.2\r\nHost: x\r\n\r\n', 400],
  ['lower-case version', 'GET / http/1.1\r\nHost: x\r\n\r\n', 400],
  ['two spaces in the request line', 'GET  / HTTP/1.1\r\nHost: x\r\n\r\n', 400],
  ['bytes after a Content-Length body', `${H}Content-Length: 5\r\n\r\nhelloXYZ\r\n\r\n`, 400],
  ['a huge chunk size', `${H}Transfer-Encoding: chunked\r\n\r\nffffffffffffffffff\r\nx\r\n0\r\n\r\n`, 400],
  ['a negative chunk size', `${H}Transfer-Encoding: chunked\r\n\r\n-1\r\nx\r\n0\r\n\r\n`, 400],
  [
    'a chunk size with a space inside',
    `${H}Transfer-Encoding: chunked\r\n\r\n5 6\r\nhello\r\n0\r\n\r\n`,
    400,
  ],
  ['a chunk size with 0x', `${H}Transfer-Encoding: chunked\r\n\r\n0x5\r\nhello\r\n0\r\n\r\n`, 400],
  ['chunk data longer than its size', `${H}Transfer-Encoding: chunked\r\n\r\n3\r\nhello\r\n0\r\n\r\n`, 400],
  ['a chunk line ended by a bare LF', `${H}Transfer-Encoding: chunked\r\n\r\n5\nhello\r\n0\r\n\r\n`, 400],
  [
    'a chunk-extension flood',
    `${H}Transfer-Encoding: chunked\r\n\r\n5${';a=b'.repeat(5000)}\r\nhello\r\n0\r\n\r\n`,
    400,
  ],
  [
    'a control in a chunk extension',
    `${H}Transfer-Encoding: chunked\r\n\r\n5;a\u0001\r\nhello\r\n0\r\n\r\n`,
    400,
  ],
  ['a trailer without a colon', `${H}Transfer-Encoding: chunked\r\n\r\n0\r\nnot a field\r\n\r\n`, 400],
  ['a request line of 64 KiB', `GET /${'a'.repeat(64 * 1024)} HTTP/1.1\r\nHost: x\r\n\r\n`, 414],
  ['a head of 64 KiB', `GET / HTTP/1.1\r\nHost: x\r\nX-A: ${'a'.repeat(64 * 1024)}\r\n\r\n`, 431],
]

for (const [name, raw, status] of refused) {
  test(`refused: ${name} → ${status}, closed, no request at the origin`, async () => {
    const before = done.length
    const r = await send(raw)
    assert.match(r.text, new RegExp(`^HTTP/1\\.1 ${status} `), r.text.slice(0, 80))
    assert.match(r.text, /\r\nConnection: close\r\n/)
    assert.match(r.text, /\r\nServer: sluice\r\n/, "the answer is sluice's, not the origin's")
    assert.ok(r.closed, 'sluice closed the connection')
    // Nothing complete reached the origin (a streamed chunked body cut midway is not complete).
    assert.equal(done.length, before)
  })
}

/** The framing fields of the last request the origin read, as they came on the wire. */
function upstreamFraming(): string[] {
  const raw = done.at(-1)!.rawHeaders
  const out: string[] = []
  for (let i = 0; i < raw.length; i += 2)
    if (/^(content-length|transfer-encoding)$/i.test(raw[i]!)) out.push(`${raw[i]}: ${raw[i + 1]}`)
  return out
}

const forwarded: [string, string, string, string[]][] = [
  [
    'TE with a tab before it',
    `${H}Transfer-Encoding:\tchunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n`,
    'hello',
    ['Transfer-Encoding: chunked'],
  ],
  [
    'TE with a trailing space',
    `${H}Transfer-Encoding: chunked \r\n\r\n5\r\nhello\r\n0\r\n\r\n`,
    'hello',
    ['Transfer-Encoding: chunked'],
  ],
  [
    'TE in upper case',
    `${H}Transfer-Encoding: CHUNKED\r\n\r\n5\r\nhello\r\n0\r\n\r\n`,
    'hello',
    ['Transfer-Encoding: chunked'],
  ],
  [
    'TE with an empty list element',
    `${H}Transfer-Encoding: , chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n`,
    'hello',
    ['Transfer-Encoding: chunked'],
  ],
  [
    'transfer-encoding in lower case',
    `${H}transfer-encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n`,
    'hello',
    ['Transfer-Encoding: chunked'],
  ],
  [
    'the same Content-Length twice',
    `${H}Content-Length: 5\r\nContent-Length: 5\r\n\r\nhello`,
    'hello',
    ['Content-Length: 5'],
  ],
  [
    'a Content-Length list of one value',
    `${H}Content-Length: 5, 5\r\n\r\nhello`,
    'hello',
    ['Content-Length: 5'],
  ],
  [
    'Content-Length with leading zeros',
    `${H}Content-Length: 005\r\n\r\nhello`,
    'hello',
    ['Content-Length: 5'],
  ],
  ['Content-Length with a tab', `${H}Content-Length:\t5\t\r\n\r\nhello`, 'hello', ['Content-Length: 5']],
  [
    'a chunk extension and a trailer',
    `${H}Transfer-Encoding: chunked\r\n\r\n5;name="v"\r\nhello\r\n0\r\nX-T: 1\r\n\r\n`,
    'hello',
    ['Transfer-Encoding: chunked'],
  ],
  [
    'upper-case hex chunk sizes',
    `${H}Transfer-Encoding: chunked\r\n\r\nA\r\n0123456789\r\n0\r\n\r\n`,
    '0123456789',
    ['Transfer-Encoding: chunked'],
  ],
]

for (const [name, raw, body, framing] of forwarded) {
  test(`forwarded once: ${name}`, async () => {
    const before = done.length
    const r = await send(`${raw.replace('Host: x\r\n', 'Host: x\r\nConnection: close\r\n')}`)
    assert.match(r.text, /^HTTP\/1\.1 200 OK\r\n/, r.text.slice(0, 80))
    assert.ok(r.text.endsWith(`ok ${body.length}`))
    await waitFor(() => done.length === before + 1, 'the origin to read the request')
    assert.equal(done.length, before + 1)
    assert.equal(done.at(-1)!.body, body)
    assert.deepEqual(upstreamFraming(), framing)
  })
}

test('a pipelined request after a body is a second request, read the same by the origin', async () => {
  const before = done.length
  const r = await send(
    `${H}Content-Length: 5\r\n\r\nhelloGET /second HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n`,
  )
  assert.equal(r.text.match(/HTTP\/1\.1 200 OK/g)?.length, 2)
  await waitFor(() => done.length === before + 2, 'both requests at the origin')
  assert.deepEqual(
    done.slice(before).map((s) => [s.method, s.url, s.body]),
    [
      ['POST', '/', 'hello'],
      ['GET', '/second', ''],
    ],
  )
})
