// Properties of the HTTP/1.1 head parser and body framing (src/http/head.ts, src/http/body.ts).
// The head parser's coded error is HeadError: a status to answer (400, 431, 501 for a request; 502
// for a response) and a reason; anything else thrown is a bug. Body framing never throws: take()
// says -1 with an error. Heads built from valid parts parse back to the same parts.
import assert from 'node:assert/strict'
import { test } from 'node:test'
import { ChunkedFraming, type Framing, LengthFraming } from '../../src/http/body.ts'
import {
  canStartRequest,
  HeadError,
  hasControl,
  headEnd,
  parseRequest,
  parseResponse,
} from '../../src/http/head.ts'
import { check, fc } from './fuzz.ts'

const limits = { maxHeaderSize: 1024, maxHeaders: 12 }
const TOKEN = /^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$/

const token = fc.stringMatching(/^[!#$%&'*+\-.^_`|~0-9A-Za-z]{1,10}$/)
/** A field value as RFC 9110 allows it: VCHAR, obs-text, SP and HTAB inside, none at the ends. */
const fieldValue = fc
  .array(
    fc.oneof(
      { weight: 6, arbitrary: fc.integer({ min: 0x21, max: 0x7e }) },
      { weight: 2, arbitrary: fc.constantFrom(0x20, 0x09) },
      { weight: 2, arbitrary: fc.integer({ min: 0x80, max: 0xff }) },
    ),
    { maxLength: 16 },
  )
  .map((codes) => String.fromCharCode(...codes).replace(/^[ \t]+|[ \t]+$/g, ''))
const framingNames = new Set(['host', 'content-length', 'transfer-encoding', 'connection', 'upgrade'])
/** Fields that do not touch framing, keep-alive or Host: they must come back exactly as written. */
const plainFields = fc.array(
  fc.tuple(
    token.filter((n) => !framingNames.has(n.toLowerCase())),
    fieldValue,
    fc.constantFrom('', ' ', '\t', '  '),
  ),
  { maxLength: 6 },
)

function parseReq(buf: Buffer) {
  const end = headEnd(buf)
  return end < 0 ? null : parseRequest(buf, end, limits)
}

/** The outcome of parsing: the head, or the HeadError's status. Anything else thrown fails. */
function attempt<T>(fn: () => T, statuses: number[]): T | number {
  try {
    return fn()
  } catch (err) {
    if (!(err instanceof HeadError)) throw err
    assert.ok(statuses.includes(err.status), `status ${err.status} for: ${err.message}`)
    assert.ok(err.message.length > 0)
    return err.status
  }
}

/** A valid request head and what parsing it must give. */
const validRequest = fc
  .record({
    method: token,
    target: fc.stringMatching(/^[!-~]{1,24}$/),
    minor: fc.constantFrom(0, 1),
    host: fc.option(fieldValue.filter((v) => v.length > 0)),
    fields: plainFields,
    framing: fc.oneof(
      fc.constant({ kind: 'none' as const }),
      fc.record({ kind: fc.constant('length' as const), n: fc.integer({ min: 0, max: 1e9 }) }),
      fc.constant({ kind: 'chunked' as const }),
    ),
    connection: fc.constantFrom(null, 'close', 'keep-alive', 'Keep-Alive, x', 'upgrade'),
  })
  .filter((r) => (r.minor === 0 || r.host !== null) && !(r.minor === 0 && r.framing.kind === 'chunked'))

function serializeRequest(r: typeof validRequest extends fc.Arbitrary<infer T> ? T : never): {
  text: string
  names: string[]
  values: string[]
} {
  const lines: [string, string, string][] = []
  if (r.host !== null) lines.push(['Host', r.host, ' '])
  lines.push(...r.fields)
  if (r.framing.kind === 'length') lines.push(['Content-Length', String(r.framing.n), ' '])
  if (r.framing.kind === 'chunked') lines.push(['Transfer-Encoding', 'chunked', ''])
  if (r.connection !== null) lines.push(['Connection', r.connection, ' '])
  const head = `${r.method} ${r.target} HTTP/1.${r.minor}\r\n${lines.map(([n, v, ows]) => `${n}:${ows}${v}${ows}\r\n`).join('')}\r\n`
  return { text: head, names: lines.map((l) => l[0]), values: lines.map((l) => l[1]) }
}

test('a valid request head parses back to the fields it was built from', () => {
  check(
    fc.property(validRequest, (r) => {
      const { text, names, values } = serializeRequest(r)
      const h = parseReq(Buffer.from(text, 'latin1'))
      assert.ok(h)
      assert.equal(h.method, r.method)
      assert.equal(h.target, r.target)
      assert.equal(h.minor, r.minor)
      assert.deepEqual(h.fields.names, names)
      assert.deepEqual(h.fields.values, values)
      assert.deepEqual(
        h.fields.lower,
        names.map((n) => n.toLowerCase()),
      )
      assert.equal(h.host, r.host)
      const length = r.framing.kind === 'length' ? r.framing.n : 0
      const kind = r.framing.kind === 'length' && length === 0 ? 'none' : r.framing.kind
      assert.equal(h.body, kind)
      assert.equal(h.length, kind === 'length' ? length : 0)
      const conn = (r.connection ?? '').toLowerCase()
      assert.equal(h.keepAlive, r.minor === 1 ? conn !== 'close' : conn.includes('keep-alive'))
      assert.equal(h.upgrade, null)
    }),
    400,
  )
})

test('every prefix of a valid request can start a request; a head found in pieces is the same head', () => {
  check(
    fc.property(validRequest, fc.nat(), (r, cut) => {
      const buf = Buffer.from(serializeRequest(r).text, 'latin1')
      const k = cut % (buf.length + 1)
      // The first line is a token then a space: any prefix of it may still be one.
      assert.ok(canStartRequest(buf.subarray(0, Math.min(k, buf.indexOf(' ') + 1))))
      const whole = headEnd(buf)
      assert.equal(whole, buf.length)
      // The search resumes where it stopped, as the exchange does when more bytes arrive.
      if (headEnd(buf.subarray(0, k)) < 0) assert.equal(headEnd(buf, k), whole)
    }),
  )
})

/** A valid head with random edits: inserted, deleted or replaced bytes (often CR, LF, colon, space, NUL). */
function mutated(base: fc.Arbitrary<Buffer>): fc.Arbitrary<Buffer> {
  const special = fc.constantFrom(13, 10, 58, 32, 9, 0, 127, 0xff, 0x2c, 0x30, 0x3b)
  const edit = fc.record({
    at: fc.nat(),
    op: fc.constantFrom('insert', 'delete', 'replace'),
    byte: fc.oneof(special, fc.integer({ min: 0, max: 255 })),
  })
  return fc.tuple(base, fc.array(edit, { maxLength: 4 })).map(([buf, edits]) => {
    const bytes = [...buf]
    for (const e of edits) {
      const i = bytes.length ? e.at % bytes.length : 0
      if (e.op === 'insert') bytes.splice(i, 0, e.byte)
      else if (e.op === 'delete') bytes.splice(i, 1)
      else bytes[i] = e.byte
    }
    return Buffer.from(bytes)
  })
}

const requestBytes = fc.oneof(
  mutated(validRequest.map((r) => Buffer.from(serializeRequest(r).text, 'latin1'))),
  fc.uint8Array({ maxLength: 200 }).map((a) => Buffer.concat([Buffer.from(a), Buffer.from('\r\n\r\n')])),
  fc
    .array(
      fc.constantFrom(
        'GET / HTTP/1.1',
        'Host: a',
        'Content-Length: 3',
        'Transfer-Encoding: chunked',
        ' x',
        '',
      ),
      { maxLength: 8 },
    )
    .map((l) => Buffer.from(`${l.join('\r\n')}\r\n\r\n`)),
)

test('any bytes as a request head: a parsed head that keeps the rules, or a HeadError', () => {
  check(
    fc.property(requestBytes, (buf) => {
      const h = attempt(() => parseReq(buf), [400, 431, 501])
      if (h === null || typeof h === 'number') return
      assert.match(h.method, TOKEN)
      assert.match(h.target, /^[!-~]+$/)
      assert.ok(h.fields.names.length <= limits.maxHeaders)
      assert.equal(h.fields.names.length, h.fields.values.length)
      for (let i = 0; i < h.fields.names.length; i++) {
        assert.match(h.fields.names[i]!, TOKEN)
        assert.ok(!hasControl(h.fields.values[i]!), 'no control characters in a value')
        assert.ok(!/^[ \t]|[ \t]$/.test(h.fields.values[i]!), 'no whitespace at the ends of a value')
      }
      const lower = h.fields.lower
      const has = (n: string) => lower.includes(n)
      // Smuggling: never both framings, never Transfer-Encoding in HTTP/1.0.
      assert.ok(!(has('content-length') && has('transfer-encoding')))
      if (h.body === 'chunked') assert.equal(h.minor, 1)
      if (h.body === 'length') assert.ok(Number.isSafeInteger(h.length) && h.length > 0)
      else assert.equal(h.length, 0)
      assert.ok(h.body !== 'close', 'a request body never runs to the close')
      if (h.minor === 1) assert.equal(lower.filter((n) => n === 'host').length, 1)
    }),
    1000,
  )
})

const validResponse = fc.record({
  minor: fc.constantFrom(0, 1),
  status: fc.integer({ min: 100, max: 999 }),
  reason: fc.option(fc.stringMatching(/^[ -~]{0,16}$/)),
  fields: plainFields,
  framing: fc.oneof(
    fc.constant({ kind: 'none' as const }),
    fc.record({ kind: fc.constant('length' as const), n: fc.integer({ min: 0, max: 1e9 }) }),
    fc.record({
      kind: fc.constant('te' as const),
      codings: fc.constantFrom('chunked', 'gzip', 'gzip, chunked'),
    }),
  ),
  method: fc.constantFrom('GET', 'HEAD', 'POST'),
})

function serializeResponse(r: typeof validResponse extends fc.Arbitrary<infer T> ? T : never) {
  const lines: [string, string, string][] = [...r.fields]
  if (r.framing.kind === 'length') lines.push(['Content-Length', String(r.framing.n), ' '])
  if (r.framing.kind === 'te') lines.push(['Transfer-Encoding', r.framing.codings, ' '])
  const first = `HTTP/1.${r.minor} ${r.status}${r.reason === null ? '' : ` ${r.reason}`}`
  const text = `${first}\r\n${lines.map(([n, v, ows]) => `${n}:${ows}${v}${ows}\r\n`).join('')}\r\n`
  return { text, names: lines.map((l) => l[0]), values: lines.map((l) => l[1]) }
}

test('a valid response head parses back, with the framing RFC 9112 6.3 gives it', () => {
  check(
    fc.property(validResponse, (r) => {
      const { text, names, values } = serializeResponse(r)
      const buf = Buffer.from(text, 'latin1')
      const h = parseResponse(buf, headEnd(buf), r.method, limits)
      assert.equal(h.minor, r.minor)
      assert.equal(h.status, r.status)
      assert.equal(h.reason, r.reason ?? '')
      assert.deepEqual(h.fields.names, names)
      assert.deepEqual(h.fields.values, values)
      const bodiless = r.method === 'HEAD' || r.status < 200 || r.status === 204 || r.status === 304
      let body: string
      if (bodiless) body = 'none'
      else if (r.framing.kind === 'te') body = r.framing.codings.endsWith('chunked') ? 'chunked' : 'close'
      else if (r.framing.kind === 'length') body = r.framing.n === 0 ? 'none' : 'length'
      else body = 'close'
      assert.equal(h.body, body)
      assert.equal(h.length, body === 'length' && r.framing.kind === 'length' ? r.framing.n : 0)
    }),
    400,
  )
})

test('any bytes as a response head: a parsed head, or HeadError 502', () => {
  const bytes = fc.oneof(
    mutated(validResponse.map((r) => Buffer.from(serializeResponse(r).text, 'latin1'))),
    fc.uint8Array({ maxLength: 200 }).map((a) => Buffer.concat([Buffer.from(a), Buffer.from('\r\n\r\n')])),
  )
  check(
    fc.property(bytes, fc.constantFrom('GET', 'HEAD'), (buf, method) => {
      const end = headEnd(buf)
      if (end < 0) return
      const h = attempt(() => parseResponse(buf, end, method, limits), [502])
      if (typeof h === 'number') return
      assert.ok(h.status >= 100 && h.status <= 999)
      assert.ok(!/[\r\n]/.test(h.reason))
      for (const v of h.fields.values) assert.ok(!hasControl(v))
      if (h.body === 'length') assert.ok(h.length > 0)
      if (method === 'HEAD') assert.equal(h.body, 'none')
    }),
    1000,
  )
})

// --- Body framing --------------------------------------------------------------------------------

/** Feed `buf` to a framing in the given pieces; what it consumed, whether it finished, why it failed. */
function feed(f: Framing, buf: Buffer, cuts: number[]): { used: number; done: boolean; error: string } {
  const points = [...new Set(cuts.map((c) => c % (buf.length + 1)))].sort((a, b) => a - b)
  let used = 0
  let start = 0
  for (const end of [...points, buf.length]) {
    // Each call sees the bytes of its piece, from where the framing left off (as a socket delivers).
    const piece = buf.subarray(start, end)
    start = end
    if (f.done) break
    const n = f.take(piece, 0)
    // Where it failed within the bytes is not reported; that it failed, and why, is.
    if (n < 0) return { used: -1, done: false, error: f.error }
    assert.ok(n >= 0 && n <= piece.length, `take returned ${n} for ${piece.length} bytes`)
    used += n
    if (n < piece.length) {
      assert.ok(f.done, 'a framing that leaves bytes of a piece must be done')
      break
    }
  }
  return { used, done: f.done, error: '' }
}

const chunk = fc.record({
  data: fc.uint8Array({ minLength: 1, maxLength: 24 }),
  upper: fc.boolean(),
  zeros: fc.integer({ min: 0, max: 3 }),
  // chunk-ext = *( BWS ";" … ): whitespace after the size only before a ";" ("5 6" is refused).
  ext: fc.option(fc.stringMatching(/^[\t ]{0,2};[!-~ \t]{0,10}$/)),
})
const validChunked = fc.record({
  chunks: fc.array(chunk, { maxLength: 5 }),
  lastZeros: fc.integer({ min: 0, max: 3 }),
  lastExt: fc.option(fc.stringMatching(/^;[!-~]{0,8}$/)),
  trailers: fc.array(fc.tuple(token, fieldValue), { maxLength: 3 }),
  after: fc.uint8Array({ maxLength: 12 }),
})

function serializeChunked(c: typeof validChunked extends fc.Arbitrary<infer T> ? T : never): {
  body: Buffer
  data: Buffer
} {
  const parts: Buffer[] = []
  for (const ch of c.chunks) {
    let size = ch.data.length.toString(16)
    if (ch.upper) size = size.toUpperCase()
    parts.push(Buffer.from(`${'0'.repeat(ch.zeros)}${size}${ch.ext ?? ''}\r\n`), Buffer.from(ch.data))
    parts.push(Buffer.from('\r\n'))
  }
  parts.push(Buffer.from(`${'0'.repeat(c.lastZeros + 1)}${c.lastExt ?? ''}\r\n`))
  for (const [n, v] of c.trailers) parts.push(Buffer.from(`${n}: ${v}\r\n`, 'latin1'))
  parts.push(Buffer.from('\r\n'))
  return { body: Buffer.concat(parts), data: Buffer.concat(c.chunks.map((ch) => Buffer.from(ch.data))) }
}

test('a valid chunked body, in any pieces, is consumed exactly to its end', () => {
  check(
    fc.property(validChunked, fc.array(fc.nat(), { maxLength: 6 }), (c, cuts) => {
      const { body } = serializeChunked(c)
      const buf = Buffer.concat([body, Buffer.from(c.after)])
      const r = feed(new ChunkedFraming(), buf, cuts)
      assert.equal(r.error, '')
      assert.equal(r.done, true)
      assert.equal(r.used, body.length)
    }),
    500,
  )
})

/** Chunked-looking bytes: valid bodies with edits, sizes near the digit limit, or raw noise. */
const chunkedBytes = fc.oneof(
  mutated(validChunked.map((c) => serializeChunked(c).body)),
  fc
    .array(
      fc.constantFrom(
        '0',
        'f',
        'FFFFFFFFFFFF',
        '1000000000000',
        '\r\n',
        '\n',
        '\r',
        ';x',
        ' ',
        'abc',
        ':',
        '\0',
      ),
      { maxLength: 12 },
    )
    .map((p) => Buffer.from(p.join(''))),
  fc.uint8Array({ maxLength: 64 }).map((a) => Buffer.from(a)),
)

test('chunked framing of any bytes: the same verdict however the bytes are split, never a throw', () => {
  check(
    fc.property(
      chunkedBytes,
      fc.array(fc.nat(), { maxLength: 6 }),
      fc.integer({ min: 4, max: 64 }),
      (buf, cuts, maxLine) => {
        const whole = feed(new ChunkedFraming(maxLine), buf, [])
        const split = feed(new ChunkedFraming(maxLine), buf, cuts)
        assert.deepEqual(split, whole)
        if (whole.error) assert.ok(whole.error.length > 0)
      },
    ),
    1500,
  )
})

test('length framing takes exactly its length, however the bytes arrive', () => {
  check(
    fc.property(
      fc.nat({ max: 64 }),
      fc.uint8Array({ maxLength: 96 }),
      fc.array(fc.nat(), { maxLength: 5 }),
      (n, bytes, cuts) => {
        const r = feed(new LengthFraming(n), Buffer.from(bytes), cuts)
        assert.equal(r.used, Math.min(n, bytes.length))
        assert.equal(r.done, bytes.length >= n)
      },
    ),
  )
})
