// Free ports for demos and tests. Ports come from below Linux's ephemeral range (32768+), so an
// outgoing connection cannot take a port between the check and the bind.
import { createServer } from 'node:net'

/** Whether `port` can be bound on `host` (and, for the wildcard, on IPv4 and IPv6 at once). */
export function portFree(port: number, host = '::'): Promise<boolean> {
  return new Promise((resolve) => {
    const s = createServer()
    s.once('error', () => resolve(false))
    s.listen({ port, host, ipv6Only: false }, () => s.close(() => resolve(true)))
  })
}

const taken = new Set<number>()

/** A port that is free on every interface now, from 20000-32767, not handed out before by this process. */
export async function freePort(): Promise<number> {
  for (let i = 0; i < 200; i++) {
    const port = 20000 + Math.floor(Math.random() * 12768)
    if (taken.has(port)) continue
    taken.add(port)
    if (await portFree(port)) return port
  }
  throw new Error('no free port found')
}

/** `preferred` when it is free on `host`, else another free port. */
export async function preferPort(preferred: number, host: string): Promise<number> {
  if (await portFree(preferred, host)) return preferred
  return freePort()
}
