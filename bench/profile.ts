// npm run bench:profile -- [keepalive|newconn]: run sluice under --cpu-prof while wrk drives it
// through an nginx origin, then print where its CPU time went (self time by function).
import { spawn, spawnSync } from 'node:child_process'
import { mkdirSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { connect } from 'node:net'
import { join, resolve } from 'node:path'
import { freePort } from '../src/testkit/ports.ts'

const root = resolve(import.meta.dirname, '..')
const work = join(root, 'bench', '.work', 'profile')
const mode = process.argv[2] ?? 'keepalive'
rmSync(work, { recursive: true, force: true })
mkdirSync(work, { recursive: true })
const [origin, port] = [await freePort(), await freePort()]
writeFileSync(
  join(work, 'origin.conf'),
  `daemon off; master_process off; worker_processes 1; error_log stderr warn; pid ${work}/o.pid;
events { worker_connections 20000; }
http { access_log off; keepalive_requests 100000000; server { listen 127.0.0.1:${origin}; location / { return 200 "${'y'.repeat(1023)}\n"; } } }\n`,
)
writeFileSync(
  join(work, 'sluice.yaml'),
  `admin: false\nlog: {level: warn}\napps: [{name: p, listen: ["127.0.0.1:${port}"], targets: ["127.0.0.1:${origin}"]}]\n`,
)
const o = spawn('nginx', ['-p', work, '-e', 'stderr', '-c', join(work, 'origin.conf')], { stdio: 'inherit' })
const s = spawn(
  process.execPath,
  [
    '--cpu-prof',
    `--cpu-prof-dir=${work}`,
    join(root, 'dist/cli/main.js'),
    'run',
    '-c',
    join(work, 'sluice.yaml'),
    '--admin',
    'off',
  ],
  { stdio: 'inherit' },
)
for (const p of [origin, port]) {
  for (;;) {
    const ok = await new Promise((r) => {
      const c = connect(p, '127.0.0.1', () => {
        c.destroy()
        r(true)
      })
      c.on('error', () => r(false))
    })
    if (ok) break
    await new Promise((r) => setTimeout(r, 50))
  }
}
const args = ['-t1', mode === 'newconn' ? '-c16' : '-c64', '-d6s', '-H', `X-Pad: ${'x'.repeat(900)}`]
if (mode === 'newconn') args.push('-H', 'Connection: close')
console.log(
  spawnSync('wrk', [...args, `http://127.0.0.1:${port}/`])
    .stdout.toString()
    .split('\n')
    .filter((l) => /Requests\/sec/.test(l))
    .join('\n'),
)
s.kill('SIGINT')
await new Promise((r) => s.once('exit', r))
o.kill('SIGKILL')
const file = readdirSync(work).find((f) => f.endsWith('.cpuprofile'))!
const prof = JSON.parse(readFileSync(join(work, file), 'utf8')) as {
  nodes: {
    id: number
    callFrame: { functionName: string; url: string; lineNumber: number }
    hitCount: number
  }[]
}
const total = prof.nodes.reduce((a, n) => a + n.hitCount, 0)
const by = new Map<string, number>()
for (const n of prof.nodes) {
  const f = n.callFrame
  const key = `${f.functionName || '(anon)'} ${f.url.replace(/^.*\/(node_modules|dist|lib)\//, '$1/').replace('node:internal/', '')}:${f.lineNumber + 1}`
  by.set(key, (by.get(key) ?? 0) + n.hitCount)
}
for (const [k, v] of [...by].sort((a, b) => b[1] - a[1]).slice(0, 40))
  console.log(`${((v / total) * 100).toFixed(1).padStart(5)}%  ${k}`)
