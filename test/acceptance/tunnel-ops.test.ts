// Acceptance, the tunnel in operation (issue 11): certificates refused on either side, the origin
// pool reused between loads. Two sluice processes as in tunnel.test.ts.
import assert from 'node:assert/strict'
import { spawn } from 'node:child_process'
import { test } from 'node:test'
import { curl, testScope } from '../helpers.ts'
import { tunnelKit } from './tunnel-kit.ts'

const t = testScope()
const { origin, pair } = tunnelKit(t)

/** `n` GETs through the tunnel at once (curl --parallel), each on its own connection; their status codes. */
async function parallel(url: string, n: number): Promise<string[]> {
  const args = ['-s', '-o', '/dev/null', '-w', '%{http_code}\\n', '--parallel', '--parallel-max', String(n)]
  for (let i = 0; i < n; i++) args.push(`${url}/p${i}`)
  const out = await new Promise<string>((resolve) => {
    const c = spawn('curl', args)
    let s = ''
    c.stdout.setEncoding('utf8').on('data', (d: string) => (s += d))
    c.on('exit', () => resolve(s))
  })
  return out.match(/\d{3}/g) ?? []
}

test('the origin pool: after a load stops, the next one reuses the connections to B', async () => {
  const o = await origin((_req, res) => setTimeout(() => res.end('ok'), 20))
  const p = await pair({ originPort: o.port })
  await p.up()
  for (let i = 0; i < 10; i++) assert.equal((await curl([`${p.url}/s${i}`])).status, 200)
  const sequential = o.accepted
  assert.ok(sequential <= 2, `${sequential} connections for sequential requests`)
  await new Promise((r) => setTimeout(r, 1000))
  for (let i = 0; i < 10; i++) assert.equal((await curl([`${p.url}/t${i}`])).status, 200)
  assert.equal(o.accepted, sequential, 'sequential requests after a pause reuse the pooled connection')
  // A parallel load opens up to one connection per request; the next one finds them in the pool.
  const first = await parallel(p.url, 20)
  assert.equal(first.filter((c) => c === '200').length, 20, first.join(' '))
  const afterLoad = o.accepted
  assert.ok(afterLoad <= sequential + 20, `${afterLoad} connections`)
  await new Promise((r) => setTimeout(r, 1000))
  const second = await parallel(p.url, 20)
  assert.equal(second.filter((c) => c === '200').length, 20, second.join(' '))
  assert.equal(o.accepted, afterLoad, 'the second load opened no new connection to B')
})
