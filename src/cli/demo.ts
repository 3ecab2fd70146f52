// `sluice demo`: real proxying with no other software. Starts backends inside the process, puts
// two balanced apps in front of them, shows a few connections going through, then stays up for
// the user to try with nc and curl.
import { request } from 'node:http'
import { startEngine } from '../api/engine.ts'
import { normalizeConfigObject } from '../config/normalize.ts'
import { createLogger } from '../observe/logger.ts'
import { balancer } from '../testkit/client.ts'
import { type Fixture, httpOrigin, identServer } from '../testkit/fixtures.ts'
import { freePort, preferPort } from '../testkit/ports.ts'
import { parse } from './args.ts'
import { overrides } from './run.ts'

export const demoHelp = `Usage: sluice demo [--once] [--log-level LEVEL]

Starts two echo backends, one dead target and two HTTP origins inside this process, and sluice in
front of them: app "echo" (round-robin with failover) and app "web" (least-connections with health
checks), plus the admin API. Shows some traffic going through, then waits for you to try it.

      --once         show the traffic, then exit (for scripts)
      --log-level L  log level for sluice's own logs (default warn)
`

function get(url: string): Promise<string> {
  return new Promise((resolve, reject) => {
    request(url, { agent: false }, (res) => {
      let body = ''
      res.setEncoding('utf8')
      res.on('data', (d) => (body += d))
      res.on('end', () => resolve(body))
    })
      .on('error', reject)
      .end()
  })
}

export async function demo(argv: string[]): Promise<number | null> {
  const { values } = parse('demo', argv, { once: { type: 'boolean' }, 'log-level': { type: 'string' } })
  if (values.help) {
    process.stdout.write(demoHelp)
    return 0
  }
  const out = (s = '') => process.stdout.write(`${s}\n`)
  const backends: Fixture[] = [
    await identServer({ name: 'backend-1' }),
    await identServer({ name: 'backend-2' }),
    await httpOrigin({ name: 'origin-1' }),
    await httpOrigin({ name: 'origin-2' }),
  ]
  const [b1, b2, o1, o2] = backends as [Fixture, Fixture, Fixture, Fixture]
  const dead = `127.0.0.1:${await freePort()}`
  const echoPort = await preferPort(7001, '127.0.0.1')
  const webPort = await preferPort(7002, '127.0.0.1')
  const adminPort = await preferPort(8474, '127.0.0.1')
  const config = normalizeConfigObject({
    admin: `127.0.0.1:${adminPort}`,
    apps: [
      { name: 'echo', listen: [`127.0.0.1:${echoPort}`], targets: [b1.address, dead, b2.address] },
      {
        name: 'web',
        listen: [`127.0.0.1:${webPort}`],
        targets: [o1.address, o2.address],
        strategy: 'least-connections',
        health: { interval: '1s' },
      },
    ],
  })
  const level = values['log-level'] ?? 'warn'
  const running = await startEngine(
    { config },
    {
      file: null,
      overrides: overrides({ logLevel: level }),
      log: createLogger({ level: level as 'warn', format: 'pretty' }),
    },
  )
  out('sluice demo: real sockets, real proxying, nothing else needed.')
  out()
  out(
    `  app "echo"  127.0.0.1:${echoPort}  round-robin over backend-1 (${b1.address}), a dead target (${dead}), backend-2 (${b2.address})`,
  )
  out(
    `  app "web"   127.0.0.1:${webPort}  least-connections over origin-1 (${o1.address}), origin-2 (${o2.address}), health-checked`,
  )
  out(`  admin API   http://127.0.0.1:${adminPort}  (/status, /metrics, /healthz)`)
  out()
  out(
    'Nine connections to "echo" (each backend greets with its name; the dead target is skipped, then ejected):',
  )
  const r = await balancer(
    { host: '127.0.0.1', port: echoPort },
    { expect: [], count: 9, send: Buffer.alloc(0), timeout: 3000 },
  )
  for (const [i, reply] of r.replies.entries()) out(`  connection ${i + 1} → ${reply}`)
  out()
  out('Four HTTP requests to "web":')
  for (let i = 1; i <= 4; i++) out(`  GET / → ${(await get(`http://127.0.0.1:${webPort}/`)).trim()}`)
  const status = JSON.parse(await get(`http://127.0.0.1:${adminPort}/status`)) as {
    apps: { name: string; targets: { address: string; up: boolean; totalConnections: number }[] }[]
  }
  const echo = status.apps.find((a) => a.name === 'echo')!
  out()
  out('What the admin API says about "echo":')
  for (const t of echo.targets)
    out(`  ${t.address.padEnd(22)} ${t.up ? 'up  ' : 'DOWN'}  connections: ${t.totalConnections}`)
  if (values.once) {
    await running.stop()
    for (const b of backends) await b.close()
    return 0
  }
  out()
  out('Try it yourself:')
  out(
    `  nc 127.0.0.1 ${echoPort}                      # type a line: it comes back; the first line names the backend`,
  )
  out(`  curl http://127.0.0.1:${webPort}/`)
  out(`  curl -s http://127.0.0.1:${adminPort}/status`)
  out(`  curl -s http://127.0.0.1:${adminPort}/metrics | grep ^sluice_connections`)
  out(`  npx sluice test balancer 127.0.0.1:${echoPort} --count 6`)
  out(`  npx sluice test simulate 127.0.0.1:${echoPort} --clients 50 --requests 100`)
  out()
  out('Press Ctrl-C to stop.')
  let stopping = false
  const stop = async () => {
    if (stopping) process.exit(130)
    stopping = true
    await running.stop()
    for (const b of backends) await b.close()
    process.exit(0)
  }
  process.on('SIGINT', stop)
  process.on('SIGTERM', stop)
  return null
}
