// fault's flags read into a config by proxyPlan, without starting anything.
import assert from 'node:assert/strict'
import { test } from 'node:test'
import { proxyPlan } from '../../src/cli/proxy.ts'
import { normalizeConfigObject } from '../../src/config/normalize.ts'

const plan = (args: string[]) => proxyPlan(['--proxy', '9090=127.0.0.1:1', ...args], async () => 40000)

test('millisecond flags become durations the config reads back, up to the longest duration', async () => {
  for (const mean of ['5e-324', '1e-7', '0.5', '250']) {
    const p = await plan(['--with-latency', '--latency-mean', mean])
    const config = normalizeConfigObject(p!.doc, '<command line>')
    const app = config.apps[0]!
    assert.equal(app.faults[0]!.type === 'latency' && app.faults[0]!.latency, Number(mean), mean)
  }
  await assert.rejects(plan(['--with-latency', '--latency-mean', '3e9']), {
    code: 'ERR_USAGE',
    message: /--latency-mean must be a number greater than 0 and at most 2147483647, not "3e9"/,
  })
  await assert.rejects(plan(['--with-jitter', '--jitter-amplitude', '1e12']), { code: 'ERR_USAGE' })
})

test('mappings on one port and different addresses are apps of their own', async () => {
  const p = await proxyPlan(
    ['--proxy', '127.0.0.1:9090=a.b:1', '--proxy', '[::1]:9090=http://c.d', '--with-bandwidth'],
    async () => 40000,
  )
  const config = normalizeConfigObject(p!.doc, '<command line>')
  assert.deepEqual(
    config.apps.map((a) => [a.name, a.listen[0]!.key]),
    [
      ['proxy-9090', '127.0.0.1:9090'],
      ['proxy-9090-2', '[::1]:9090'],
      ['proxy-9090-2-bytes', '127.0.0.1:40000'],
    ],
  )
})
