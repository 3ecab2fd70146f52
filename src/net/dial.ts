// Dial one target: resolve through the DNS cache, then try its addresses in order, each within the
// connect timeout. Failures come back as ConnectError with a reason (refused, timeout, …).
import { connect, type Socket } from 'node:net'
import { ConnectError, connectReason } from '../errors.ts'
import type { DnsCache } from './dns.ts'

export interface DialTarget {
  host: string
  port: number
  key: string
}

export interface DialOptions {
  /** Time allowed for one address (ms). */
  timeout: number
  dns: DnsCache
  noDelay?: boolean
  keepAlive?: number | false
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
    }
  }
  throw last
}

function connectOne(address: string, target: DialTarget, opts: DialOptions): Promise<Socket> {
  return new Promise((resolve, reject) => {
    const socket = connect({
      host: address,
      port: target.port,
      allowHalfOpen: true,
      noDelay: opts.noDelay ?? true,
    })
    const started = performance.now()
    const fail = (err: Error) => {
      socket.removeListener('connect', onConnect)
      socket.destroy()
      if (err instanceof ConnectError) return reject(err)
      const reason = connectReason(err)
      const code = (err as NodeJS.ErrnoException).code
      const via = address === target.host ? '' : ` (${address})`
      const detail = `${reason === 'refused' ? 'connection refused' : (code ?? err.message)}${via}`
      reject(new ConnectError(reason, target.key, detail, { cause: err }))
    }
    const onTimeout = () =>
      fail(new ConnectError('timeout', target.key, `no answer within ${opts.timeout}ms`))
    const onClose = () =>
      fail(Object.assign(new ConnectError('error', target.key, 'cancelled'), { cancelled: true }))
    const onConnect = () => {
      socket.setTimeout(0)
      socket.removeListener('timeout', onTimeout)
      socket.removeListener('error', fail)
      socket.removeListener('close', onClose)
      if (opts.keepAlive) socket.setKeepAlive(true, opts.keepAlive)
      ;(socket as Socket & { connectMs?: number }).connectMs = performance.now() - started
      resolve(socket)
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
