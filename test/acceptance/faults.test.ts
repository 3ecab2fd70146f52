// Acceptance: ../shared/acceptance/faults.md, faults on TCP streams (T1-T20, F1-F7). One sluice
// process; each test makes its own proxy through the Toxiproxy API and talks to it over loopback.
import assert from 'node:assert/strict'
import { createHash, randomBytes } from 'node:crypto'
import { connect, createServer, type Server, type Socket } from 'node:net'
import { before, test } from 'node:test'
import { echoServer } from '../../src/testkit/fixtures.ts'
import { freePort } from '../../src/testkit/ports.ts'
import { exchange, openEcho, type SluiceProcess, testScope, waitFor } from '../helpers.ts'

const t = testScope()
let sluice: SluiceProcess
let base = ''

before(async () => {
  sluice = await t.sluice(t.tmp.file('faults.yaml', 'apps: []\n'), ['--log-level', 'info'])
  base = await sluice.admin()
})

/** Call the admin API; returns status and parsed body. */
async function api(method: string, path: string, body?: unknown): Promise<{ status: number; body: any }> {
  const res = await fetch(`${base}${path}`, {
    method,
    headers: body === undefined ? {} : { 'content-type': 'application/json' },
    body: body === undefined ? undefined : JSON.stringify(body),
  })
  const text = await res.text()
  return { status: res.status, body: text ? JSON.parse(text) : undefined }
}

let proxies = 0
/** A Toxiproxy proxy to `upstream`; returns its name and port. */
async function proxy(upstream: string): Promise<{ name: string; port: number }> {
  const name = `p${++proxies}`
  const r = await api('POST', '/proxies', { name, listen: '127.0.0.1:0', upstream })
  assert.equal(r.status, 201, JSON.stringify(r.body))
  return { name, port: Number(r.body.listen.split(':').pop()) }
}

async function toxic(p: string, body: Record<string, unknown>): Promise<any> {
  const r = await api('POST', `/proxies/${p}/toxics`, body)
  assert.equal(r.status, 200, JSON.stringify(r.body))
  return r.body
}

async function echo() {
  return t.fixture(echoServer())
}

/** A server that records what it receives, with the time of each chunk. */
async function recorder(): Promise<{
  address: string
  chunks: { at: number; data: Buffer }[]
  ended: Promise<number>
  sockets: Set<Socket>
}> {
  const chunks: { at: number; data: Buffer }[] = []
  const sockets = new Set<Socket>()
  let endedResolve: (at: number) => void = () => {}
  const ended = new Promise<number>((r) => {
    endedResolve = r
  })
  const s: Server = createServer({ allowHalfOpen: true }, (c) => {
    sockets.add(c)
    c.on('data', (d: Buffer) => chunks.push({ at: performance.now(), data: d }))
    c.on('end', () => {
      endedResolve(performance.now())
      c.end()
    })
    c.on('error', () => {})
    c.on('close', () => sockets.delete(c))
  })
  await new Promise<void>((r) => s.listen(0, '127.0.0.1', () => r()))
  t.defer(() => {
    for (const c of sockets) c.destroy()
    s.close()
  })
  return { address: `127.0.0.1:${(s.address() as { port: number }).port}`, chunks, ended, sockets }
}

const received = (chunks: { data: Buffer }[]) => Buffer.concat(chunks.map((c) => c.data))

/** Write `data` on a new connection and time until `expect` bytes came back. */
async function roundTrip(port: number, data: Buffer | string, socket?: Socket): Promise<number> {
  const s = socket ?? connect(port, '127.0.0.1')
  if (!socket) await new Promise<void>((r) => s.once('connect', () => r()))
  const want = Buffer.byteLength(data)
  return new Promise((resolve, reject) => {
    let got = 0
    const t0 = performance.now()
    const onData = (d: Buffer) => {
      got += d.length
      if (got >= want) {
        s.removeListener('data', onData)
        s.removeListener('error', reject)
        if (!socket) s.destroy()
        resolve(performance.now() - t0)
      }
    }
    s.on('data', onData)
    s.once('error', reject)
    s.write(data)
  })
}

test('T1: without faults the bytes arrive identical and in order, then EOF', async () => {
  const r = await recorder()
  const p = await proxy(r.address)
  const big = randomBytes(65536)
  const s = connect(p.port, '127.0.0.1')
  await new Promise<void>((res) => s.once('connect', () => res()))
  s.write('hello world')
  s.write(big)
  s.write('hello world')
  s.write('hello world')
  s.end()
  await r.ended
  assert.ok(
    received(r.chunks).equals(
      Buffer.concat([Buffer.from('hello world'), big, Buffer.from('hello worldhello world')]),
    ),
  )
  s.destroy()
})

test('T2: a fault-free hop adds little latency', async () => {
  const e = await echo()
  const p = await proxy(e.address)
  const mean = async (port: number) => {
    const s = connect(port, '127.0.0.1')
    await new Promise<void>((r) => s.once('connect', () => r()))
    let total = 0
    for (let i = 0; i < 100; i++) total += await roundTrip(port, 'x'.repeat(12), s)
    s.destroy()
    return total / 100
  }
  const direct = await mean(e.port)
  const through = await mean(p.port)
  assert.ok(through - direct < 2, `added ${(through - direct).toFixed(3)} ms per round trip`)
})

test('T3: latency to-upstream delays the request, not the reply', async () => {
  const e = await echo()
  const p = await proxy(e.address)
  await toxic(p.name, { type: 'latency', stream: 'upstream', attributes: { latency: 100, jitter: 0 } })
  const ms = await roundTrip(p.port, `${'a'.repeat(32779)}\n`)
  assert.ok(ms >= 98 && ms <= 125, `round trip ${ms.toFixed(1)} ms`)
})

test('T4: latency each way adds up', async () => {
  const e = await echo()
  const p = await proxy(e.address)
  const set = async (up: number, down: number) => {
    await api('POST', '/reset')
    if (up) await toxic(p.name, { type: 'latency', stream: 'upstream', attributes: { latency: up } })
    if (down) await toxic(p.name, { type: 'latency', stream: 'downstream', attributes: { latency: down } })
  }
  for (const [up, down] of [
    [0, 100],
    [1000, 100],
    [100, 1000],
    [0, 0],
  ] as const) {
    await set(up, down)
    const ms = await roundTrip(p.port, 'ping\n')
    assert.ok(Math.abs(ms - (up + down)) <= 40, `up ${up} down ${down}: round trip ${ms.toFixed(1)} ms`)
  }
})

test('T5: latency 200 ± 50 stays within its bounds', async () => {
  const e = await echo()
  const p = await proxy(e.address)
  await toxic(p.name, { type: 'latency', attributes: { latency: 200, jitter: 50 } })
  // Fresh connections, five at a time: fifty at once would time sluice's upstream dials too.
  const delays: number[] = []
  for (let i = 0; i < 10; i++)
    delays.push(...(await Promise.all(Array.from({ length: 5 }, () => roundTrip(p.port, 'x')))))
  // Never below 150; above 250 only by transit, which a loaded 2-core machine can stretch by tens of ms.
  for (const d of delays) assert.ok(d >= 150 && d <= 300, `delay ${d.toFixed(1)} ms`)
  assert.ok(Math.max(...delays) - Math.min(...delays) > 20, 'jitter varies the delay')
})

test('T6: two latency faults stack', async () => {
  const e = await echo()
  const p = await proxy(e.address)
  await toxic(p.name, { name: 'one', type: 'latency', stream: 'upstream', attributes: { latency: 500 } })
  await toxic(p.name, { name: 'two', type: 'latency', stream: 'upstream', attributes: { latency: 500 } })
  const ms = await roundTrip(p.port, `${'b'.repeat(32 * 1024 - 1)}\n`)
  assert.ok(ms >= 998 && ms <= 1030, `round trip ${ms.toFixed(1)} ms`)
})

test('T7: latency is pipelined: it does not cut throughput', async () => {
  const chunk = randomBytes(12_000)
  const s = createServer((c) => {
    c.on('error', () => {})
    const pump = () => {
      while (!c.destroyed && c.write(chunk)) {}
    }
    c.on('drain', pump)
    pump()
  })
  await new Promise<void>((r) => s.listen(0, '127.0.0.1', () => r()))
  t.defer(() => s.close())
  const p = await proxy(`127.0.0.1:${(s.address() as { port: number }).port}`)
  await toxic(p.name, { type: 'latency', stream: 'downstream', attributes: { latency: 100 } })
  const c = connect(p.port, '127.0.0.1')
  c.pause()
  await new Promise((r) => setTimeout(r, 150))
  const t0 = performance.now()
  let n = 0
  await new Promise<void>((resolve) => {
    c.on('data', (d: Buffer) => {
      n += d.length
      if (n >= 1_200_000) resolve()
    })
    c.resume()
  })
  const ms = performance.now() - t0
  c.destroy()
  assert.ok(ms <= 150, `1.2 MB took ${ms.toFixed(1)} ms`)
})

test('T8: bandwidth 1000 KB/s spreads 480 000 bytes over about 480 ms', async () => {
  const r = await recorder()
  const p = await proxy(r.address)
  await toxic(p.name, { type: 'bandwidth', stream: 'upstream', attributes: { rate: 1000 } })
  const data = randomBytes(480_000)
  const s = connect(p.port, '127.0.0.1', () => s.end(data))
  s.on('error', () => {})
  await r.ended
  assert.ok(received(r.chunks).equals(data))
  const span = r.chunks.at(-1)!.at - r.chunks[0]!.at
  assert.ok(span >= 432 - 10 && span <= 528, `spread over ${span.toFixed(1)} ms`)
})

test('T9: timeout to-client stops data and closes after the timeout', async () => {
  const e = await echo()
  const p = await proxy(e.address)
  await toxic(p.name, { type: 'timeout', stream: 'downstream', toxicity: 1, attributes: { timeout: 100 } })
  const t0 = performance.now()
  const r = await exchange(p.port, 'x', { halfClose: false, timeoutMs: 2000 })
  assert.equal(r.error, null)
  assert.equal(r.data.length, 0)
  assert.ok(performance.now() - t0 < 150 + 30, `EOF after ${(performance.now() - t0).toFixed(0)} ms`)
})

test('T10: raising toxicity applies the fault to a live connection', async () => {
  const e = await echo()
  const p = await proxy(e.address)
  await toxic(p.name, {
    name: 'to',
    type: 'timeout',
    stream: 'downstream',
    toxicity: 0,
    attributes: { timeout: 100 },
  })
  const c = await openEcho(p.port)
  assert.equal(await c.say('1'), '1')
  let endedAt = 0
  c.socket.on('end', () => {
    endedAt = performance.now()
  })
  const t0 = performance.now()
  const u = await api('PATCH', `/proxies/${p.name}/toxics/to`, { toxicity: 1, attributes: { timeout: 100 } })
  assert.equal(u.status, 200)
  await waitFor(() => endedAt > 0, 'EOF on the same connection', 1000)
  assert.ok(endedAt - t0 < 150 + 30, `EOF after ${(endedAt - t0).toFixed(0)} ms`)
})

test('T11: timeout 0 holds the connection open; removing it closes both ends', async () => {
  const r = await recorder()
  const p = await proxy(r.address)
  const s = connect(p.port, '127.0.0.1')
  await new Promise<void>((res) => s.once('connect', () => res()))
  await waitFor(() => r.sockets.size === 1, 'the upstream connection')
  await toxic(p.name, { name: 'hold', type: 'timeout', stream: 'upstream', attributes: { timeout: 0 } })
  s.write('lost')
  let clientEnded = false
  s.on('end', () => {
    clientEnded = true
  })
  await new Promise((res) => setTimeout(res, 500))
  assert.equal(received(r.chunks).length, 0)
  assert.equal(s.destroyed, false)
  assert.equal(clientEnded, false)
  assert.equal((await api('DELETE', `/proxies/${p.name}/toxics/hold`)).status, 204)
  await r.ended
  await waitFor(() => clientEnded, 'the client to see EOF', 1000)
  s.destroy()
})

test('T11b: timeout closes the connection when its source ends, as Toxiproxy, whatever the timeout', async () => {
  for (const timeout of [0, 60_000]) {
    const r = await recorder()
    const p = await proxy(r.address)
    await toxic(p.name, { type: 'timeout', stream: 'upstream', attributes: { timeout } })
    const s = connect(p.port, '127.0.0.1')
    let clientEnded = false
    let upstreamEnded = false
    s.on('end', () => {
      clientEnded = true
    })
    s.on('error', () => {})
    void r.ended.then(() => {
      upstreamEnded = true
    })
    await new Promise<void>((res) => s.once('connect', () => res()))
    // Toxiproxy's TimeoutToxic drops data, but an end of stream on its input closes the link.
    s.end('dropped')
    await waitFor(() => upstreamEnded, `timeout ${timeout}: the target to see EOF`, 2000)
    await waitFor(() => clientEnded, `timeout ${timeout}: the client to see EOF`, 2000)
    assert.equal(received(r.chunks).length, 0, `timeout ${timeout}: the data was dropped`)
    s.destroy()
  }
})

test('T11c: timeout counts from the last chunk it dropped, as Toxiproxy: steady data keeps it open', async () => {
  const r = await recorder()
  const p = await proxy(r.address)
  await toxic(p.name, { type: 'timeout', stream: 'upstream', attributes: { timeout: 400 } })
  const s = connect(p.port, '127.0.0.1')
  let endedAt = 0
  s.on('end', () => {
    endedAt = performance.now()
  })
  s.on('error', () => {})
  await new Promise<void>((res) => s.once('connect', () => res()))
  // Toxiproxy's TimeoutToxic arms a new timer each time it takes (and drops) a chunk.
  let lastWrite = 0
  for (let i = 0; i < 20; i++) {
    s.write(`w${i}`)
    lastWrite = performance.now()
    await new Promise((res) => setTimeout(res, 50))
  }
  assert.equal(endedAt, 0, 'still open while data keeps coming')
  await waitFor(() => endedAt > 0, 'the close after the data stops', 2000)
  const quiet = endedAt - lastWrite
  assert.ok(quiet >= 380, `closed ${quiet.toFixed(0)} ms after the last write`)
  assert.equal(received(r.chunks).length, 0)
  s.destroy()
})

test('T12: removing a fault answers at once, even with another fault stalling the flow', async () => {
  const e = await echo()
  const p = await proxy(e.address)
  const c = await openEcho(p.port)
  await toxic(p.name, { name: 'lat', type: 'latency', stream: 'upstream', attributes: { latency: 10 } })
  await toxic(p.name, { name: 'hold', type: 'timeout', stream: 'upstream', attributes: { timeout: 0 } })
  for (let i = 0; i < 5; i++) {
    c.socket.write(`w${i}`)
    await new Promise((r) => setTimeout(r, 200))
  }
  const t0 = performance.now()
  const r = await api('DELETE', `/proxies/${p.name}/toxics/lat`)
  assert.equal(r.status, 204)
  assert.ok(performance.now() - t0 <= 1000)
  c.socket.destroy()
})

test('T13: reset_peer 0 resets rather than closes', async () => {
  const e = await echo()
  const p = await proxy(e.address)
  await toxic(p.name, { type: 'reset_peer', stream: 'upstream', attributes: { timeout: 0 } })
  const r = await exchange(p.port, 'line\n', { halfClose: false, timeoutMs: 1000 })
  assert.equal(r.error, 'ECONNRESET')
})

test('T13b: reset_peer acts on the first data, as Toxiproxy does: that data and what follows never pass', async () => {
  for (const timeout of [0, 150]) {
    const r = await recorder()
    const p = await proxy(r.address)
    await toxic(p.name, { type: 'reset_peer', stream: 'upstream', attributes: { timeout } })
    const s = connect(p.port, '127.0.0.1')
    let error = ''
    s.on('error', (e: NodeJS.ErrnoException) => {
      error = e.code ?? e.message
    })
    await new Promise<void>((res) => s.once('connect', () => res()))
    // Idle, the connection is not reset: the timer starts with the first data (Toxiproxy reads a
    // chunk, waits the timeout, then closes with RST).
    await new Promise((res) => setTimeout(res, timeout + 200))
    assert.equal(error, '', `timeout ${timeout}: no reset while idle`)
    s.write('first')
    if (timeout) setTimeout(() => s.write('second'), timeout / 3)
    await waitFor(() => error === 'ECONNRESET', `timeout ${timeout}: the reset`, 2000)
    assert.equal(received(r.chunks).length, 0, `timeout ${timeout}: nothing reached the target`)
  }
})

test('T13c: a reset_peer that has taken its chunk still resets when removed, as Toxiproxy; the API does not wait', async () => {
  const r = await recorder()
  const p = await proxy(r.address)
  await toxic(p.name, { name: 'rp', type: 'reset_peer', stream: 'upstream', attributes: { timeout: 30_000 } })
  const s = connect(p.port, '127.0.0.1')
  let error = ''
  s.on('error', (e: NodeJS.ErrnoException) => {
    error = e.code ?? e.message
  })
  await new Promise<void>((res) => s.once('connect', () => res()))
  s.write('first')
  // Time for the chunks to reach the fault (not an assertion: what follows polls).
  await new Promise((res) => setTimeout(res, 200))
  s.write('second')
  await new Promise((res) => setTimeout(res, 100))
  // Toxiproxy's ResetToxic is asleep on its timer and cannot be interrupted: removing it waits for
  // the timer, then the link closes with RST. sluice resets at once instead of holding the API call.
  const t0 = performance.now()
  assert.equal((await api('DELETE', `/proxies/${p.name}/toxics/rp`)).status, 204)
  assert.ok(performance.now() - t0 < 1000, 'the API answers without waiting for the timeout')
  await waitFor(() => error === 'ECONNRESET', 'the reset', 2000)
  assert.equal(received(r.chunks).length, 0, 'nothing reached the target')
})

test('T14: reset_peer 100 resets no earlier than 100 ms, whichever stream', async () => {
  for (const stream of ['upstream', 'downstream']) {
    const e = await echo()
    const p = await proxy(e.address)
    await toxic(p.name, { type: 'reset_peer', stream, attributes: { timeout: 100 } })
    const t0 = performance.now()
    const r = await exchange(p.port, 'x', { halfClose: false, timeoutMs: 2000 })
    const ms = performance.now() - t0
    assert.equal(r.error, 'ECONNRESET', stream)
    assert.ok(ms >= 95 && ms <= 300, `${stream}: reset after ${ms.toFixed(0)} ms`)
  }
})

test('T15: limit_data lets exactly the limit through, then closes', async () => {
  const r = await recorder()
  const p = await proxy(r.address)
  await toxic(p.name, { type: 'limit_data', stream: 'upstream', attributes: { bytes: 100 } })
  const s = connect(p.port, '127.0.0.1')
  let closed = false
  s.on('close', () => {
    closed = true
  })
  s.on('error', () => {})
  s.resume()
  await new Promise<void>((res) => s.once('connect', () => res()))
  s.write(Buffer.alloc(90, 1))
  await new Promise((res) => setTimeout(res, 50))
  s.write(Buffer.alloc(20, 2))
  await r.ended
  assert.equal(received(r.chunks).length, 100)
  await waitFor(() => closed, 'the client to see the close', 2000)
})

test('T16: limit_data 0 passes nothing and closes when data first arrives', async () => {
  const r = await recorder()
  const p = await proxy(r.address)
  await toxic(p.name, { type: 'limit_data', stream: 'upstream', attributes: { bytes: 0 } })
  const s = connect(p.port, '127.0.0.1')
  let ended = false
  s.on('end', () => {
    ended = true
  })
  s.on('error', () => {})
  s.resume()
  await new Promise<void>((res) => s.once('connect', () => res()))
  await new Promise((res) => setTimeout(res, 100))
  assert.equal(ended, false, 'open until data arrives')
  s.write(Buffer.alloc(100))
  await r.ended
  assert.equal(received(r.chunks).length, 0)
  await waitFor(() => ended, 'the close', 2000)
  s.destroy()
})

test('T16b: a close made by a fault waits for slow_close on the other stream, as Toxiproxy, even past 2 s', async () => {
  const r = await recorder()
  const p = await proxy(r.address)
  await toxic(p.name, { type: 'slow_close', stream: 'downstream', attributes: { delay: 2600 } })
  await toxic(p.name, { type: 'limit_data', stream: 'upstream', attributes: { bytes: 1 } })
  const s = connect(p.port, '127.0.0.1')
  let endedAt = 0
  s.on('end', () => {
    endedAt = performance.now()
  })
  s.on('error', () => {})
  s.resume()
  await new Promise<void>((res) => s.once('connect', () => res()))
  // In Toxiproxy the upstream link closes the target's socket; the downstream link's read then
  // fails, and its slow_close waits the delay before it closes the client's.
  const t0 = performance.now()
  s.write('xy')
  await waitFor(() => endedAt > 0, 'the client to see EOF', 6000)
  assert.ok(endedAt - t0 >= 2550, `EOF after ${(endedAt - t0).toFixed(0)} ms`)
  assert.equal(received(r.chunks).toString(), 'x')
  s.destroy()
})

test('T17: slicer cuts a write into 1-byte pieces 10 ms apart', async () => {
  const r = await recorder()
  const p = await proxy(r.address)
  await toxic(p.name, {
    type: 'slicer',
    stream: 'upstream',
    attributes: { average_size: 1, size_variation: 0, delay: 10_000 },
  })
  const data = Buffer.from('abcdefghijklmnopqrstuvwx')
  const s = connect(p.port, '127.0.0.1', () => s.end(data))
  s.on('error', () => {})
  await r.ended
  assert.ok(received(r.chunks).equals(data))
  assert.ok(r.chunks.length >= 20, `${r.chunks.length} pieces`)
  const span = r.chunks.at(-1)!.at - r.chunks[0]!.at
  assert.ok(span >= 220, `last byte ${span.toFixed(0)} ms after the first`)
})

test('T18: adding and removing latency in a tight loop loses, duplicates and reorders nothing', async () => {
  const r = await recorder()
  const p = await proxy(r.address)
  const data = Buffer.alloc(65535 * 2)
  for (let i = 0; i < 65535; i++) data.writeUInt16BE(i, i * 2)
  const s = connect(p.port, '127.0.0.1')
  s.on('error', () => {})
  await new Promise<void>((res) => s.once('connect', () => res()))
  let writing = true
  const writer = (async () => {
    for (let off = 0; off < data.length; off += 1024) {
      if (!s.write(data.subarray(off, off + 1024))) await new Promise((res) => s.once('drain', res))
      // Slow enough that the fault comes and goes many times while the data flows.
      await new Promise((res) => setTimeout(res, 2))
    }
    s.end()
    writing = false
  })()
  let cycles = 0
  while (writing) {
    await api('POST', `/proxies/${p.name}/toxics`, {
      name: 'flap',
      type: 'latency',
      stream: 'upstream',
      attributes: { latency: 1000 },
    })
    await api('DELETE', `/proxies/${p.name}/toxics/flap`)
    cycles++
  }
  await writer
  await r.ended
  const got = received(r.chunks)
  assert.equal(got.length, data.length)
  for (let i = 0; i < 65535; i++) if (got.readUInt16BE(i * 2) !== i) assert.fail(`value ${i} out of place`)
  assert.ok(cycles > 10, `${cycles} add/remove cycles`)
})

test('T19: reset never drops connections', async () => {
  const e = await echo()
  const p = await proxy(e.address)
  const c = await openEcho(p.port)
  for (let i = 0; i < 2; i++) {
    await toxic(p.name, { name: `l${i}`, type: 'latency', attributes: { latency: 10 } })
    await toxic(p.name, { name: `b${i}`, type: 'bandwidth', stream: 'upstream', attributes: { rate: 100 } })
    assert.equal(await c.say(`before ${i}`), `before ${i}`)
    assert.equal((await api('POST', '/reset')).status, 204)
    assert.equal(await c.say(`after ${i}`), `after ${i}`)
  }
  c.socket.destroy()
})

test('T20: a Toxiproxy proxy with its upstream down accepts, then closes', async () => {
  const p = await proxy(`127.0.0.1:${await freePort()}`)
  const t0 = performance.now()
  const r = await exchange(p.port, '', { halfClose: false, timeoutMs: 2000 })
  assert.equal(r.error, null, 'a clean EOF, not a reset')
  assert.ok(performance.now() - t0 < 500)
})

// Fault-style scenarios, through the native fault API.
async function native(app: string, fault: Record<string, unknown>): Promise<{ status: number; body: any }> {
  return api('POST', `/apps/${app}/faults`, fault)
}

test('F1: blackhole holds data until removed, on the same connection', async () => {
  const e = await echo()
  const p = await proxy(e.address)
  const c = await openEcho(p.port)
  assert.equal(
    (await native(p.name, { name: 'hole', type: 'blackhole', direction: 'to-upstream' })).status,
    201,
  )
  let got = ''
  c.socket.on('data', (d: string) => {
    got += d
  })
  c.socket.write('x')
  await new Promise((r) => setTimeout(r, 50))
  assert.equal(got, '')
  const t0 = performance.now()
  assert.equal((await api('DELETE', `/apps/${p.name}/faults/hole`)).status, 204)
  await waitFor(() => got === 'x', 'the held byte', 1000)
  assert.ok(performance.now() - t0 < 1000)
  c.socket.destroy()
})

test('F2: connection reset with probability 1 resets; with 0 it never does', async () => {
  const e = await echo()
  const p1 = await proxy(e.address)
  await native(p1.name, { type: 'reset', direction: 'to-upstream', probability: 1 })
  assert.equal((await exchange(p1.port, 'x', { halfClose: false, timeoutMs: 1000 })).error, 'ECONNRESET')
  const p0 = await proxy(e.address)
  await native(p0.name, { type: 'reset', direction: 'to-upstream', probability: 0 })
  assert.equal((await exchange(p0.port, 'x')).data.toString(), 'x')
})

test('F3: latency once delays only the first bytes of a direction', async () => {
  const e = await echo()
  const p = await proxy(e.address)
  await native(p.name, { type: 'latency', latency: '250ms', mode: 'once', direction: 'to-client' })
  const c = await openEcho(p.port)
  const t0 = performance.now()
  assert.equal(await c.say('a'), 'a')
  const first = performance.now() - t0
  const t1 = performance.now()
  assert.equal(await c.say('b'), 'b')
  const second = performance.now() - t1
  assert.ok(first >= 225, `first ${first.toFixed(0)} ms`)
  assert.ok(second < 100, `second ${second.toFixed(0)} ms`)
  c.socket.destroy()
})

test('F4: bandwidth limits even single bytes; with latency the delays add', async () => {
  const e = await echo()
  const p = await proxy(e.address)
  await native(p.name, { type: 'bandwidth', rate: 10, direction: 'to-client' })
  const c = await openEcho(p.port)
  await c.say('w')
  const t0 = performance.now()
  assert.equal(await c.say('z'), 'z')
  assert.ok(performance.now() - t0 >= 75, `1 byte at 10 B/s took ${(performance.now() - t0).toFixed(0)} ms`)
  c.socket.destroy()
  const q = await proxy(e.address)
  await native(q.name, { type: 'latency', latency: '40ms', direction: 'to-client' })
  await native(q.name, { type: 'bandwidth', rate: 4096, direction: 'to-client' })
  const ms = await roundTrip(q.port, Buffer.alloc(2048, 7))
  assert.ok(ms >= 240, `2048 B took ${ms.toFixed(0)} ms`)
})

test('F5: a scheduled blackhole lets data through when its window ends', async () => {
  const e = await echo()
  const p = await proxy(e.address)
  const c = await openEcho(p.port)
  await native(p.name, { type: 'blackhole', direction: 'to-upstream', schedule: 'start:0s,duration:300ms' })
  const t0 = performance.now()
  assert.equal(await c.say('late'), 'late')
  assert.ok(performance.now() - t0 >= 250, `arrived after ${(performance.now() - t0).toFixed(0)} ms`)
  c.socket.destroy()
})

test('F6: invalid faults are refused naming the field; nothing changes; proxies stay apart', async () => {
  const e = await echo()
  const a = await proxy(e.address)
  const b = await proxy(e.address)
  // A's latency is far above any scheduling noise, so B's round trip tells the two apart.
  await native(a.name, { name: 'keep', type: 'latency', latency: '500ms' })
  const cases: [Record<string, unknown>, RegExp][] = [
    [{ type: 'bandwidth', rate: 0 }, /fault\.rate: must be at least 1 byte/],
    [{ type: 'latency', latency: '10ms', probability: 1.1 }, /fault\.probability: must be at most 1/],
    [
      { type: 'latency', distribution: 'uniform', min: '50ms', max: '10ms' },
      /min must not be greater than max/,
    ],
    [{ type: 'wobble' }, /fault\.type: unknown fault type "wobble"/],
  ]
  for (const [fault, re] of cases) {
    const r = await native(a.name, fault)
    assert.equal(r.status, 400, JSON.stringify(r.body))
    assert.equal(r.body.code, 'ERR_FAULT_INVALID')
    assert.match(r.body.error, re)
  }
  const listed = await api('GET', `/apps/${a.name}/faults`)
  assert.deepEqual(
    listed.body.faults.map((f: { name: string }) => f.name),
    ['keep'],
  )
  assert.deepEqual((await api('GET', `/apps/${b.name}/faults`)).body.faults, [])
  const ms = await roundTrip(b.port, 'free')
  assert.ok(ms < 250, `proxy B is untouched (${ms.toFixed(1)} ms)`)
})

test('F7: packet loss stalls delivery but keeps every byte in order, and counts the losses', async () => {
  const data = randomBytes(1024 * 1024)
  const serve = async () => {
    // 64 writes of 16 KiB a millisecond apart, so the stream reaches sluice as many chunks (the
    // unit loss applies to) even when a loaded machine would otherwise coalesce them.
    const s = createServer(async (c) => {
      c.on('error', () => {})
      for (let off = 0; off < data.length; off += 16384) {
        c.write(data.subarray(off, off + 16384))
        await new Promise((r) => setTimeout(r, 1))
      }
      c.end()
    })
    await new Promise<void>((r) => s.listen(0, '127.0.0.1', () => r()))
    t.defer(() => s.close())
    return `127.0.0.1:${(s.address() as { port: number }).port}`
  }
  const upstream = await serve()
  const read = async (port: number) => {
    const t0 = performance.now()
    const r = await exchange(port, '', { halfClose: false, timeoutMs: 30_000 })
    return { data: r.data, ms: performance.now() - t0 }
  }
  const clean = await proxy(upstream)
  const lossy = await proxy(upstream)
  await native(lossy.name, {
    name: 'loss',
    type: 'packet_loss',
    rate: 0.3,
    retransmit: '20ms',
    direction: 'to-client',
  })
  const a = await read(clean.port)
  const b = await read(lossy.port)
  assert.equal(
    createHash('sha256').update(b.data).digest('hex'),
    createHash('sha256').update(data).digest('hex'),
  )
  const faults = (await api('GET', `/apps/${lossy.name}/faults`)).body.faults as {
    name: string
    fired: number
  }[]
  // About 30 % of ~64 chunks lost (P(fewer than 5) is negligible), each one held ≥ 20 ms while
  // the bytes behind it wait: the read takes at least a good part of losses × 20 ms.
  const lost = faults.find((f) => f.name === 'loss')!.fired
  assert.ok(lost >= 5, `${lost} chunks lost`)
  assert.ok(b.ms > lost * 10, `lossy ${b.ms.toFixed(0)} ms for ${lost} losses (clean ${a.ms.toFixed(0)} ms)`)
  const metrics = await (await fetch(`${base}/metrics`)).text()
  assert.match(
    metrics,
    new RegExp(
      `sluice_faults_applied_total\\{app="${lossy.name}",target="",fault="loss",type="packet_loss"\\} [1-9]`,
    ),
  )
})

test('F1: shutdown does not wait for a connection held by a blackhole', async () => {
  const e = await echo()
  const port = await freePort()
  const file = t.tmp.file(
    'hole.yaml',
    `drain_timeout: 30s\napps:\n  - name: a\n    listen: [${port}]\n    targets: ["${e.address}"]\n    faults: [{type: blackhole, direction: to-upstream}]\n`,
  )
  const q = await t.sluice(file)
  const c = await openEcho(port)
  c.socket.write('stuck')
  await new Promise((r) => setTimeout(r, 100))
  const t0 = performance.now()
  q.signal('SIGTERM')
  assert.equal((await q.exited).code, 0)
  assert.ok(performance.now() - t0 < 1000, `exited after ${(performance.now() - t0).toFixed(0)} ms`)
})
