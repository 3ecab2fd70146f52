// Bind a listening TCP socket. A port without a host binds every interface: IPv6 `::` in dual-stack
// mode, or 0.0.0.0 where the machine has no IPv6.
import { createServer, type Server, type Socket } from 'node:net'
import type { ListenAddress } from '../config/address.ts'
import { SluiceError } from '../errors.ts'

export interface ListenOptions {
  backlog?: number
  reusePort?: boolean
  /** Errors after the socket is bound (accept failures): reported here instead of crashing. */
  onError?: (err: Error) => void
}

/** Bind `address`; resolves once listening, or rejects with ERR_LISTEN naming the address. */
export async function listen(
  address: ListenAddress,
  onConnection: (socket: Socket) => void,
  opts: ListenOptions = {},
): Promise<Server> {
  const hosts = address.host === null ? ['::', '0.0.0.0'] : [address.host]
  let last: NodeJS.ErrnoException | undefined
  for (const host of hosts) {
    try {
      return await bind(host, address.port, onConnection, opts)
    } catch (err) {
      last = err as NodeJS.ErrnoException
      // Only a missing IPv6 stack makes the IPv4 fallback worth trying.
      if (last.code !== 'EAFNOSUPPORT' && last.code !== 'EADDRNOTAVAIL') break
    }
  }
  const why =
    last?.code === 'EADDRINUSE'
      ? 'the address is already in use'
      : last?.code === 'EACCES'
        ? 'permission denied (ports below 1024 need privileges)'
        : last?.code === 'EADDRNOTAVAIL'
          ? 'no such local address'
          : (last?.message ?? 'unknown error')
  throw new SluiceError('ERR_LISTEN', `cannot listen on ${address.key}: ${why}`, { cause: last })
}

function bind(
  host: string,
  port: number,
  onConnection: (socket: Socket) => void,
  opts: ListenOptions,
): Promise<Server> {
  return new Promise((resolve, reject) => {
    const server = createServer({ allowHalfOpen: true, pauseOnConnect: false }, onConnection)
    const onError = (err: Error) => {
      server.close()
      reject(err)
    }
    server.once('error', onError)
    server.listen(
      { host, port, backlog: opts.backlog ?? 4096, ipv6Only: false, reusePort: opts.reusePort },
      () => {
        server.removeListener('error', onError)
        // An 'error' with no listener would end the process; a failed accept must not.
        server.on('error', opts.onError ?? (() => {}))
        resolve(server)
      },
    )
  })
}

/** A port free on `host` now, chosen by the kernel (for "port 0" requests that must stay fixed). */
export function ephemeralPort(host: string): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = createServer()
    s.once('error', (err) =>
      reject(
        new SluiceError('ERR_LISTEN', `cannot listen on ${host}: ${(err as Error).message}`, { cause: err }),
      ),
    )
    s.listen({ host, port: 0, ipv6Only: false }, () => {
      const port = (s.address() as { port: number }).port
      s.close(() => resolve(port))
    })
  })
}
