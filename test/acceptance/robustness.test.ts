// Bad conditions and bad input must not crash sluice or leave it broken.
import assert from 'node:assert/strict'
import { spawn } from 'node:child_process'
import { randomBytes } from 'node:crypto'
import { writeFileSync } from 'node:fs'
import { connect } from 'node:net'
import { test } from 'node:test'
import { echoServer } from '../../src/testkit/fixtures.ts'
import { freePort } from '../../src/testkit/ports.ts'
import { cli, exchange, root, runSluice, testScope, waitFor } from '../helpers.ts'

const t = testScope()

test('running out of file descriptors costs connections, not the process', async () => {
  const e1 = await echoServer()
  t.defer(() => e1.close())
  const port = await freePort()
  const file = t.tmp.file(
    'fd.yaml',
    `admin: false\napps: [{name: a, listen: ["127.0.0.1:${port}"], targets: ["${e1.address}"]}]\n`,
  )
  const child = spawn(
    'sh',
    ['-c', `ulimit -n 64 && exec "${process.execPath}" "${cli}" run -c "${file}" --log-format json`],
    {
      cwd: root,
      stdio: 'ignore',
    },
  )
  t.defer(() => child.kill('SIGKILL'))
  await waitFor(async () => (await exchange(port, 'up')).data.toString() === 'up', 'sluice to serve')
  const sockets = Array.from({ length: 120 }, () => {
    const s = connect(port, '127.0.0.1')
    s.on('error', () => {})
    return s
  })
  await new Promise((r) => setTimeout(r, 500))
  for (const s of sockets) s.destroy()
  assert.equal(child.exitCode, null, 'still running')
  await waitFor(
    async () => (await exchange(port, 'after')).data.toString() === 'after',
    'service after the flood',
    5000,
  )
})

test('garbage on the admin port and a binary config file leave sluice running', async () => {
  const e1 = await echoServer()
  t.defer(() => e1.close())
  const port = await freePort()
  const file = t.tmp.file('g.yaml', `apps: [{name: a, listen: [${port}], targets: ["${e1.address}"]}]\n`)
  const p = await runSluice(file)
  t.defer(() => p.stop())
  const admin = new URL(await p.admin())
  await new Promise<void>((resolve) => {
    const s = connect(Number(admin.port), admin.hostname, () => s.end(randomBytes(4096)))
    s.resume()
    s.on('error', () => resolve())
    s.on('close', () => resolve())
  })
  writeFileSync(file, randomBytes(2048))
  await p.waitLog((l) => String(l.msg).startsWith('config rejected'), 'the binary file rejected', 3000)
  // A request that never finishes its headers is dropped, not held for a minute.
  const slow = connect(Number(admin.port), admin.hostname, () => slow.write('GET /sta'))
  slow.resume()
  slow.on('error', () => {})
  await waitFor(() => slow.destroyed || slow.readableEnded, 'the admin API to drop a half-sent request', 8000)
  assert.equal((await fetch(`${admin.origin}/healthz`)).status, 200)
  assert.equal((await exchange(port, 'fine')).data.toString(), 'fine')
})

test('clients that reset mid-stream, in numbers, leave no connection behind', async () => {
  const e1 = await echoServer()
  t.defer(() => e1.close())
  const port = await freePort()
  const p = await runSluice(
    t.tmp.file('rst.yaml', `apps: [{name: a, listen: [${port}], targets: ["${e1.address}"]}]\n`),
  )
  t.defer(() => p.stop())
  const admin = await p.admin()
  await Promise.all(
    Array.from(
      { length: 200 },
      (_, i) =>
        new Promise<void>((resolve) => {
          const s = connect(port, '127.0.0.1', () => {
            s.write(randomBytes(1024 * (i % 8)))
            setImmediate(() => (i % 2 ? s.resetAndDestroy() : s.destroy()))
          })
          s.on('error', () => {})
          s.on('close', () => resolve())
        }),
    ),
  )
  const active = async () => {
    const m = await (await fetch(`${admin}/metrics`)).text()
    return Number(/sluice_connections_active\{app="a",listener="[^"]+"\} (\d+)/.exec(m)?.[1] ?? -1)
  }
  await waitFor(
    async () => (await active()) === 0 && e1.sockets.size === 0,
    'every connection closed on both sides',
    5000,
  )
})
