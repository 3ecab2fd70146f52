// Every error sluice throws or reports: one base class, one stable `code` per failure.
// Users match on `code`, never on the message. docs/errors.md lists each code.

/**
 * Every code, declared once: what it means and, where sluice answers HTTP with it, the status.
 * docs/errors.md has a row for each (test/docs/docs.test.ts checks both ways).
 */
export const registry = {
  ERR_USAGE: { meaning: 'a command line argument is missing or invalid' },
  ERR_CONFIG_NOT_FOUND: { meaning: 'the config file does not exist' },
  ERR_CONFIG_READ: { meaning: 'the config file could not be read' },
  ERR_CONFIG_PARSE: { meaning: 'the config file is not valid YAML, JSON or TOML', status: 400 },
  ERR_CONFIG_INVALID: { meaning: 'the config file parsed but a field is wrong', status: 400 },
  ERR_LISTEN: { meaning: 'a listen address could not be bound', status: 500 },
  ERR_RELOAD: { meaning: 'a valid config could not be applied; the previous one stays in force' },
  ERR_CONNECT_REFUSED: { meaning: 'a target refused the connection' },
  ERR_CONNECT_TIMEOUT: { meaning: 'a target did not accept the connection within connect_timeout' },
  ERR_DNS: { meaning: 'a target host name did not resolve' },
  ERR_CONNECT: { meaning: 'a target could not be reached for another reason (unreachable, reset, …)' },
  ERR_UPSTREAM_TLS: {
    meaning: 'the TLS handshake with a target failed (untrusted certificate, wrong name, refused SSLRequest)',
  },
  ERR_NO_TARGET: { meaning: 'every target of an app failed or the connect budget was spent' },
  ERR_TARGET_DOWN: {
    meaning: 'a target failed its active health checks and is out of rotation until they pass',
  },
  ERR_MAX_CONNECTIONS: { meaning: 'a client was reset: its app already had max_connections open' },
  ERR_DRAIN_TIMEOUT: { meaning: 'connections still open at the drain deadline were closed' },
  ERR_CONFIG_WATCH: {
    meaning: 'the config file cannot be watched; SIGHUP (and the 2 s poll) still reload it',
  },
  ERR_NOTIFY: { meaning: 'a message to systemd (NOTIFY_SOCKET) could not be sent' },
  ERR_TARGET_EJECTED: {
    meaning: 'a target failed its connects often enough to be taken out of rotation for a cooldown',
  },
  ERR_ADMIN_UNAUTHORIZED: { meaning: 'an admin API call lacked the bearer token', status: 401 },
  ERR_BAD_REQUEST: {
    meaning: 'an admin API request body is not valid JSON or lacks a required field',
    status: 400,
  },
  ERR_FAULT_INVALID: { meaning: 'a fault given through an API or the command line is invalid', status: 400 },
  ERR_NOT_FOUND: {
    meaning: 'an admin API call named an app, proxy or fault that does not exist',
    status: 404,
  },
  ERR_CONFLICT: {
    meaning: 'an admin API call would create something that exists, or change what the config file owns',
    status: 409,
  },
  ERR_INTERNAL: {
    meaning: 'an unexpected failure inside sluice (a bug); the admin API answers 500 with it',
    status: 500,
  },
  ERR_HTTP_BAD_REQUEST: {
    meaning: 'an http app refused a malformed request (400) and closed the connection',
    status: 400,
  },
  ERR_HTTP_HEAD_TOO_LARGE: {
    meaning:
      'an http app refused a request head over its size or field limits (431; 414 for the request line)',
    status: 431,
  },
  ERR_HTTP_CLIENT_TIMEOUT: {
    meaning: "a client's request head or body did not arrive in time (408)",
    status: 408,
  },
  ERR_HTTP_METHOD: { meaning: 'an http app refused a method it does not serve, CONNECT (405)', status: 405 },
  ERR_HTTP_NOT_IMPLEMENTED: {
    meaning: 'an http app refused a transfer coding it does not implement (501)',
    status: 501,
  },
  ERR_HTTP_UPSTREAM_CONNECT: { meaning: 'an http destination could not be reached (502)', status: 502 },
  ERR_HTTP_UPSTREAM_BAD_RESPONSE: {
    meaning: 'an http destination answered something that is not a valid response (502)',
    status: 502,
  },
  ERR_HTTP_UPSTREAM_TIMEOUT: {
    meaning: 'an http destination did not answer within the upstream timeout (504)',
    status: 504,
  },
  ERR_HTTP_RESPONSE_ABORTED: {
    meaning:
      'a response already under way was cut (the destination closed, stalled or broke framing); the client connection was closed',
  },
  ERR_HTTP_CLIENT_ABORTED: {
    meaning: 'the client left while its request was in flight; the upstream exchange was aborted',
  },
  ERR_TUNNEL_BAD_REQUEST: {
    meaning:
      'the tunnel client refused a request it cannot carry (400: no Host, absolute-form target, Transfer-Encoding)',
    status: 400,
  },
  ERR_TUNNEL_CLIENT_TIMEOUT: {
    meaning: "the tunnel client's request head from A did not arrive within timeouts.header (408)",
    status: 408,
  },
  ERR_TUNNEL_HEAD_TOO_LARGE: {
    meaning: 'the tunnel client refused a request head larger than it accepts (431)',
    status: 431,
  },
  ERR_TUNNEL_DOWN: { meaning: 'no tunnel session to the peer is up (503)', status: 503 },
  ERR_TUNNEL_STREAM: { meaning: 'the tunnel stream failed or ended before a response (502)', status: 502 },
  ERR_TUNNEL_TIMEOUT: {
    meaning: 'no response came through the tunnel within request_timeout (504)',
    status: 504,
  },
  ERR_TUNNEL_SESSION: {
    meaning: 'a tunnel session to the peer failed (TLS, refused, closed); the client reconnects',
  },
  ERR_TUNNEL_UNSUPPORTED: {
    meaning:
      'the tunnel does not carry this kind of request (405 for CONNECT, 501 for an upgrade other than WebSocket)',
  },
  ERR_TUNNEL_ORIGIN: {
    meaning: 'the tunnel server could not reach the origin, or its connection failed (502)',
    status: 502,
  },
  ERR_TUNNEL_ORIGIN_TIMEOUT: {
    meaning: 'the origin sent no response head within request_timeout (504 from the tunnel server)',
    status: 504,
  },
  ERR_TUNNEL_PEER_REFUSED: {
    meaning:
      'the tunnel server refused a session: client certificate missing, expired, untrusted or naming another peer',
  },
  ERR_TUNNEL_CERT: {
    meaning: "a tunnel's certificate, key or CA file is missing, unreadable or not valid PEM",
  },
} as const satisfies Record<string, { meaning: string; status?: number }>

/** Each code's meaning. */
export const codes = Object.fromEntries(
  Object.entries(registry).map(([code, e]) => [code, e.meaning]),
) as Record<keyof typeof registry, string>

export type ErrorCode = keyof typeof registry

/** The HTTP status sluice answers with for `code`, where it answers HTTP with it. */
export function httpStatus(code: string): number | undefined {
  const e = (registry as Record<string, { status?: number }>)[code]
  return e?.status
}

/** Base of every sluice error. */
export class SluiceError extends Error {
  readonly code: ErrorCode

  constructor(code: ErrorCode, message: string, options?: { cause?: unknown }) {
    super(message, options)
    this.code = code
    this.name = 'SluiceError'
  }
}

/** One problem in a config: where (file, field path, line) and why. */
export interface ConfigIssue {
  path: string
  message: string
  line?: number
  /** Set where a caller must tell this problem apart (a port two apps want: ERR_LISTEN). */
  code?: ErrorCode
}

/** A config that could not be loaded; carries every issue found, each with its field path. */
export class ConfigError extends SluiceError {
  readonly file: string
  readonly issues: ConfigIssue[]

  constructor(
    code:
      | 'ERR_CONFIG_NOT_FOUND'
      | 'ERR_CONFIG_READ'
      | 'ERR_CONFIG_PARSE'
      | 'ERR_CONFIG_INVALID'
      | 'ERR_TUNNEL_CERT',
    file: string,
    issues: ConfigIssue[],
    options?: { cause?: unknown },
  ) {
    super(code, formatIssues(file, issues), options)
    this.name = 'ConfigError'
    this.file = file
    this.issues = issues
  }
}

function formatIssues(file: string, issues: ConfigIssue[]): string {
  const lines = issues.map((i) => {
    const where = i.line ? `${file}:${i.line}` : file
    return i.path ? `${where}: ${i.path}: ${i.message}` : `${where}: ${i.message}`
  })
  return lines.length === 1 ? lines[0]! : `${issues.length} problems:\n  ${lines.join('\n  ')}`
}

/** Why one dial attempt failed, in the words metrics and logs use. */
export type ConnectReason = 'refused' | 'timeout' | 'unresolvable' | 'unreachable' | 'reset' | 'tls' | 'error'

/** A failed attempt to connect to one target. */
export class ConnectError extends SluiceError {
  readonly reason: ConnectReason
  readonly target: string
  /** The message without the target (log lines carry the target in a field of its own). */
  readonly detail: string

  constructor(reason: ConnectReason, target: string, detail: string, options?: { cause?: unknown }) {
    super(reasonCode(reason), `${target}: ${detail}`, options)
    this.name = 'ConnectError'
    this.reason = reason
    this.target = target
    this.detail = detail
  }
}

/** The code of a connect failure's reason. */
export function reasonCode(reason: ConnectReason): ErrorCode {
  if (reason === 'refused') return 'ERR_CONNECT_REFUSED'
  if (reason === 'timeout') return 'ERR_CONNECT_TIMEOUT'
  if (reason === 'unresolvable') return 'ERR_DNS'
  if (reason === 'tls') return 'ERR_UPSTREAM_TLS'
  return 'ERR_CONNECT'
}

/** Classify a socket or DNS error into a ConnectReason. */
export function connectReason(err: unknown): ConnectReason {
  const code = (err as NodeJS.ErrnoException | undefined)?.code
  switch (code) {
    case 'ECONNREFUSED':
      return 'refused'
    case 'ETIMEDOUT':
    case 'ERR_CONNECT_TIMEOUT':
      return 'timeout'
    case 'ENOTFOUND':
    case 'EAI_AGAIN':
    case 'EAI_FAIL':
    case 'ENODATA':
    case 'ESERVFAIL':
    case 'ERR_DNS':
      return 'unresolvable'
    case 'EHOSTUNREACH':
    case 'ENETUNREACH':
    case 'EADDRNOTAVAIL':
      return 'unreachable'
    case 'ECONNRESET':
    case 'EPIPE':
      return 'reset'
    default:
      return 'error'
  }
}
