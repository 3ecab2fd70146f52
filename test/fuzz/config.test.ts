// Properties of config loading (src/config/load.ts, formats/*, normalize.ts) and printing
// (src/config/print.ts): any text gives a Config or a ConfigError (ERR_CONFIG_PARSE or
// ERR_CONFIG_INVALID, each issue with a message); a Config keeps every bound (durations a timer
// can wait, ports in range, unique names); and what `sluice check` prints reads back to the same
// Config, in YAML and in JSON.
import assert from 'node:assert/strict'
import { test } from 'node:test'
import { stringify as tomlStringify } from 'smol-toml'
import { stringify as yamlStringify } from 'yaml'
import { loadConfigText } from '../../src/config/load.ts'
import { toDocument } from '../../src/config/print.ts'
import type { Config } from '../../src/config/types.ts'
import { ConfigError } from '../../src/errors.ts'
import { check, coded, fc, scale } from './fuzz.ts'

delete process.env.SLUICE_ADMIN_TOKEN
delete process.env.SIDECAR_PORT

const timerMax = 2 ** 31 - 1

/**
 * The generators, clean (every field valid in itself, so that many documents load and the round
 * trip is exercised) or noisy (sometimes a bad value in a field, to reach the errors).
 */
function arbitraries(noisy: boolean) {
  /** Mostly `good`, sometimes `bad` when noisy. */
  const mostly = <T, U>(good: fc.Arbitrary<T>, bad: fc.Arbitrary<U>): fc.Arbitrary<T | U> =>
    noisy ? fc.oneof({ weight: 8, arbitrary: good }, { weight: 1, arbitrary: bad }) : good
  const junk = fc.oneof(
    fc.constantFrom(null, true, -1, '', 'x', [], {}, 1e300, '30d', 3e9, 0.5),
    fc.string({ maxLength: 6 }),
  )
  const durationValue = mostly(
    fc.oneof(
      fc.nat({ max: 100_000 }),
      fc.constantFrom('250ms', '2s', '1m', '1h30m', '500us', '1.5s', '0', '1.001s', '24d'),
      fc.double({ min: 0, max: 1e6, noNaN: true }),
    ),
    junk,
  )
  const offDuration = mostly(fc.oneof(durationValue, fc.constantFrom('off', false)), junk)
  const sizeValue = mostly(
    fc.oneof(fc.nat({ max: 1e7 }), fc.constantFrom('64KiB', '1MB', '16MiB', '4.35kb')),
    junk,
  )
  const fraction = mostly(fc.double({ min: 0, max: 1, noNaN: true }), junk)
  const name = mostly(fc.stringMatching(/^[A-Za-z0-9][A-Za-z0-9._-]{0,12}$/), junk)
  const port = mostly(fc.integer({ min: 1, max: 65535 }), fc.constantFrom(0, 65536, -1, 'x', 80.5))
  const hostName = fc.constantFrom(
    '127.0.0.1',
    'localhost',
    'db.internal',
    '::1',
    'a-b.example.org',
    '10.0.0.7',
  )
  const hostPort = mostly(
    fc
      .tuple(hostName, fc.integer({ min: 1, max: 65535 }))
      .map(([h, p]) => (h.includes(':') ? `[${h}]:${p}` : `${h}:${p}`)),
    fc.oneof(junk, fc.constantFrom('host', 'a.0:1', '[::1]', ':80', 'h:99999')),
  )
  const listenEntry = mostly(
    fc.oneof(
      fc.integer({ min: 1024, max: 65535 }),
      fc.integer({ min: 1024, max: 65535 }).map((p) => `127.0.0.1:${p}`),
      fc.integer({ min: 1024, max: 65535 }).map((p) => `[::1]:${p}`),
    ),
    fc.oneof(junk, fc.constantFrom('0.0.0.0:0', 'db:80', '*:8080')),
  )
  const listen = fc.array(listenEntry, { minLength: 1, maxLength: 2 })
  const schedule = mostly(
    fc.constantFrom('start:1s,duration:2s', 'start:10%', 'duration:250ms;start:5s'),
    junk,
  )

  const faultCommon = {
    name: fc.option(name, { nil: undefined }),
    direction: fc.option(mostly(fc.constantFrom('to-upstream', 'to-client', 'both'), junk), {
      nil: undefined,
    }),
    probability: fc.option(fraction, { nil: undefined }),
    schedule: fc.option(schedule, { nil: undefined }),
  }
  const faultFields: Record<string, Record<string, fc.Arbitrary<unknown>>> = {
    latency: {
      latency: durationValue,
      jitter: durationValue,
      distribution: mostly(fc.constantFrom('fixed', 'uniform', 'normal', 'pareto', 'pareto-normal'), junk),
      stddev: durationValue,
      min: durationValue,
      max: durationValue,
      shape: mostly(fc.double({ min: 0, max: 10, noNaN: true }), junk),
      scale: durationValue,
      mode: mostly(fc.constantFrom('per-chunk', 'once'), junk),
    },
    jitter: {
      amplitude: durationValue,
      frequency: mostly(fc.double({ min: 0, max: 100, noNaN: true }), junk),
    },
    bandwidth: { rate: sizeValue },
    slicer: { average_size: sizeValue, size_variation: sizeValue, delay: durationValue },
    limit_data: { bytes: sizeValue },
    timeout: { timeout: durationValue },
    slow_close: { delay: durationValue },
    reset_peer: { timeout: durationValue },
    reset: { rate: fraction },
    blackhole: {},
    packet_loss: {
      rate: fraction,
      correlation: fraction,
      retransmit: durationValue,
      max_retransmit: durationValue,
    },
    refuse: {},
    close: {},
    http_error: {
      status: mostly(fc.integer({ min: 200, max: 599 }), junk),
      body: fc.string({ maxLength: 8 }),
    },
  }
  const required: Record<string, string[]> = {
    bandwidth: ['rate'],
    limit_data: ['bytes'],
    packet_loss: ['rate'],
  }

  /** One fault document of a given family of types. */
  function faultOf(types: readonly string[]) {
    return fc
      .constantFrom(...types)
      .chain((type) =>
        fc
          .record(
            { ...faultCommon, ...faultFields[type] },
            { requiredKeys: (required[type] ?? []) as never[] },
          )
          .map((f) => Object.fromEntries(Object.entries({ type, ...f }).filter(([, x]) => x !== undefined))),
      )
  }
  const tcpFaults = fc.array(faultOf(Object.keys(faultFields).filter((t) => t !== 'http_error')), {
    maxLength: 2,
  })
  const httpFaults = fc.array(faultOf(['latency', 'http_error']), { maxLength: 2 })

  const tuning = {
    strategy: mostly(
      fc.constantFrom('round-robin', 'weighted-round-robin', 'least-connections', 'random', 'hash'),
      junk,
    ),
    connect_timeout: durationValue,
    connect_budget: durationValue,
    max_attempts: mostly(fc.nat({ max: 10 }), junk),
    idle_timeout: offDuration,
    keepalive: offDuration,
    nodelay: fc.boolean(),
    max_connections: mostly(fc.nat({ max: 1000 }), junk),
    health: mostly(
      fc.oneof(
        fc.constant(false as const),
        fc.record(
          {
            interval: durationValue,
            timeout: durationValue,
            rise: mostly(fc.integer({ min: 1, max: 5 }), junk),
            fall: mostly(fc.integer({ min: 1, max: 5 }), junk),
            send: fc.string({ maxLength: 6 }),
            expect: fc.string({ maxLength: 6 }),
          },
          { requiredKeys: [] },
        ),
      ),
      junk,
    ),
    passive: mostly(
      fc.oneof(
        fc.constant(false as const),
        fc.record(
          { failures: mostly(fc.integer({ min: 1, max: 9 }), junk), cooldown: durationValue },
          { requiredKeys: [] },
        ),
      ),
      junk,
    ),
  }
  const target = mostly(
    fc.oneof(
      hostPort,
      fc.record(
        {
          address: hostPort,
          weight: mostly(fc.integer({ min: 1, max: 1000 }), junk),
          tls: mostly(
            fc.oneof(
              fc.constant(true as const),
              fc.record(
                {
                  servername: fc.constantFrom('a.example', 'b'),
                  ca_file: fc.constantFrom('/etc/ca.pem'),
                  insecure: fc.boolean(),
                },
                { requiredKeys: [] },
              ),
            ),
            junk,
          ),
          starttls: mostly(fc.constant('postgres'), junk),
          faults: tcpFaults,
        },
        { requiredKeys: ['address'] },
      ),
    ),
    junk,
  )
  const tcpApp = fc.record(
    {
      name,
      kind: fc.constant('tcp'),
      listen,
      targets: fc.array(target, { minLength: 1, maxLength: 3 }),
      ...tuning,
      faults: tcpFaults,
      on_no_target: mostly(fc.constantFrom('reset', 'close'), junk),
      enabled: fc.boolean(),
      postgres_client_ssl: mostly(fc.constantFrom('pass', 'refuse'), junk),
    },
    { requiredKeys: ['name', 'listen', 'targets'] },
  )
  const headerName = mostly(
    fc.constantFrom('X-Team', 'x-b', 'Host', 'Accept'),
    fc.constantFrom('bad name', ''),
  )
  const headerValue = mostly(
    fc.oneof(fc.string({ maxLength: 6 }), fc.integer(), fc.boolean()),
    fc.constantFrom('a\r\nb', '\0'),
  )
  const headerEdits = fc.record(
    {
      set: fc.dictionary(headerName, headerValue, { maxKeys: 2 }),
      add: fc.dictionary(headerName, headerValue, { maxKeys: 2 }),
      remove: fc.array(headerName, { maxLength: 2 }),
    },
    { requiredKeys: [] },
  )
  const destination = mostly(
    fc
      .tuple(
        fc.constantFrom('http', 'https'),
        hostName,
        fc.option(fc.integer({ min: 1, max: 65535 })),
        fc.constantFrom('', '/api', '/a/b/'),
      )
      .map(
        ([s, h, p, path]) => `${s}://${h.includes(':') ? `[${h}]` : h}${p === null ? '' : `:${p}`}${path}`,
      ),
    fc.oneof(junk, fc.constantFrom('ftp://a:1', 'http://u:p@h:1', 'http://h:1/?q', 'http://a.0')),
  )
  const matchValue = mostly(
    fc.oneof(
      fc.string({ maxLength: 5 }),
      fc.integer(),
      fc.constantFrom(
        { present: true },
        { absent: true },
        { prefix: 'a' },
        { regex: '^x+$' },
        { exact: 'v' },
      ),
    ),
    fc.constantFrom({ regex: '(' }, { present: false }, null),
  )
  const httpApp = fc.record(
    {
      name,
      kind: fc.constant('http'),
      listen,
      destination,
      rules: fc.array(
        fc.record(
          {
            name: fc.option(name, { nil: undefined }),
            match: fc.dictionary(headerName, matchValue, { minKeys: 1, maxKeys: 2 }),
            destination,
            headers: headerEdits,
            timeout: durationValue,
            faults: httpFaults,
          },
          { requiredKeys: ['match'] },
        ),
        { maxLength: 3 },
      ),
      headers: headerEdits,
      preserve_host: fc.boolean(),
      forwarded: fc.record(
        {
          x_forwarded_for: fc.boolean(),
          x_forwarded_proto: fc.boolean(),
          x_forwarded_host: fc.boolean(),
          forwarded: fc.boolean(),
        },
        { requiredKeys: [] },
      ),
      timeouts: fc.record(
        {
          connect: durationValue,
          upstream: durationValue,
          header: durationValue,
          idle: offDuration,
          body: durationValue,
        },
        { requiredKeys: [] },
      ),
      limits: fc.record(
        {
          max_header_size: sizeValue,
          max_headers: mostly(fc.integer({ min: 1, max: 200 }), junk),
          request_buffer: sizeValue,
        },
        { requiredKeys: [] },
      ),
      pool: fc.record(
        {
          max_connections: mostly(fc.nat({ max: 500 }), junk),
          max_idle: mostly(fc.nat({ max: 100 }), junk),
          idle_timeout: offDuration,
        },
        { requiredKeys: [] },
      ),
      max_connections: mostly(fc.nat({ max: 1000 }), junk),
      faults: httpFaults,
      enabled: fc.boolean(),
    },
    { requiredKeys: ['name', 'kind', 'listen', 'destination'] },
  )
  const tunnelApp = fc
    .record(
      {
        name,
        kind: fc.constant('tunnel'),
        mode: mostly(fc.constantFrom('client', 'server'), junk),
        listen,
        peer: hostPort,
        origin: hostPort,
        peer_hostname: fc.constantFrom('peer.example.org', 'b'),
        tls: fc.record(
          {
            ca: fc.constantFrom('/certs/ca.pem'),
            cert: fc.constantFrom('/certs/c.pem'),
            key: fc.constantFrom('/certs/c.key'),
            skip_verify: fc.boolean(),
          },
          { requiredKeys: ['cert', 'key'] },
        ),
        sessions: mostly(fc.integer({ min: 1, max: 64 }), junk),
        add_forwarded: fc.boolean(),
        tcp_nodelay: fc.boolean(),
        wait_for_first_attempt: fc.boolean(),
        watchdog_factor: mostly(fc.double({ min: 1, max: 5, noNaN: true }), junk),
        transport: fc.record(
          {
            stream_window: sizeValue,
            session_window: sizeValue,
            max_concurrent_streams: mostly(fc.integer({ min: 1, max: 1000 }), junk),
            keepalive_interval: durationValue,
            idle_timeout: durationValue,
            connect_interval: durationValue,
            connect_timeout: durationValue,
            request_timeout: durationValue,
            quic: fc.dictionary(
              fc.constantFrom(
                'max_idle_timeout',
                'keep_alive_interval',
                'initial_rtt',
                'receive_window',
                'bogus',
              ),
              mostly(fc.nat({ max: 1e7 }), junk),
              { maxKeys: 2 },
            ),
          },
          { requiredKeys: [] },
        ),
        enabled: fc.boolean(),
      },
      { requiredKeys: ['name', 'kind', 'mode', 'listen', 'peer_hostname', 'tls'] },
    )
    // Mostly the fields each mode takes.
    .map((a) =>
      a.mode === 'client' ? { ...a, origin: undefined } : a.mode === 'server' ? { ...a, peer: undefined } : a,
    )
    .map((a) => Object.fromEntries(Object.entries(a).filter(([, x]) => x !== undefined)))

  const nativeDoc = fc.record(
    {
      admin: mostly(
        fc.oneof(
          fc.constant(false as const),
          fc.constantFrom('127.0.0.1:8474', '[::1]:0', '127.0.0.1:0'),
          fc.record(
            { listen: fc.constantFrom('0.0.0.0:8474', '127.0.0.1:9000'), token: fc.constantFrom('s3cret') },
            { requiredKeys: ['listen'] },
          ),
        ),
        fc.oneof(junk, fc.constantFrom('0.0.0.0:8474', 'nope')),
      ),
      log: fc.record(
        {
          level: mostly(fc.constantFrom('info', 'debug', 'silent'), junk),
          format: mostly(fc.constantFrom('json', 'auto', 'pretty'), junk),
        },
        { requiredKeys: [] },
      ),
      drain_timeout: durationValue,
      dns: fc.record(
        {
          ttl: durationValue,
          min_ttl: durationValue,
          max_ttl: durationValue,
          negative_ttl: durationValue,
          timeout: durationValue,
        },
        { requiredKeys: [] },
      ),
      defaults: fc.record(tuning, { requiredKeys: [] }),
      apps: fc.array(fc.oneof({ weight: 3, arbitrary: tcpApp }, httpApp, tunnelApp), {
        minLength: 1,
        maxLength: 3,
      }),
    },
    { requiredKeys: ['apps'] },
  )

  const flyDoc = fc.record({
    Apps: fc.array(
      fc.record({
        Name: name,
        Ports: fc.array(port, { minLength: 1, maxLength: 3 }),
        Targets: fc.array(hostPort, { minLength: 1, maxLength: 3 }),
      }),
      { minLength: 1, maxLength: 3 },
    ),
  })
  const tcpproxyDoc = fc.record({
    apps: fc.array(
      fc.record({
        name,
        ports: fc.array(port, { minLength: 1, maxLength: 3 }),
        targets: fc.array(hostPort, { minLength: 1, maxLength: 3 }),
      }),
      { minLength: 1, maxLength: 3 },
    ),
  })
  const sidecarDoc = fc.record(
    {
      key: mostly(fc.constantFrom('X-Team', 'x-route'), fc.constantFrom('bad key', 3)),
      destination,
      rewrites: fc.dictionary(
        fc.oneof(fc.constantFrom('a', 'team-b', 'v1.2'), fc.string({ maxLength: 5 })),
        fc.record(
          {
            destination,
            patch: fc.array(fc.record({ key: headerName, val: headerValue }), { maxLength: 2 }),
          },
          { requiredKeys: [] },
        ),
        { maxKeys: 3 },
      ),
    },
    { requiredKeys: ['key', 'destination'] },
  )
  const msValue = mostly(fc.nat({ max: 100_000 }), fc.oneof(junk, fc.constant(3e9)))
  const ptproxyGeneral = fc.record(
    {
      mode: mostly(fc.constantFrom('Client', 'Server'), junk),
      peer_hostname: fc.constantFrom('peer.example.org'),
      quic_port: port,
      bind_address: fc.constantFrom('127.0.0.1', '::', '0.0.0.0', '[::1]'),
      connect_address: fc.constantFrom('127.0.0.1', 'peer.example.org'),
      http_bind_address: mostly(
        fc.integer({ min: 1024, max: 65535 }).map((p) => `127.0.0.1:${p}`),
        junk,
      ),
      http_connect_address: hostPort,
    },
    { requiredKeys: ['mode', 'peer_hostname'] },
  )
  const ptproxyDoc = fc.record(
    {
      // Mostly the fields the mode takes: a client has no origin, a server needs one and has no peer.
      general: mostly(
        ptproxyGeneral.map(({ connect_address, http_connect_address, ...g }) =>
          g.mode === 'Server'
            ? { ...g, http_connect_address: http_connect_address ?? '127.0.0.1:8080' }
            : { ...g, ...(connect_address ? { connect_address } : {}) },
        ),
        ptproxyGeneral,
      ),
      tls: fc.record(
        {
          ca: fc.constant('/certs/ca.pem'),
          cert: fc.constant('/certs/c.pem'),
          key: fc.constant('/certs/c.key'),
          skip_verify: fc.boolean(),
        },
        { requiredKeys: ['cert', 'key'] },
      ),
      transport: fc.record(
        {
          max_idle_timeout: msValue,
          keep_alive_interval: msValue,
          initial_rtt: msValue,
          max_concurrent_http_streams: mostly(fc.integer({ min: 1, max: 500 }), junk),
          stream_receive_window: msValue,
          receive_window: msValue,
          congestion_algorithm: mostly(fc.constantFrom('Bbr', 'Cubic'), junk),
        },
        { requiredKeys: [] },
      ),
      system: fc.record(
        {
          connect_interval: msValue,
          tcp_nodelay: fc.boolean(),
          wait_for_first_attempt: fc.boolean(),
          watchdog_factor: fc.constantFrom(1, 2.5),
          add_forwarded: fc.boolean(),
        },
        { requiredKeys: [] },
      ),
    },
    { requiredKeys: ['general', 'tls'] },
  )
  return { nativeDoc, flyDoc, tcpproxyDoc, sidecarDoc, ptproxyDoc }
}

/** TOML cannot hold null; everything else the generators make it can. */
function tomlText(doc: unknown): string {
  const clean = (x: unknown): unknown =>
    Array.isArray(x)
      ? x.filter((y) => y !== null).map(clean)
      : x && typeof x === 'object'
        ? Object.fromEntries(
            Object.entries(x)
              .filter(([, y]) => y !== null)
              .map(([k, y]) => [k, clean(y)]),
          )
        : x
  return tomlStringify(clean(doc) as Record<string, unknown>)
}

/** A document written out as a file of some syntax: the text and the file name that says how to read it. */
function files({ nativeDoc, flyDoc, tcpproxyDoc, sidecarDoc, ptproxyDoc }: ReturnType<typeof arbitraries>) {
  return fc.oneof(
    nativeDoc.chain((d) =>
      fc.constantFrom(
        { text: yamlStringify(d), file: 'c.yaml' },
        { text: JSON.stringify(d), file: 'c.json' },
        { text: JSON.stringify(d, null, 1), file: 'config' },
      ),
    ),
    nativeDoc.map((d) => ({ text: tomlText(d), file: 'c.toml' })),
    flyDoc.map((d) => ({ text: JSON.stringify(d), file: 'fly.json' })),
    tcpproxyDoc.map((d) => ({ text: yamlStringify(d), file: 'config.yaml' })),
    sidecarDoc.map((d) => ({ text: yamlStringify(d), file: 'sidecar.yaml' })),
    ptproxyDoc.map((d) => ({ text: tomlText(d), file: 'ptproxy.toml' })),
  )
}
const configFile = fc.oneof(files(arbitraries(false)), files(arbitraries(true)))

/** The same files with a few bytes edited, and text that is barely a config at all. */
const damagedFile = fc.oneof(
  fc
    .tuple(
      configFile,
      fc.array(
        fc.tuple(
          fc.nat(),
          fc.nat({ max: 3 }),
          fc.constantFrom('', ':', '\n', '"', '[', '{', ' ', '\t', '-', '#', '=', '\0', 'x'),
        ),
        { minLength: 1, maxLength: 3 },
      ),
    )
    .map(([f, edits]) => {
      let t = f.text
      for (const [at, del, ins] of edits) {
        const i = t.length ? at % t.length : 0
        t = t.slice(0, i) + ins + t.slice(i + del)
      }
      return { text: t, file: f.file }
    }),
  fc.record({
    text: fc.string({ maxLength: 60 }),
    file: fc.constantFrom('c.yaml', 'c.json', 'c.toml', 'config'),
  }),
  fc.constantFrom(
    { text: 'a: &a [*a]', file: 'c.yaml' },
    { text: 'x: !!binary AAAA', file: 'c.yaml' },
    { text: '[[apps]]\nname = 1', file: 'c.toml' },
    { text: '{"apps": [{"name": "a", "listen": [1], "targets": ["a:1"]}], "apps": []}', file: 'c.json' },
    { text: `${'- '.repeat(200)}x`, file: 'c.yaml' },
    { text: `${'['.repeat(2000)}`, file: 'c.json' },
  ),
)

/** Load, or the ConfigError's code; anything else thrown fails the property. */
function load(text: string, file: string): Config | string {
  try {
    return loadConfigText(text, file).config
  } catch (err) {
    const code = coded(err, ['ERR_CONFIG_PARSE', 'ERR_CONFIG_INVALID'])
    assert.ok(err instanceof ConfigError)
    assert.ok(err.issues.length > 0, 'an error names at least one problem')
    for (const i of err.issues) {
      assert.equal(typeof i.message, 'string')
      assert.ok(i.message.length > 0)
      if (i.line !== undefined) assert.ok(Number.isInteger(i.line) && i.line >= 1)
    }
    return code
  }
}

const durationKeys = new Set([
  'drainTimeout',
  'ttl',
  'minTtl',
  'maxTtl',
  'negativeTtl',
  'timeout',
  'connectTimeout',
  'connectBudget',
  'idleTimeout',
  'interval',
  'cooldown',
  'upstreamTimeout',
  'headerTimeout',
  'bodyTimeout',
  'keepaliveInterval',
  'connectInterval',
  'requestTimeout',
  'latency',
  'jitter',
  'stddev',
  'min',
  'max',
  'scale',
  'amplitude',
  'delay',
  'retransmit',
  'maxRetransmit',
  'keepAlive',
])

/** Every duration in the config (by field name, anywhere) is one a timer can wait for. */
function checkBounds(c: Config): void {
  const walk = (x: unknown, path: string): void => {
    if (Array.isArray(x)) {
      for (let i = 0; i < x.length; i++) walk(x[i], `${path}[${i}]`)
    } else if (x && typeof x === 'object') {
      for (const [k, y] of Object.entries(x)) {
        if (typeof y === 'number' && durationKeys.has(k) && k !== 'quic')
          assert.ok(Number.isFinite(y) && y >= 0 && y <= timerMax, `${path}.${k} = ${y}`)
        if (k !== 'quic') walk(y, `${path}.${k}`)
      }
    }
  }
  walk(c, 'config')
  const names = c.apps.map((a) => a.name)
  assert.equal(new Set(names).size, names.length)
  for (const a of c.apps) for (const l of a.listen) assert.ok(l.port >= 1 && l.port <= 65535)
}

/**
 * A Config without what printing does not keep: where it came from, the admin token (printed ***),
 * and a tunnel's report of which ptproxy QUIC fields it mapped (printed as the fields they set).
 */
function comparable(c: Config): unknown {
  return {
    ...c,
    source: null,
    admin: c.admin ? { ...c.admin, token: c.admin.token ? '***' : null } : null,
    apps: c.apps.map((a) =>
      a.kind === 'tunnel'
        ? { ...a, mapped: null, quic: Object.fromEntries(Object.keys(a.ignored).map((k) => [k, a.quic[k]])) }
        : a,
    ),
  }
}

test('any config text: a Config that keeps its bounds, or a ConfigError naming each problem', () => {
  const formats = new Map<string, number>()
  check(
    fc.property(fc.oneof(configFile, damagedFile), ({ text, file }) => {
      const c = load(text, file)
      if (typeof c !== 'string') {
        checkBounds(c)
        formats.set(c.source.format, (formats.get(c.source.format) ?? 0) + 1)
      }
    }),
    600,
  )
  // Each format must load often enough for the bounds to be checked on it.
  for (const f of ['sluice', 'fly', 'tcpproxy', 'sidecar', 'ptproxy'])
    assert.ok(
      (formats.get(f) ?? 0) >= Math.floor(5 * Math.min(1, scale)),
      `${f}: only ${formats.get(f) ?? 0} loaded (${[...formats]})`,
    )
})

test('what sluice check prints reads back to the same config, in YAML and JSON', () => {
  let loaded = 0
  check(
    fc.property(configFile, ({ text, file }) => {
      const c = load(text, file)
      if (typeof c === 'string') return
      loaded++
      const doc = toDocument(c)
      for (const [printed, as] of [
        [yamlStringify(doc), 'printed.yaml'],
        [JSON.stringify(doc, null, 2), 'printed.json'],
      ] as const) {
        const again = load(printed, as)
        assert.ok(typeof again !== 'string', `the printed config does not load (${again}):\n${printed}`)
        assert.equal(again.source.format, 'sluice')
        assert.deepEqual(comparable(again), comparable(c))
        assert.deepEqual(toDocument(again), doc)
      }
    }),
    600,
  )
  // The generators must reach valid configs often enough for the round trip to mean something.
  assert.ok(loaded >= Math.floor(30 * Math.min(1, scale)), `only ${loaded} generated configs loaded`)
})
