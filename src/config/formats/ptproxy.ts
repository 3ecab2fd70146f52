// ptproxy's TOML, unchanged: [general] (mode, peer_hostname, quic_port, bind_address,
// connect_address, http_bind_address, http_connect_address), [tls] (ca, cert, key, skip_verify),
// [transport], [system]. Unknown keys are refused, as ptproxy does. The QUIC port carries the TLS
// session over TCP instead; QUIC-only transport fields are kept and reported at start as ignored.
import * as v from 'valibot'
import { joinHostPort } from '../address.ts'
import { strict } from '../schema.ts'
import type { Format } from './format.ts'

const ms = (what: string) =>
  v.pipe(
    v.number(`must be a number of milliseconds (${what})`),
    v.integer('must be a whole number'),
    v.minValue(0, 'must not be negative'),
  )
const bytes = v.pipe(
  v.number('must be a number of bytes'),
  v.integer('must be a whole number'),
  v.minValue(0, 'must not be negative'),
)
const text = (what: string) => v.string(`must be a string (${what})`)

const schema = strict({
  general: strict({
    mode: v.picklist(['Client', 'Server'], 'must be "Client" or "Server"'),
    peer_hostname: text("the name in the peer's certificate"),
    quic_port: v.optional(
      v.pipe(
        v.number('must be a port number'),
        v.integer(),
        v.minValue(1, 'must be 1-65535'),
        v.maxValue(65535, 'must be 1-65535'),
      ),
    ),
    bind_address: v.optional(text('an IP address')),
    connect_address: v.optional(text('a host name or address')),
    http_bind_address: v.optional(text('an address such as 127.0.0.1:20080')),
    http_connect_address: v.optional(text('an address such as localhost:8081')),
  }),
  tls: strict({
    ca: v.optional(text('a PEM file')),
    cert: text('a PEM file'),
    key: text('a PEM file'),
    skip_verify: v.optional(v.boolean('must be true or false')),
  }),
  transport: v.optional(
    strict({
      max_idle_timeout: v.optional(ms('max_idle_timeout')),
      keep_alive_interval: v.optional(ms('keep_alive_interval')),
      initial_rtt: v.optional(ms('initial_rtt')),
      max_concurrent_http_streams: v.optional(
        v.pipe(v.number('must be a number'), v.integer(), v.minValue(1, 'must be at least 1')),
      ),
      stream_receive_window: v.optional(bytes),
      initial_window: v.optional(bytes),
      receive_window: v.optional(bytes),
      send_window: v.optional(bytes),
      socket_receive_buffer_size: v.optional(bytes),
      socket_send_buffer_size: v.optional(bytes),
      congestion_algorithm: v.optional(
        v.picklist(['Bbr', 'Cubic', 'NewReno'], 'must be "Bbr", "Cubic" or "NewReno"'),
      ),
    }),
  ),
  system: v.optional(
    strict({
      connect_interval: v.optional(ms('connect_interval')),
      tcp_nodelay: v.optional(v.boolean('must be true or false')),
      wait_for_first_attempt: v.optional(v.boolean('must be true or false')),
      watchdog_factor: v.optional(v.pipe(v.number('must be a number'), v.minValue(1, 'must be at least 1'))),
      add_forwarded: v.optional(v.boolean('must be true or false')),
    }),
  ),
})

type Doc = v.InferOutput<typeof schema>

/** ptproxy's [transport] goes whole under transport.quic (mapped or reported as ignored there). */
function transport(t: Doc['transport'], s: Doc['system']): Record<string, unknown> {
  const out: Record<string, unknown> = {}
  if (s?.connect_interval !== undefined) out.connect_interval = s.connect_interval
  const quic = Object.fromEntries(Object.entries(t ?? {}).filter(([, value]) => value !== undefined))
  if (Object.keys(quic).length) out.quic = quic
  return out
}

/** `host:port` with IPv6 literals bracketed (ptproxy's bind_address is a bare IP). */
const hostPort = (host: string, port: number) => joinHostPort(host.replace(/^\[|\]$/g, ''), port)

export const ptproxy: Format = {
  name: 'ptproxy',
  detect: (doc) =>
    typeof doc === 'object' &&
    doc !== null &&
    !Array.isArray(doc) &&
    !('apps' in doc) &&
    typeof (doc as { general?: unknown }).general === 'object' &&
    'tls' in doc,
  schema,
  toNative: (raw) => {
    const d = raw as Doc
    const g = d.general
    const port = g.quic_port ?? 20010
    const client = g.mode === 'Client'
    const app: Record<string, unknown> = {
      name: client ? 'tunnel-client' : 'tunnel-server',
      kind: 'tunnel',
      mode: client ? 'client' : 'server',
      listen: client ? [g.http_bind_address ?? '[::]:20080'] : [hostPort(g.bind_address ?? '::', port)],
      peer_hostname: g.peer_hostname,
      tls: {
        ...(d.tls.ca !== undefined ? { ca: d.tls.ca } : {}),
        cert: d.tls.cert,
        key: d.tls.key,
        ...(d.tls.skip_verify !== undefined ? { skip_verify: d.tls.skip_verify } : {}),
      },
      transport: transport(d.transport, d.system),
    }
    if (client) app.peer = hostPort(g.connect_address ?? g.peer_hostname, port)
    // Fields in the wrong mode are passed on so that sluice names them (origin on a client, …).
    if (g.http_connect_address !== undefined) app.origin = g.http_connect_address
    if (!client && g.connect_address !== undefined) app.peer = g.connect_address
    if (client && g.bind_address !== undefined && g.bind_address !== '::' && g.bind_address !== '0.0.0.0')
      app.local_address = g.bind_address
    const s = d.system ?? {}
    if (s.tcp_nodelay !== undefined) app.tcp_nodelay = s.tcp_nodelay
    if (s.wait_for_first_attempt !== undefined) app.wait_for_first_attempt = s.wait_for_first_attempt
    if (s.watchdog_factor !== undefined) app.watchdog_factor = s.watchdog_factor
    if (s.add_forwarded !== undefined) app.add_forwarded = s.add_forwarded
    // ptproxy has no admin API: off unless `--admin` asks for one (two instances on one host would clash).
    return { admin: false, apps: [app] }
  },
  renamePath: (path) =>
    path
      .replace(/^apps\[0\]\.listen(\[0\])?/, 'general.http_bind_address')
      .replace(/^apps\[0\]\.origin/, 'general.http_connect_address')
      .replace(/^apps\[0\]\.peer_hostname/, 'general.peer_hostname')
      .replace(/^apps\[0\]\.peer/, 'general.connect_address')
      .replace(/^apps\[0\]\.tls\./, 'tls.')
      .replace(/^apps\[0\]\.transport\.quic\./, 'transport.')
      .replace(/^apps\[0\]\.transport\./, 'transport.')
      .replace(/^apps\[0\]\./, 'system.'),
}
