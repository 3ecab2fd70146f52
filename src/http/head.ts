// Strict HTTP/1.1 message heads, parsed from raw bytes: the request line or status line and the
// header fields, as written (names keep their case, duplicates and order are kept). Framing is
// decided here, so that request smuggling (conflicting Content-Length / Transfer-Encoding) is
// refused before anything is forwarded. Pure functions: no sockets.

import { hasControl } from '../config/text.ts'

// The fuzz tests and others read it from here, beside the parser that uses it.
export { hasControl }

/** Where the head ends in `buf` (the index after CRLFCRLF), or -1; `from` skips bytes already searched. */
export function headEnd(buf: Buffer, from = 0): number {
  const i = buf.indexOf('\r\n\r\n', from > 3 ? from - 3 : 0, 'latin1')
  return i < 0 ? -1 : i + 4
}

/** Header fields in order, names as written; `lower` holds the names lower-cased. */
export interface Fields {
  names: string[]
  lower: string[]
  values: string[]
}

export type BodyKind = 'none' | 'length' | 'chunked' | 'close'

export interface RequestHead {
  method: string
  target: string
  /** 0 for HTTP/1.0, 1 for HTTP/1.1. */
  minor: number
  fields: Fields
  body: BodyKind
  length: number
  /** The client wants the connection kept open after this exchange. */
  keepAlive: boolean
  /** The protocol named in `Upgrade` when `Connection: upgrade` asks for it, else null. */
  upgrade: string | null
  /** The value of Host (the first, there must be one in HTTP/1.1), or null. */
  host: string | null
}

export interface ResponseHead {
  minor: number
  status: number
  reason: string
  fields: Fields
  body: BodyKind
  length: number
  keepAlive: boolean
}

/** Why a head was refused: the status to answer (400, 431, 501; 502 for a response) and a reason. */
export class HeadError extends Error {
  readonly status: number
  constructor(status: number, message: string) {
    super(message)
    this.status = status
  }
}

export interface HeadLimits {
  /** Bytes in the whole head, request line included. */
  maxHeaderSize: number
  maxHeaders: number
}

const TOKEN = /^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$/
const REQUEST_LINE = /^([!#$%&'*+\-.^_`|~0-9A-Za-z]+) ([!-~]+) HTTP\/1\.([01])$/
const STATUS_LINE = /^HTTP\/1\.([01]) ([1-9]\d\d)(?: ([^\r\n]*))?$/
const DIGITS = /^\d{1,15}$/

/**
 * `text` without the optional whitespace (OWS: space and tab, RFC 9110 5.6.3) at its ends. Not
 * String.trim(), which also strips NBSP (0xA0 read as latin1), VT and FF: a value would lose bytes
 * the client sent, or a Content-Length or Transfer-Encoding read differently upstream.
 */
export function trimOws(text: string): string {
  let start = 0
  let end = text.length
  while (start < end && (text.charCodeAt(start) === 32 || text.charCodeAt(start) === 9)) start++
  while (end > start && (text.charCodeAt(end - 1) === 32 || text.charCodeAt(end - 1) === 9)) end--
  return start === 0 && end === text.length ? text : text.slice(start, end)
}

/** Split a head (through its final CRLFCRLF) into its first line and fields; throws HeadError(`status`). */
function splitHead(text: string, maxHeaders: number, status: number): { first: string; fields: Fields } {
  const lines = text.split('\r\n')
  // lines ends with two empty strings (the final CRLFCRLF).
  const count = lines.length - 2
  if (count - 1 > maxHeaders)
    throw new HeadError(status === 400 ? 431 : status, `more than ${maxHeaders} header fields`)
  const fields: Fields = { names: [], lower: [], values: [] }
  for (let i = 1; i < count; i++) {
    const line = lines[i]!
    const colon = line.indexOf(':')
    if (colon <= 0) {
      const c = line.charCodeAt(0)
      if (c === 32 || c === 9) throw new HeadError(status, 'obsolete line folding in a header field')
      throw new HeadError(status, `header field without a colon: ${JSON.stringify(line.slice(0, 40))}`)
    }
    const name = line.slice(0, colon)
    if (!TOKEN.test(name))
      throw new HeadError(status, `invalid header name ${JSON.stringify(name.slice(0, 40))}`)
    const value = trimOws(line.slice(colon + 1))
    if (hasControl(value)) throw new HeadError(status, `invalid character in the value of ${name}`)
    fields.names.push(name)
    fields.lower.push(name.toLowerCase())
    fields.values.push(value)
  }
  return { first: lines[0]!, fields }
}

/** The values of every field named `lower`, joined with ", " (null when absent). */
export function getField(f: Fields, lower: string): string | null {
  let out: string | null = null
  for (let i = 0; i < f.lower.length; i++)
    if (f.lower[i] === lower) out = out === null ? f.values[i]! : `${out}, ${f.values[i]}`
  return out
}

/** Comma-separated tokens of a field value, lower-cased. */
export function tokens(value: string | null): string[] {
  if (!value) return []
  return value
    .split(',')
    .map((t) => trimOws(t).toLowerCase())
    .filter(Boolean)
}

/** Content-Length: every value (repeated fields, comma lists) must be the same number. */
function contentLength(f: Fields, status: number): number | null {
  let length: number | null = null
  for (let i = 0; i < f.lower.length; i++) {
    if (f.lower[i] !== 'content-length') continue
    for (const part of f.values[i]!.split(',')) {
      const v = trimOws(part)
      if (!DIGITS.test(v))
        throw new HeadError(status, `invalid Content-Length ${JSON.stringify(f.values[i])}`)
      const n = Number(v)
      if (length !== null && n !== length) throw new HeadError(status, 'conflicting Content-Length values')
      length = n
    }
  }
  return length
}

/** A request head over `max` bytes: 414 when the request line alone is (RFC 9112 3), else 431. */
export function tooLarge(buf: Buffer, max: number): HeadError {
  const eol = buf.indexOf(10)
  if (eol < 0 || eol > max) return new HeadError(414, `request line longer than ${max} bytes`)
  return new HeadError(431, `request head larger than ${max} bytes`)
}

/**
 * Where a bare LF (not after CR) is in `buf` from `from`, or -1. Heads end in CRLF lines only:
 * a recipient that took LF as a line end would read another head than sluice forwards.
 */
export function bareLf(buf: Buffer, from: number): number {
  let i = buf.indexOf(10, from)
  while (i >= 0) {
    if (i === 0 || buf[i - 1] !== 13) return i
    i = buf.indexOf(10, i + 1)
  }
  return -1
}

/** Parse a request head (`buf` up to `end`, from headEnd). Throws HeadError. */
export function parseRequest(buf: Buffer, end: number, limits: HeadLimits): RequestHead {
  if (end > limits.maxHeaderSize) throw tooLarge(buf, limits.maxHeaderSize)
  const { first, fields } = splitHead(buf.toString('latin1', 0, end), limits.maxHeaders, 400)
  // A bare CR or LF fails the request line pattern or the field value check.
  const m = REQUEST_LINE.exec(first)
  if (!m) throw new HeadError(400, `malformed request line ${JSON.stringify(first.slice(0, 60))}`)
  const minor = Number(m[3])
  const te = getField(fields, 'transfer-encoding')
  const length = contentLength(fields, 400)
  let body: BodyKind = 'none'
  let n = 0
  if (te !== null) {
    if (length !== null) throw new HeadError(400, 'both Content-Length and Transfer-Encoding')
    if (minor === 0) throw new HeadError(400, 'Transfer-Encoding in an HTTP/1.0 request')
    const codings = tokens(te)
    // RFC 9112 6.3: without chunked as the final coding the length cannot be known (400);
    // a coding applied before chunked is one sluice does not implement (501).
    if (codings[codings.length - 1] !== 'chunked')
      throw new HeadError(400, `Transfer-Encoding ${JSON.stringify(te)} does not end in chunked`)
    if (codings.indexOf('chunked') !== codings.length - 1)
      throw new HeadError(400, `chunked applied more than once in Transfer-Encoding ${JSON.stringify(te)}`)
    if (codings.length !== 1) throw new HeadError(501, `unsupported Transfer-Encoding ${JSON.stringify(te)}`)
    body = 'chunked'
  } else if (length !== null && length > 0) {
    body = 'length'
    n = length
  }
  let host: string | null = null
  let hosts = 0
  for (let i = 0; i < fields.lower.length; i++)
    if (fields.lower[i] === 'host') {
      hosts++
      host ??= fields.values[i]!
    }
  if (hosts > 1) throw new HeadError(400, 'more than one Host field')
  if (minor === 1 && hosts === 0) throw new HeadError(400, 'no Host field in an HTTP/1.1 request')
  const connection = tokens(getField(fields, 'connection'))
  const keepAlive = minor === 1 ? !connection.includes('close') : connection.includes('keep-alive')
  const upgradeValue = connection.includes('upgrade') ? getField(fields, 'upgrade') : null
  return {
    method: m[1]!,
    target: m[2]!,
    minor,
    fields,
    body,
    length: n,
    keepAlive,
    upgrade: upgradeValue,
    host,
  }
}

/** Parse a response head to a request with `method`. Throws HeadError(502). */
export function parseResponse(buf: Buffer, end: number, method: string, limits: HeadLimits): ResponseHead {
  if (end > limits.maxHeaderSize)
    throw new HeadError(502, `response head larger than ${limits.maxHeaderSize} bytes`)
  const { first, fields } = splitHead(buf.toString('latin1', 0, end), limits.maxHeaders * 2, 502)
  const m = STATUS_LINE.exec(first)
  if (!m) throw new HeadError(502, `malformed status line ${JSON.stringify(first.slice(0, 60))}`)
  const minor = Number(m[1])
  const status = Number(m[2])
  const connection = tokens(getField(fields, 'connection'))
  const keepAlive = minor === 1 ? !connection.includes('close') : connection.includes('keep-alive')
  let body: BodyKind
  let length = 0
  const te = getField(fields, 'transfer-encoding')
  if (method === 'HEAD' || status < 200 || status === 204 || status === 304) body = 'none'
  else if (te !== null) {
    // The final coding decides: chunked frames the body; anything else runs to the close.
    const codings = tokens(te)
    body = codings[codings.length - 1] === 'chunked' ? 'chunked' : 'close'
  } else {
    const n = contentLength(fields, 502)
    if (n === null) body = 'close'
    else if (n === 0) body = 'none'
    else {
      body = 'length'
      length = n
    }
  }
  return { minor, status, reason: m[3] ?? '', fields, body, length, keepAlive }
}

/** Whether `buf` (bytes after a complete request) can be the start of another request line. */
export function canStartRequest(buf: Buffer): boolean {
  let i = 0
  // Leading empty lines are allowed before a request line.
  while (i < buf.length && (buf[i] === 13 || buf[i] === 10)) i++
  let tokenLength = 0
  for (; i < buf.length; i++) {
    const c = buf[i]!
    if (c === 32) return tokenLength > 0
    if (!isTchar(c)) return false
    tokenLength++
  }
  return true
}

function isTchar(c: number): boolean {
  return (
    (c >= 48 && c <= 57) ||
    (c >= 65 && c <= 90) ||
    (c >= 97 && c <= 122) ||
    c === 33 ||
    (c >= 35 && c <= 39) ||
    c === 42 ||
    c === 43 ||
    c === 45 ||
    c === 46 ||
    c === 94 ||
    c === 95 ||
    c === 96 ||
    c === 124 ||
    c === 126
  )
}

/** Hop-by-hop fields (RFC 9110 7.6.1), never forwarded as such. Transfer-Encoding is handled apart. */
export const HOP_BY_HOP = new Set([
  'connection',
  'keep-alive',
  'proxy-connection',
  'te',
  'trailer',
  'upgrade',
])
