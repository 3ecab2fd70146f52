// Shared by the tunnel acceptance files: certificates made with openssl, a recording node:http
// origin as service B, config pairs (client + server in sluice's format, ports chosen here), curl
// and raw-socket helpers, and a receiver for systemd notify messages (python3: Node cannot).
import { type ChildProcess, spawn } from 'node:child_process'
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http'
import { connect } from 'node:net'
import { freePort } from '../../src/testkit/ports.ts'
import { curl, type SluiceProcess, type testScope, waitFor } from '../helpers.ts'
import { type Cert, makeCa, makeCert } from '../tls-certs.ts'

export interface Seen {
  method: string
  url: string
  headers: IncomingMessage['headers']
  raw: string[]
  body: string
}

export interface PairOpts {
  originPort: number
  clientCert?: Cert
  clientCa?: string
  serverCert?: Cert
  clientPeerHostname?: string
  serverPeerHostname?: string
  client?: string
  server?: string
  transport?: string
  serverTransport?: string
  env?: Record<string, string>
}

/** Wait until a GET through the tunnel answers `status`. */
export async function until(url: string, status: number, timeoutMs: number) {
  return waitFor(
    async () => {
      const r = await curl([url])
      return r.status === status ? r : undefined
    },
    `status ${status} from ${url}`,
    timeoutMs,
  )
}

/** A raw HTTP/1.1 exchange on a fresh connection: what came back, until the server closes or `ms`. */
export function raw(port: number, text: string, ms = 3000): Promise<string> {
  return new Promise((resolve) => {
    const s = connect(port, '127.0.0.1')
    let out = ''
    s.setEncoding('latin1')
    s.on('data', (d: string) => (out += d))
    s.on('error', () => resolve(out))
    s.on('close', () => resolve(out))
    s.write(text)
    setTimeout(() => {
      s.destroy()
      resolve(out)
    }, ms)
  })
}

/** The helpers of one test file, releasing what they start through its scope `t`. */
export function tunnelKit(t: ReturnType<typeof testScope>) {
  const dir = t.tmp.dir
  const ca = makeCa(dir, 'tca')
  const otherCa = makeCa(dir, 'tother')
  const clientCert = makeCert(dir, ca, 'tclient', {
    cn: 'foo.example.org',
    dns: ['foo.example.org'],
    client: true,
  })
  const serverCert = makeCert(dir, ca, 'tserver', { cn: 'bar.example.org', dns: ['bar.example.org'] })

  /** Service B: records each request; `handler` answers (default: 200 "ok"). */
  async function origin(handler?: (req: IncomingMessage, res: ServerResponse, body: string) => void) {
    const seen: Seen[] = []
    const server = createServer((req, res) => {
      let body = ''
      req.setEncoding('latin1')
      req.on('data', (d: string) => (body += d))
      req.on('end', () => {
        seen.push({ method: req.method!, url: req.url!, headers: req.headers, raw: req.rawHeaders, body })
        if (handler) handler(req, res, body)
        else res.end('ok')
      })
    })
    let accepted = 0
    server.on('connection', () => accepted++)
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()))
    t.defer(() => {
      server.closeAllConnections()
      return new Promise<void>((r) => server.close(() => r()))
    })
    return {
      port: (server.address() as { port: number }).port,
      seen,
      /** TCP connections accepted so far. */
      get accepted() {
        return accepted
      },
    }
  }

  let n = 0
  /** Config files for a client and a server in sluice's format; ports chosen here. */
  async function pair(o: PairOpts) {
    n++
    const [listen, tunnel] = [await freePort(), await freePort()]
    const cc = o.clientCert ?? clientCert
    const sc = o.serverCert ?? serverCert
    const transport =
      o.transport ??
      '{keepalive_interval: 500ms, idle_timeout: 2s, connect_interval: 300ms, connect_timeout: 2s}'
    const clientFile = t.tmp.file(
      `client${n}.yaml`,
      `apps:
  - name: to-b
    kind: tunnel
    mode: client
    listen: ["127.0.0.1:${listen}"]
    peer: 127.0.0.1:${tunnel}
    peer_hostname: ${o.clientPeerHostname ?? 'bar.example.org'}
    tls: {ca: ${o.clientCa ?? ca.cert}, cert: ${cc.cert}, key: ${cc.key}}
    transport: ${transport}
${o.client ?? ''}`,
    )
    const serverFile = t.tmp.file(
      `server${n}.yaml`,
      `apps:
  - name: from-a
    kind: tunnel
    mode: server
    listen: ["127.0.0.1:${tunnel}"]
    origin: 127.0.0.1:${o.originPort}
    peer_hostname: ${o.serverPeerHostname ?? 'foo.example.org'}
    tls: {ca: ${ca.cert}, cert: ${sc.cert}, key: ${sc.key}}
    transport: ${o.serverTransport ?? transport}
${o.server ?? ''}`,
    )
    return {
      listen,
      tunnel,
      url: `http://127.0.0.1:${listen}`,
      client: () => t.sluice(clientFile, [], o.env ?? {}),
      server: () => t.sluice(serverFile),
      /** Start both and wait until a request gets through; the processes, server first. */
      async up(): Promise<{ server: SluiceProcess; client: SluiceProcess }> {
        const server = await t.sluice(serverFile)
        const client = await t.sluice(clientFile, [], o.env ?? {})
        await until(`http://127.0.0.1:${listen}/`, 200, 5000)
        return { server, client }
      },
      clientFile,
      serverFile,
    }
  }

  /** A unix datagram socket that records what systemd-notify sends (python3: Node cannot). */
  function notifyReceiver(path: string): { messages: string[]; proc: ChildProcess } {
    const messages: string[] = []
    const proc = spawn('python3', [
      '-u',
      '-c',
      `import socket,sys
s=socket.socket(socket.AF_UNIX,socket.SOCK_DGRAM)
s.bind(sys.argv[1])
print("ready",flush=True)
while True:
    d=s.recv(65536)
    print(d.decode().replace("\\n","|"),flush=True)`,
      path,
    ])
    let buf = ''
    proc.stdout!.setEncoding('utf8').on('data', (d: string) => {
      buf += d
      let i = buf.indexOf('\n')
      while (i >= 0) {
        messages.push(buf.slice(0, i))
        buf = buf.slice(i + 1)
        i = buf.indexOf('\n')
      }
    })
    t.defer(() => proc.kill('SIGKILL'))
    return { messages, proc }
  }

  return { dir, ca, otherCa, clientCert, serverCert, origin, pair, notifyReceiver }
}
