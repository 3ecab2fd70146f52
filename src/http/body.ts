// Message body framing: how many of the bytes that arrive belong to the current body, so that the
// bytes themselves are forwarded untouched (chunked stays chunked) and the end of each message is
// known exactly. A small integer state machine over the incoming buffers; no copies.

/** Tracks one body. `take(buf, from)` returns how many bytes from `from` belong to it, or -1 if malformed. */
export interface Framing {
  readonly done: boolean
  take(buf: Buffer, from: number): number
  /** Why the last take() returned -1. */
  readonly error: string
}

/** A body of exactly `length` bytes. */
export class LengthFraming implements Framing {
  left: number
  error = ''
  constructor(length: number) {
    this.left = length
  }
  get done(): boolean {
    return this.left === 0
  }
  take(buf: Buffer, from: number): number {
    const n = Math.min(this.left, buf.length - from)
    this.left -= n
    return n
  }
}

/** A body that runs until the connection closes (responses only). */
export class CloseFraming implements Framing {
  readonly done = false
  error = ''
  take(buf: Buffer, from: number): number {
    return buf.length - from
  }
}

const SIZE = 0
const EXT = 1
const SIZE_LF = 2
const DATA = 3
const DATA_CR = 4
const DATA_LF = 5
const TRAILER_START = 6
const TRAILER_LINE = 7
const TRAILER_LF = 8
const LAST_LF = 9
const DONE = 10
const SIZE_BWS = 11
const TRAILER_VALUE = 12

/** tchar (RFC 9110 5.6.2) by byte. */
const TCHAR = new Uint8Array(256)
for (const c of "!#$%&'*+-.^_`|~") TCHAR[c.charCodeAt(0)] = 1
for (let c = 48; c <= 57; c++) TCHAR[c] = 1
for (let c = 65; c <= 90; c++) TCHAR[c] = 1
for (let c = 97; c <= 122; c++) TCHAR[c] = 1

/** A control character other than tab (NUL, CR, LF, DEL, …). */
const control = (c: number) => (c < 32 && c !== 9) || c === 127

/** Chunked transfer coding (RFC 9112 7.1): sizes, extensions, data, trailers. */
export class ChunkedFraming implements Framing {
  #state = SIZE
  #size = 0
  #digits = 0
  #left = 0
  #lineBytes = 0
  error = ''
  /** Longest chunk-size line or trailer line accepted. */
  readonly maxLine: number

  constructor(maxLine = 8192) {
    this.maxLine = maxLine
  }

  get done(): boolean {
    return this.#state === DONE
  }

  #fail(why: string): number {
    this.error = why
    return -1
  }

  take(buf: Buffer, from: number): number {
    let i = from
    const end = buf.length
    while (i < end && this.#state !== DONE) {
      switch (this.#state) {
        case DATA: {
          const n = Math.min(this.#left, end - i)
          this.#left -= n
          i += n
          if (this.#left === 0) this.#state = DATA_CR
          break
        }
        case SIZE: {
          const c = buf[i]!
          const d = hex(c)
          if (d >= 0) {
            if (++this.#digits > 12) return this.#fail('chunk size too large')
            this.#size = this.#size * 16 + d
          } else if (this.#digits === 0) {
            return this.#fail('chunk size expected')
          } else if (c === 13) this.#state = SIZE_LF
          else if (c === 59) {
            this.#state = EXT
            this.#lineBytes = 0
          } else if (c === 32 || c === 9) {
            // Whitespace after the size may only lead to an extension or the CRLF ("5 6" is refused).
            this.#state = SIZE_BWS
            this.#lineBytes = 0
          } else return this.#fail('invalid character in a chunk size')
          i++
          break
        }
        case SIZE_BWS: {
          const c = buf[i]!
          if (c === 59) this.#state = EXT
          else if (c === 13) this.#state = SIZE_LF
          else if (c !== 32 && c !== 9) return this.#fail('invalid character after a chunk size')
          else if (++this.#lineBytes > this.maxLine) return this.#fail('chunk extension too long')
          i++
          break
        }
        case EXT: {
          const c = buf[i]!
          if (c === 13) this.#state = SIZE_LF
          else if (control(c)) return this.#fail('invalid chunk extension')
          else if (++this.#lineBytes > this.maxLine) return this.#fail('chunk extension too long')
          i++
          break
        }
        case SIZE_LF: {
          if (buf[i] !== 10) return this.#fail('CRLF expected after the chunk size')
          i++
          if (this.#size === 0) {
            this.#state = TRAILER_START
          } else {
            this.#left = this.#size
            this.#state = DATA
          }
          this.#size = 0
          this.#digits = 0
          break
        }
        case DATA_CR: {
          if (buf[i] !== 13) return this.#fail('CRLF expected after chunk data')
          i++
          this.#state = DATA_LF
          break
        }
        case DATA_LF: {
          if (buf[i] !== 10) return this.#fail('CRLF expected after chunk data')
          i++
          this.#state = SIZE
          break
        }
        case TRAILER_START: {
          const c = buf[i]!
          i++
          if (c === 13) this.#state = LAST_LF
          else if (c === 10) return this.#fail('bare LF in the trailer section')
          else if (TCHAR[c] !== 1) return this.#fail('invalid trailer field name')
          else {
            this.#state = TRAILER_LINE
            this.#lineBytes = 1
          }
          break
        }
        case TRAILER_LINE: {
          // The field name, up to its colon.
          const c = buf[i]!
          i++
          if (c === 58) this.#state = TRAILER_VALUE
          else if (TCHAR[c] !== 1) return this.#fail('invalid trailer field name')
          else if (++this.#lineBytes > this.maxLine) return this.#fail('trailer field too long')
          break
        }
        case TRAILER_VALUE: {
          const c = buf[i]!
          i++
          if (c === 13) this.#state = TRAILER_LF
          else if (control(c)) return this.#fail('invalid character in a trailer field')
          else if (++this.#lineBytes > this.maxLine) return this.#fail('trailer field too long')
          break
        }
        case TRAILER_LF: {
          if (buf[i] !== 10) return this.#fail('CRLF expected after a trailer field')
          i++
          this.#state = TRAILER_START
          break
        }
        case LAST_LF: {
          if (buf[i] !== 10) return this.#fail('CRLF expected at the end of the chunked body')
          i++
          this.#state = DONE
          break
        }
      }
    }
    return i - from
  }
}

function hex(c: number): number {
  if (c >= 48 && c <= 57) return c - 48
  if (c >= 97 && c <= 102) return c - 87
  if (c >= 65 && c <= 70) return c - 55
  return -1
}

/** The framing for a body kind. */
export function framing(kind: 'none' | 'length' | 'chunked' | 'close', length: number): Framing {
  if (kind === 'chunked') return new ChunkedFraming()
  if (kind === 'close') return new CloseFraming()
  return new LengthFraming(kind === 'length' ? length : 0)
}
