// Dial one target: resolve through the DNS cache, then try its addresses in order, each within the
// connect timeout; optionally PostgreSQL's SSLRequest and a TLS handshake on top. Failures come
// back as ConnectError with a reason (refused, timeout, unresolvable, tls, …).

import { readFileSync } from 'node:fs'
import { connect, isIP, type Socket } from 'node:net'
import {
  type ConnectionOptions,
  createSecureContext,
  getCACertificates,
  type SecureContext,
  type TLSSocket,
  connect as tlsConnect,
} from 'node:tls'
import { ConnectError, connectReason } from '../errors.ts'
import type { DnsCache } from './dns.ts'

export interface DialTls {
  /** SNI and the name the certificate must carry; null: none (IP targets). */
  servername: string | null
  secureContext: SecureContext
  insecure: boolean
}

export interface DialTarget {
  host: string
  port: number
  key: string
}

export interface DialOptions {
  /** Time allowed for one address, TLS handshake included (ms). */
  timeout: number
  dns: DnsCache
  noDelay?: boolean
  keepAlive?: number | false
  tls?: DialTls | null
  /** Before TLS: send PostgreSQL's SSLRequest and expect 'S'. */
  starttls?: 'postgres' | null
  /** Called with the socket being connected, so a caller can destroy it to cancel. */
  onAttempt?: (socket: Socket) => void
}

/** Connect to a target; resolves with a connected socket (allowHalfOpen) or rejects ConnectError. */
export function dial(target: DialTarget, opts: DialOptions): Promise<Socket> {
  let resolved: string[] | Promise<string[]>
  try {
    resolved = opts.dns.resolve(target.host)
  } catch (err) {
    return Promise.reject(err)
  }
  if (Array.isArray(resolved) && resolved.length === 1) return connectOne(resolved[0]!, target, opts)
  return Promise.resolve(resolved).then(
    (addresses) => connectAny(addresses, target, opts),
    (err) => {
      throw err instanceof ConnectError
        ? new ConnectError(err.reason, target.key, err.message, { cause: err })
        : err
    },
  )
}

async function connectAny(addresses: string[], target: DialTarget, opts: DialOptions): Promise<Socket> {
  let last: unknown
  for (const address of addresses) {
    try {
      return await connectOne(address, target, opts)
    } catch (err) {
      last = err
      if ((err as { cancelled?: boolean }).cancelled) throw err
      // A TLS failure is about the target, not the address: trying its other addresses will not help.
      if ((err as ConnectError).reason === 'tls') throw err
    }
  }
  throw last
}

const SSL_REQUEST = Buffer.from([0, 0, 0, 8, 0x04, 0xd2, 0x16, 0x2f])

function connectOne(address: string, target: DialTarget, opts: DialOptions): Promise<Socket> {
  return new Promise((resolve, reject) => {
    const socket = connect({
      host: address,
      port: target.port,
      allowHalfOpen: true,
      noDelay: opts.noDelay ?? true,
    })
    const started = performance.now()
    let secure: TLSSocket | null = null
    let settled = false
    const fail = (err: Error) => {
      if (settled) return
      settled = true
      socket.removeListener('connect', onConnect)
      secure?.destroy()
      socket.destroy()
      if (err instanceof ConnectError) return reject(err)
      const reason = connectReason(err)
      const code = (err as NodeJS.ErrnoException).code
      const via = address === target.host ? '' : ` (${address})`
      const detail = `${reason === 'refused' ? 'connection refused' : (code ?? err.message)}${via}`
      reject(new ConnectError(reason, target.key, detail, { cause: err }))
    }
    const tlsFail = (err: Error) => {
      const code = (err as NodeJS.ErrnoException).code
      fail(
        new ConnectError(
          'tls',
          target.key,
          `TLS handshake failed: ${code ? `${code}: ` : ''}${err.message}`,
          { cause: err },
        ),
      )
    }
    const done = (s: Socket) => {
      if (settled) return
      settled = true
      socket.setTimeout(0)
      socket.removeListener('timeout', onTimeout)
      socket.removeListener('error', fail)
      socket.removeListener('close', onClose)
      if (opts.keepAlive) socket.setKeepAlive(true, opts.keepAlive)
      ;(s as Socket & { connectMs?: number }).connectMs = performance.now() - started
      resolve(s)
    }
    const startTls = () => {
      const t = opts.tls!
      secure = tlsConnect({
        socket,
        servername: t.servername ?? undefined,
        secureContext: t.secureContext,
        rejectUnauthorized: !t.insecure,
        allowHalfOpen: true,
      } as ConnectionOptions)
      secure.once('secureConnect', () => {
        secure!.removeListener('error', tlsFail)
        done(secure!)
      })
      secure.once('error', tlsFail)
    }
    const onTimeout = () =>
      fail(new ConnectError('timeout', target.key, `no answer within ${opts.timeout}ms`))
    const onClose = () =>
      fail(
        settled
          ? new Error('closed')
          : Object.assign(new ConnectError('error', target.key, 'cancelled'), { cancelled: true }),
      )
    const onConnect = () => {
      if (!opts.tls) return done(socket)
      if (opts.starttls !== 'postgres') return startTls()
      socket.write(SSL_REQUEST)
      socket.once('data', (d: Buffer) => {
        if (d[0] === 0x53 /* S */ && d.length === 1) startTls()
        else
          fail(new ConnectError('tls', target.key, "the PostgreSQL server refused SSLRequest (answered 'N')"))
      })
    }
    socket.setTimeout(opts.timeout, onTimeout)
    socket.once('connect', onConnect)
    socket.once('error', fail)
    socket.once('close', onClose)
    opts.onAttempt?.(socket)
  })
}

/** Milliseconds the last successful connect of `socket` took (set by dial). */
export function connectTime(socket: Socket): number {
  return (socket as Socket & { connectMs?: number }).connectMs ?? 0
}

/**
 * TLS settings towards `host`: the system CAs plus `caFile` (PEM). An unreadable CA file is
 * reported through `onCaError` and the system CAs still apply.
 */
export function dialTls(
  tls: { servername: string | null; caFile: string | null; insecure: boolean },
  host: string,
  onCaError: (err: Error) => void,
): DialTls {
  const ca = [...getCACertificates('default')]
  if (tls.caFile) {
    try {
      ca.push(readFileSync(tls.caFile, 'utf8'))
    } catch (err) {
      onCaError(err as Error)
    }
  }
  return {
    servername: tls.servername ?? sniFor(host),
    secureContext: createSecureContext({ ca }),
    insecure: tls.insecure,
  }
}

/** The name to send as SNI for a host: the name itself, none for an IP address. */
export function sniFor(host: string): string | null {
  return isIP(host) ? null : host
}

/** Reset a socket (RST); TLS sockets reset their underlying TCP socket. */
export function resetSocket(s: Socket): void {
  if (s.destroyed) return
  try {
    s.resetAndDestroy()
  } catch {
    const raw = (s as Socket & { _parent?: Socket | null })._parent
    if (raw && !raw.destroyed) {
      try {
        raw.resetAndDestroy()
      } catch {}
    }
    s.destroy()
  }
}
