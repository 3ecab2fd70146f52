import assert from 'node:assert/strict'
import { test } from 'node:test'
import { listenOverlaps, parseListen, parseTarget, splitHostPort } from '../../src/config/address.ts'

test('listen addresses: a port means every interface; hosts must be IP literals', () => {
  assert.deepEqual(parseListen(8080), { host: null, port: 8080, key: '*:8080' })
  assert.deepEqual(parseListen('8080'), { host: null, port: 8080, key: '*:8080' })
  assert.deepEqual(parseListen(':8080'), { host: null, port: 8080, key: '*:8080' })
  assert.deepEqual(parseListen('127.0.0.1:8080'), { host: '127.0.0.1', port: 8080, key: '127.0.0.1:8080' })
  assert.deepEqual(parseListen('[::1]:8080'), { host: '::1', port: 8080, key: '[::1]:8080' })
  assert.deepEqual(parseListen('localhost:81'), { host: '127.0.0.1', port: 81, key: '127.0.0.1:81' })
  assert.deepEqual(parseListen('0.0.0.0:80'), { host: '0.0.0.0', port: 80, key: '0.0.0.0:80' })
})

test('bad listen addresses say why', () => {
  const cases: [unknown, RegExp][] = [
    [0, /out of range/],
    [70000, /out of range/],
    ['example.com:80', /must be an IP address/],
    ['::1:80', /brackets/],
    ['127.0.0.1', /no port/],
    ['127.0.0.1:http', /no valid port/],
    [true, /port number or "host:port"/],
  ]
  for (const [input, re] of cases) {
    const r = parseListen(input)
    assert.equal(typeof r, 'string', `parseListen(${JSON.stringify(input)})`)
    assert.match(r as string, re)
  }
})

test('targets take names or IP literals', () => {
  assert.deepEqual(parseTarget('db.internal:5432'), { host: 'db.internal', port: 5432 })
  assert.deepEqual(parseTarget('[2001:db8::1]:443'), { host: '2001:db8::1', port: 443 })
  assert.deepEqual(parseTarget('bad.target.invalid:6003'), { host: 'bad.target.invalid', port: 6003 })
  assert.match(parseTarget('bad host:80') as string, /not a valid host name/)
  assert.match(parseTarget('h:0') as string, /out of range/)
  assert.match(parseTarget(42) as string, /host:port/)
  // A numeric last label: URLs read 1.2.3 as 1.2.0.3 and refuse a.0, so neither is a name.
  for (const t of ['a.0:443', '1.2.3:80', '10.1:80', 'x.0x7f:1', '0:1', 'a.1.:80'])
    assert.match(parseTarget(t) as string, /neither an IPv4 address nor a host name/, t)
  assert.deepEqual(parseTarget('a1.b2c:80'), { host: 'a1.b2c', port: 80 })
  assert.match(splitHostPort('[::1]80') as string, /\[ipv6\]:port/)
})

test('overlap: the wildcard and a specific address on one port fight; different hosts do not', () => {
  const l = (x: unknown) => parseListen(x) as Exclude<ReturnType<typeof parseListen>, string>
  assert.equal(listenOverlaps(l(8080), l('127.0.0.1:8080')), true)
  assert.equal(listenOverlaps(l('127.0.0.1:8080'), l('127.0.0.2:8080')), false)
  assert.equal(listenOverlaps(l('127.0.0.1:8080'), l('127.0.0.1:8081')), false)
  assert.equal(listenOverlaps(l('0.0.0.0:8080'), l('127.0.0.1:8080')), true)
  assert.equal(listenOverlaps(l('0.0.0.0:8080'), l('[::1]:8080')), false)
  assert.equal(listenOverlaps(l('[::]:8080'), l('[::1]:8080')), true)
  assert.equal(listenOverlaps(l('[::]:8080'), l('0.0.0.0:8080')), true)
})
