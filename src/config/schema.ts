// sluice's own config format (YAML, JSON or TOML), as valibot schemas. The same definitions give
// validation with field paths, defaults, and the JSON Schema printed by `sluice schema`.
import * as v from 'valibot'
import { parseListen, parseTarget } from './address.ts'
import { strategies } from './types.ts'
import { parseDuration } from './units.ts'

/** A message for an unknown key, with the closest known key when one is near. */
export function unknownKey(key: unknown, known: readonly string[]): string {
  const k = String(key)
  let best = ''
  let bestDistance = Number.POSITIVE_INFINITY
  for (const candidate of known) {
    const d = editDistance(k.toLowerCase(), candidate.toLowerCase())
    if (d < bestDistance) {
      bestDistance = d
      best = candidate
    }
  }
  const hint = bestDistance <= Math.max(2, Math.floor(k.length / 3)) ? ` (did you mean "${best}"?)` : ''
  return `unknown field "${k}"${hint}; known fields: ${known.join(', ')}`
}

function editDistance(a: string, b: string): number {
  const row = Array.from({ length: b.length + 1 }, (_, i) => i)
  for (let i = 1; i <= a.length; i++) {
    let prev = row[0]!
    row[0] = i
    for (let j = 1; j <= b.length; j++) {
      const tmp = row[j]!
      row[j] = Math.min(row[j]! + 1, row[j - 1]! + 1, prev + (a[i - 1] === b[j - 1] ? 0 : 1))
      prev = tmp
    }
  }
  return row[b.length]!
}

/**
 * A strict object whose unknown-key error lists the known keys. valibot reports a missing required
 * key through the same message, with no input (the issue's path already names the key).
 */
export function strict<const E extends v.ObjectEntries>(entries: E) {
  const known = Object.keys(entries)
  return v.strictObject(entries, (issue) =>
    issue.input === undefined ? 'is required' : unknownKey(issue.input, known),
  )
}

export const typeName = (input: unknown) =>
  Array.isArray(input) ? 'a list' : input === null ? 'null' : typeof input

/** A duration in milliseconds (`250ms`, `2s`, `1m` or a number of ms). */
export function duration(description: string) {
  return v.pipe(
    v.union(
      [v.number(), v.string()],
      (i) => `must be a duration such as 2s or 250ms, not ${typeName(i.input)}`,
    ),
    v.check(
      (x) => typeof parseDuration(x) === 'number',
      (i) => String(parseDuration(i.input)),
    ),
    v.transform((x) => parseDuration(x) as number),
    v.description(description),
  )
}

/** A duration that `false`, `0` or `off` turns off (→ 0). */
export function optionalDuration(description: string) {
  return v.pipe(
    v.union(
      [v.number(), v.string(), v.literal(false)],
      (i) => `must be a duration such as 30s, or off, not ${typeName(i.input)}`,
    ),
    v.check(
      (x) => x === false || x === 'off' || typeof parseDuration(x) === 'number',
      (i) => String(parseDuration(i.input)),
    ),
    v.transform((x) => (x === false || x === 'off' ? 0 : (parseDuration(x) as number))),
    v.description(description),
  )
}

export function int(min: number, max: number, description: string) {
  return v.pipe(
    v.number((i) => `must be a whole number, not ${typeName(i.input)}`),
    v.integer('must be a whole number'),
    v.minValue(min, `must be at least ${min}`),
    v.maxValue(max, `must be at most ${max}`),
    v.description(description),
  )
}

export const str = (description: string) =>
  v.pipe(
    v.string((i) => `must be a string, not ${typeName(i.input)}`),
    v.description(description),
  )

export const listenEntry = v.pipe(
  v.union([v.number(), v.string()], (i) => `must be a port number or "host:port", not ${typeName(i.input)}`),
  v.check(
    (x) => typeof parseListen(x) !== 'string',
    (i) => String(parseListen(i.input)),
  ),
  v.description('A port (every interface, IPv4 and IPv6) or "host:port" with an IP address host'),
)

const targetAddress = (description: string) =>
  v.pipe(
    str(description),
    v.check(
      (x) => typeof parseTarget(x) !== 'string',
      (i) => String(parseTarget(i.input)),
    ),
  )

export const faultList = (description: string) =>
  v.pipe(
    v.array(v.unknown(), (i) => `must be a list of faults, not ${typeName(i.input)}`),
    v.description(description),
  )

export const tlsEntry = v.union(
  [
    v.literal(true),
    strict({
      servername: v.optional(str('Name sent as SNI and checked in the certificate (default: the host)')),
      ca_file: v.optional(
        str('PEM file of extra CAs to trust besides the system ones (relative to the config file)'),
      ),
      insecure: v.optional(v.pipe(v.boolean(), v.description('Accept any certificate (tests, self-signed)'))),
    }),
  ],
  (i) => `must be true or {servername, ca_file, insecure}, not ${typeName(i.input)}`,
)

const targetEntry = v.union(
  [
    targetAddress('"host:port"; the host may be a DNS name, resolved at connect time through the DNS cache'),
    strict({
      address: targetAddress('"host:port" of the target'),
      weight: v.optional(
        int(1, 1000, 'Relative weight for weighted-round-robin, random and least-connections'),
        1,
      ),
      tls: v.optional(tlsEntry),
      starttls: v.optional(
        v.pipe(
          v.literal('postgres', 'must be "postgres"'),
          v.description("Send PostgreSQL's SSLRequest before TLS"),
        ),
      ),
      faults: v.optional(faultList('Faults on connections to this target only')),
    }),
  ],
  (i) => `must be "host:port" or {address, weight, tls, starttls, faults}, not ${typeName(i.input)}`,
)

export const healthSchema = strict({
  interval: v.optional(duration('Time between checks of each target'), 2000),
  timeout: v.optional(duration('How long one check may take (connect, and send/expect when set)'), 1000),
  rise: v.optional(int(1, 100, 'Consecutive successes that mark a down target up'), 2),
  fall: v.optional(int(1, 100, 'Consecutive failures that mark an up target down'), 3),
  send: v.optional(str('Bytes to send after connecting (YAML escapes like \\r\\n work in double quotes)')),
  expect: v.optional(
    str('Text the reply must contain for the check to pass (requires the target to answer)'),
  ),
})

export const passiveSchema = strict({
  failures: v.optional(int(1, 1000, 'Consecutive connect failures that eject a target'), 3),
  cooldown: v.optional(
    duration(
      'How long an ejected target is skipped before it is tried again (doubles while it keeps failing)',
    ),
    10_000,
  ),
})

/** Fields an app and `defaults` share: everything but name, listen and targets. */
export const appTuning = {
  strategy: v.optional(
    v.pipe(
      v.picklist(
        strategies,
        (i) => `must be one of ${strategies.join(', ')} (got ${JSON.stringify(i.input)})`,
      ),
      v.description('How targets are ordered for each new connection'),
    ),
  ),
  connect_timeout: v.optional(duration('Time allowed for one connect attempt to one target')),
  connect_budget: v.optional(
    duration('Total time allowed for trying targets for one client; then the client is reset'),
  ),
  max_attempts: v.optional(int(0, 1000, 'Most targets tried for one client (0: every target once)')),
  idle_timeout: v.optional(
    optionalDuration('Close a connection after this long with no data either way (off)'),
  ),
  keepalive: v.optional(
    optionalDuration('TCP keepalive idle time on both sockets (default 60s; off disables)'),
  ),
  nodelay: v.optional(v.pipe(v.boolean(), v.description('Disable Nagle on both sockets'))),
  max_connections: v.optional(int(0, 10_000_000, 'Concurrent connections cap for the app; 0 = none')),
  health: v.optional(
    v.union(
      [healthSchema, v.literal(false)],
      (i) => `must be a health check object or false, not ${typeName(i.input)}`,
    ),
  ),
  passive: v.optional(
    v.union([passiveSchema, v.literal(false)], (i) => `must be an object or false, not ${typeName(i.input)}`),
  ),
}

export const tcpAppSchema = strict({
  name: v.pipe(
    str('Unique app name, used in logs, metrics and the admin API'),
    v.regex(/^[A-Za-z0-9][A-Za-z0-9._ -]{0,62}$/, 'must be 1-63 letters, digits, ".", "_", "-" or spaces'),
  ),
  kind: v.optional(v.pipe(v.literal('tcp'), v.description('The service: tcp (the default)'))),
  listen: v.pipe(
    v.array(listenEntry, (i) => `must be a list of ports or addresses, not ${typeName(i.input)}`),
    v.minLength(1, 'needs at least one address'),
    v.description('Addresses this app accepts connections on'),
  ),
  targets: v.pipe(
    v.array(targetEntry, (i) => `must be a list of "host:port", not ${typeName(i.input)}`),
    v.minLength(1, 'needs at least one target'),
    v.description('Where connections go'),
  ),
  ...appTuning,
  faults: v.optional(faultList("Faults on the app's connections (see the fault reference)")),
  on_no_target: v.optional(
    v.pipe(
      v.picklist(['reset', 'close'], 'must be reset or close'),
      v.description('When no target connects: reset the client (default) or accept and close'),
    ),
  ),
  enabled: v.optional(v.pipe(v.boolean(), v.description('false: keep the app but listen nowhere'))),
  postgres_client_ssl: v.optional(
    v.pipe(
      v.picklist(['pass', 'refuse'], 'must be pass or refuse'),
      v.description(
        "refuse: answer PostgreSQL clients' SSLRequest with N, so they go on in clear text (default pass)",
      ),
    ),
  ),
})

const adminSchema = v.union(
  [
    v.literal(false),
    str('"host:port" of the admin API'),
    strict({
      listen: str('"host:port" of the admin API'),
      token: v.optional(str('Bearer token required on every admin call (required off loopback)')),
    }),
  ],
  (i) => `must be "host:port", {listen, token} or false, not ${typeName(i.input)}`,
)

export const nativeSchema = strict({
  admin: v.optional(adminSchema),
  log: v.optional(
    strict({
      level: v.optional(
        v.picklist(
          ['trace', 'debug', 'info', 'warn', 'error', 'fatal', 'silent'],
          'must be trace, debug, info, warn, error, fatal or silent',
        ),
      ),
      format: v.optional(v.picklist(['auto', 'json', 'pretty'], 'must be auto, json or pretty')),
    }),
  ),
  drain_timeout: v.optional(
    duration('How long connections of removed listeners (and all, at shutdown) may take to finish'),
  ),
  dns: v.optional(
    strict({
      ttl: v.optional(duration('Cache time for answers without a TTL (hosts file)')),
      min_ttl: v.optional(duration('Shortest time an answer is cached')),
      max_ttl: v.optional(duration('Longest time an answer is cached')),
      negative_ttl: v.optional(duration('How long a failed lookup is remembered')),
      timeout: v.optional(duration('Time allowed for one lookup')),
    }),
  ),
  defaults: v.optional(strict(appTuning)),
  apps: v.pipe(
    v.array(v.unknown(), (i) => `must be a list of apps, not ${typeName(i.input)}`),
    v.description('The apps (see the app fields)'),
  ),
})

export type NativeInput = v.InferInput<typeof nativeSchema>
export type NativeOutput = v.InferOutput<typeof nativeSchema>
export type TcpAppOutput = v.InferOutput<typeof tcpAppSchema>
export type TuningOutput = v.InferOutput<v.StrictObjectSchema<typeof appTuning, undefined>>
