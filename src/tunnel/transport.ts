// The tunnel's transport: mutually authenticated sessions that carry many requests at once. Today
// HTTP/2 over TLS 1.3 (node:http2); the services see only this interface, so QUIC can take its
// place when Node ships it.

import { readFileSync } from 'node:fs'
import {
  type ClientHttp2Session,
  type ClientHttp2Stream,
  createSecureServer,
  type Http2SecureServer,
  type Http2Session,
  connect as h2connect,
  type IncomingHttpHeaders,
  type OutgoingHttpHeaders,
  type ServerHttp2Stream,
} from 'node:http2'
import type { Socket } from 'node:net'
import { checkServerIdentity, type PeerCertificate, type TLSSocket, connect as tlsConnect } from 'node:tls'

/** Largest DATA frame either side accepts: fewer frames (and frame headers) per body. */
const MAX_FRAME = 1 << 20

export interface TransportTls {
  ca: Buffer | null
  cert: Buffer
  key: Buffer
  skipVerify: boolean
  /** The name the peer's certificate must carry. */
  peerHostname: string
}

/** Read the certificate files a tunnel app names (throws when one cannot be read). */
export function loadTls(spec: {
  tls: { ca: string | null; cert: string; key: string; skipVerify: boolean }
  peerHostname: string
}): TransportTls {
  return {
    ca: spec.tls.ca ? readFileSync(spec.tls.ca) : null,
    cert: readFileSync(spec.tls.cert),
    key: readFileSync(spec.tls.key),
    skipVerify: spec.tls.skipVerify,
    peerHostname: spec.peerHostname,
  }
}

/** Same certificates, key, CA and names: open sessions can stay. */
export function sameTls(a: TransportTls | null, b: TransportTls | null): boolean {
  if (a === null || b === null) return a === b
  const eq = (x: Buffer | null, y: Buffer | null) => (x === null || y === null ? x === y : x.equals(y))
  return (
    eq(a.ca, b.ca) &&
    a.cert.equals(b.cert) &&
    a.key.equals(b.key) &&
    a.skipVerify === b.skipVerify &&
    a.peerHostname === b.peerHostname
  )
}

export interface TransportTuning {
  streamWindow: number
  sessionWindow: number
  maxConcurrentStreams: number
  /** Server: the longest an incoming TLS handshake may take (ms). */
  connectTimeout: number
}

/** One session to the peer, as the client sees it. */
export interface ClientSession {
  readonly peer: string
  /** The names in the server's certificate. */
  readonly cert: { cn: string | null; san: string | null }
  /** Requests in flight on it. */
  readonly streams: number
  readonly closed: boolean
  /** Open a request; `end` when it has no body. */
  request(headers: OutgoingHttpHeaders, end: boolean): ClientHttp2Stream
  /** Round trip of one PING (ms). */
  ping(): Promise<number>
  /** Stop taking requests, let those in flight finish. */
  close(): void
  destroy(err?: Error): void
  /** Called once when the session ends, with the reason when it failed. */
  onClose(cb: (err: Error | null) => void): void
}

/** Open a session: TCP, TLS 1.3 with both certificates checked, HTTP/2. Resolves on the TLS handshake. */
export function connectSession(
  target: { host: string; port: number; localAddress: string | null; noDelay: boolean },
  tls: TransportTls,
  tuning: TransportTuning,
): Promise<ClientSession> {
  return new Promise((resolve, reject) => {
    const authority = `https://${target.host.includes(':') ? `[${target.host}]` : target.host}:${target.port}`
    let socket: TLSSocket | null = null
    const session = h2connect(authority, {
      settings: {
        initialWindowSize: tuning.streamWindow,
        enablePush: false,
        maxConcurrentStreams: tuning.maxConcurrentStreams,
        maxFrameSize: MAX_FRAME,
      },
      maxSessionMemory: 64,
      createConnection: () => {
        socket = tlsConnect({
          host: target.host,
          port: target.port,
          servername: tls.peerHostname,
          ALPNProtocols: ['h2'],
          ...(tls.ca ? { ca: tls.ca } : {}),
          cert: tls.cert,
          key: tls.key,
          rejectUnauthorized: !tls.skipVerify,
          minVersion: 'TLSv1.3',
          maxVersion: 'TLSv1.3',
          ...(target.localAddress ? { localAddress: target.localAddress } : {}),
          // The default check would use the host connected to; the name that counts is peer_hostname.
          checkServerIdentity: (_host: string, cert: PeerCertificate) =>
            checkServerIdentity(tls.peerHostname, cert),
        })
        socket.setNoDelay(target.noDelay)
        return socket
      },
    })
    let settled = false
    const closeCbs: ((err: Error | null) => void)[] = []
    let closeErr: Error | null = null
    session.on('error', (err) => {
      closeErr ??= err
      if (!settled) {
        settled = true
        reject(err)
      }
    })
    session.on('goaway', (code) => {
      closeErr ??= new Error(`the peer ended the session (GOAWAY ${code})`)
    })
    session.once('close', () => {
      if (!settled) {
        settled = true
        reject(closeErr ?? new Error('the session closed during set-up'))
      }
      for (const cb of closeCbs) cb(closeErr)
    })
    session.once('connect', () => {
      session.setLocalWindowSize(tuning.sessionWindow)
      settled = true
      const s = socket as TLSSocket | null
      resolve(wrap(session, s ? address(s) : authority, certNames(s?.getPeerCertificate()), closeCbs))
    })
  })
}

function wrap(
  session: ClientHttp2Session,
  peer: string,
  cert: ClientSession['cert'],
  closeCbs: ((err: Error | null) => void)[],
): ClientSession {
  let streams = 0
  return {
    peer,
    cert,
    get streams() {
      return streams
    },
    get closed() {
      return session.closed || session.destroyed
    },
    request(headers, end) {
      const stream = session.request(headers, { endStream: end })
      streams++
      stream.once('close', () => streams--)
      return stream
    },
    ping() {
      return new Promise((resolve, reject) => {
        const ok = session.ping((err, duration) => (err ? reject(err) : resolve(duration)))
        if (!ok) reject(new Error('too many PINGs unanswered'))
      })
    },
    close: () => session.close(),
    destroy: (err) => session.destroy(err),
    onClose: (cb) => {
      if (session.destroyed) cb(null)
      else closeCbs.push(cb)
    },
  }
}

/** The server side: sessions come in on sockets a listener hands over. */
export interface TransportServer {
  /** Take an accepted TCP connection (TLS and HTTP/2 happen here). */
  accept(socket: Socket): void
  /** Sessions open now. */
  readonly sessions: Set<Http2Session>
  close(): void
}

/** Who is at the other end of a session: address and the names its certificate carries. */
export interface PeerInfo {
  remote: string
  /** Subject CN, or null. */
  cn: string | null
  /** subjectAltName as Node prints it (`DNS:foo.example.org, IP Address:…`), or null. */
  san: string | null
}

/** The names in a peer certificate (an empty object when there is none). */
export function certNames(cert: PeerCertificate | null | undefined): {
  cn: string | null
  san: string | null
} {
  const cn = cert?.subject?.CN
  return { cn: (Array.isArray(cn) ? cn.join(', ') : cn) || null, san: cert?.subjectaltname || null }
}

/** What a transport server reports to its service. */
export interface ServerEvents {
  stream(stream: ServerHttp2Stream, headers: IncomingHttpHeaders, session: Http2Session): void
  /** A handshake or session refused before any request. */
  refused(why: string, remote: string): void
  /** A session is established: authenticated, and the client's first frames came. */
  opened(peer: PeerInfo): void
  /** An established session ended, after `streams` requests; `error` when it failed. */
  closed(peer: PeerInfo, how: { ms: number; streams: number; error: string | null; by: string }): void
}

/**
 * An HTTP/2 server over TLS 1.3 that asks for a client certificate, checks it against the CA and
 * `peerHostname`, and reports each request and session to `on`.
 */
export function transportServer(
  tls: TransportTls,
  tuning: TransportTuning,
  on: ServerEvents,
): TransportServer {
  const onReject = on.refused
  const server: Http2SecureServer = createSecureServer({
    ...(tls.ca ? { ca: tls.ca } : {}),
    cert: tls.cert,
    key: tls.key,
    requestCert: true,
    rejectUnauthorized: !tls.skipVerify,
    minVersion: 'TLSv1.3',
    maxVersion: 'TLSv1.3',
    allowHTTP1: false,
    settings: {
      initialWindowSize: tuning.streamWindow,
      maxConcurrentStreams: tuning.maxConcurrentStreams,
      enablePush: false,
      maxFrameSize: MAX_FRAME,
      // Extended CONNECT (RFC 8441): WebSocket over a stream.
      enableConnectProtocol: true,
    },
    maxSessionMemory: 64,
    // A peer that stalls in the handshake, or half-closes during it (it can never send its Finished;
    // the listener accepts half-open), holds its connection until this (Node's default: 2 minutes).
    handshakeTimeout: tuning.connectTimeout,
  })
  const sessions = new Set<Http2Session>()
  let closing = false
  // The TLS socket of a refused handshake is gone by the time it is reported: its address is
  // remembered from the TCP connection it wraps.
  const remotes = new WeakMap<object, string>()
  const remoteOf = (tlsSocket: TLSSocket) =>
    remotes.get((tlsSocket as unknown as { _parent?: object })._parent ?? tlsSocket) ?? address(tlsSocket)
  server.on('tlsClientError', (err, socket) => onReject(refusal(err, socket), remoteOf(socket)))
  server.on('unknownProtocol', (socket: TLSSocket) =>
    onReject('the client did not offer HTTP/2 (ALPN h2)', remoteOf(socket)),
  )
  server.on('secureConnection', (socket: TLSSocket) => {
    // An HTTP/2 session is over once the peer has sent FIN (it closes only when its streams are
    // done): end our side too, or the socket sits in CLOSE-WAIT, still counted as a session and a
    // connection. (sluice's listeners accept half-open, as a TCP proxy must.)
    socket.once('end', () => socket.end())
  })
  // Emitted as the session is made on a socket whose chain is verified, before any frame is read:
  // the place to check the name the client certificate carries.
  server.on('session', (session) => {
    if (session.destroyed) return
    const socket = session.socket as TLSSocket
    const why = tls.skipVerify
      ? undefined
      : checkServerIdentity(tls.peerHostname, socket.getPeerCertificate())
    if (why) {
      onReject(`client certificate: ${why.message}`, address(socket))
      session.destroy()
      return
    }
    sessions.add(session)
    let peer: PeerInfo | null = null
    let since = 0
    let streams = 0
    let error: string | null = null
    let by = 'the connection closed'
    session.on('stream', () => streams++)
    session.on('error', (err) => {
      error ??= err.message
    })
    session.once('goaway', (code) => {
      by = code === 0 ? 'the client ended it' : `the client ended it (GOAWAY ${code})`
    })
    session.once('close', () => {
      sessions.delete(session)
      if (closing) by = 'sluice closed it'
      if (peer) on.closed(peer, { ms: performance.now() - since, streams, error, by })
    })
    // Established once the client's SETTINGS come.
    const who = { remote: address(socket), ...certNames(socket.getPeerCertificate()) }
    session.once('remoteSettings', () => {
      if (session.destroyed) return
      session.setLocalWindowSize(tuning.sessionWindow)
      peer = who
      since = performance.now()
      on.opened(peer)
    })
  })
  server.on('stream', (stream, headers) => on.stream(stream, headers, stream.session!))
  return {
    accept: (socket) => {
      remotes.set(socket, address(socket))
      server.emit('connection', socket)
    },
    sessions,
    close: () => {
      closing = true
      for (const s of sessions) s.destroy()
      server.close()
    },
  }
}

/** `host:port` of a socket's peer (IPv6 in brackets). */
function address(socket: Socket): string {
  const host = socket.remoteAddress ?? 'unknown'
  return `${host.includes(':') ? `[${host}]` : host}:${socket.remotePort ?? '?'}`
}

/**
 * Why the server refused a handshake, in words. Node checks the client certificate itself after
 * the handshake and only hangs up, so the verdict is on the socket (`authorizationError`), not in
 * the error.
 */
function refusal(err: NodeJS.ErrnoException, socket: TLSSocket): string {
  const verdict = (socket as TLSSocket & { authorizationError?: string | Error }).authorizationError
  const code = typeof verdict === 'string' ? verdict : (verdict as NodeJS.ErrnoException | undefined)?.code
  if (code) {
    const said: Record<string, string> = {
      CERT_HAS_EXPIRED: 'the client certificate has expired',
      CERT_NOT_YET_VALID: 'the client certificate is not valid yet',
      UNABLE_TO_VERIFY_LEAF_SIGNATURE: 'the client certificate is not signed by a CA in tls.ca',
      UNABLE_TO_GET_ISSUER_CERT: 'the client certificate is not signed by a CA in tls.ca',
      UNABLE_TO_GET_ISSUER_CERT_LOCALLY: 'the client certificate is not signed by a CA in tls.ca',
      SELF_SIGNED_CERT_IN_CHAIN: 'the client certificate chains to a CA not in tls.ca',
      DEPTH_ZERO_SELF_SIGNED_CERT: 'the client certificate is self-signed',
      CERT_SIGNATURE_FAILURE: 'the client certificate signature does not verify',
      CERT_REVOKED: 'the client certificate is revoked',
    }
    return `${said[code] ?? 'the client certificate was not accepted'} (${code})`
  }
  if (err.code === 'ERR_SSL_PEER_DID_NOT_RETURN_A_CERTIFICATE') return 'the client sent no certificate'
  if (err.code === 'ECONNRESET') return 'the connection closed during the TLS handshake'
  return err.message.split('\n')[0]!.replace(/^[0-9A-F]+:error:[0-9A-F]+:SSL routines:[^:]*:/, '')
}
