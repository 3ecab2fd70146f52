// A test of your own service against a real PostgreSQL, through a sluice app with a fault.
// Run: PGHOST=127.0.0.1 PGPORT=5432 PGUSER=postgres node --test library.test.ts
import assert from 'node:assert/strict'
import { execFile } from 'node:child_process'
import { test } from 'node:test'
import { promisify } from 'node:util'
import { start } from 'sluice'

/** The service under test: reads a number from the database, or says it is unavailable in time. */
async function answer(dbPort: number, timeoutMs: number): Promise<string> {
  const query = promisify(execFile)(
    'psql',
    ['-h', '127.0.0.1', '-p', String(dbPort), '-U', process.env.PGUSER ?? 'postgres', '-tAc', 'select 6 * 7'],
    { timeout: timeoutMs },
  )
  return query.then(
    (r) => r.stdout.trim(),
    () => 'unavailable',
  )
}

test('the service answers through sluice, and degrades when the database is slow', async (t) => {
  const sluice = await start({
    config: {
      apps: [{ name: 'db', listen: ['127.0.0.1:0'], targets: [`127.0.0.1:${process.env.PGPORT ?? 5432}`] }],
    },
  })
  t.after(() => sluice.close())
  const port = sluice.port('db')
  assert.equal(await answer(port, 5000), '42')

  await sluice.addFault('db', { type: 'latency', name: 'slow-db', latency: '3s', direction: 'to-client' })
  assert.equal(await answer(port, 1000), 'unavailable')

  await sluice.removeFault('db', 'slow-db')
  assert.equal(await answer(port, 5000), '42')
})
