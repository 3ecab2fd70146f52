// A throwaway PostgreSQL server with ssl on, for tests: its own data directory, port and
// certificate. Runs as the `postgres` user (PostgreSQL refuses to run as root).
// Tests run as root here (CI too): spawning with uid/gid needs it.
import { type ChildProcess, execFileSync, spawn } from 'node:child_process'
import { appendFileSync, chmodSync, copyFileSync, mkdtempSync, readdirSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { freePort } from '../src/testkit/ports.ts'
import { refused, waitFor } from './helpers.ts'
import { type Cert, makeCa, makeCert } from './tls-certs.ts'

function pgBin(name: string): string {
  const base = '/usr/lib/postgresql'
  const versions = readdirSync(base).sort((a, b) => Number(b) - Number(a))
  if (!versions.length) throw new Error('PostgreSQL is not installed (apt-get install postgresql)')
  return join(base, versions[0]!, 'bin', name)
}

export interface Postgres {
  port: number
  ca: Cert
  stop(): Promise<void>
}

/** Start PostgreSQL with ssl on, on a free port; `stop()` ends it and removes its files. */
export async function startPostgres(): Promise<Postgres> {
  const dir = mkdtempSync(join(tmpdir(), 'sluice-pg-'))
  const data = join(dir, 'data')
  const ca = makeCa(dir)
  const server = makeCert(dir, ca, 'server', { cn: 'localhost', dns: ['localhost'], ips: ['127.0.0.1'] })
  execFileSync('chown', ['-R', 'postgres:postgres', dir])
  chmodSync(dir, 0o755)
  // Run as the postgres user directly (spawn's uid/gid), so signals reach PostgreSQL itself.
  const user = {
    uid: Number(execFileSync('id', ['-u', 'postgres'], { encoding: 'utf8' })),
    gid: Number(execFileSync('id', ['-g', 'postgres'], { encoding: 'utf8' })),
    env: { ...process.env, HOME: dir },
  }
  execFileSync(pgBin('initdb'), ['-D', data, '-A', 'trust', '-U', 'postgres', '--no-sync'], {
    ...user,
    stdio: 'pipe',
  })
  copyFileSync(server.cert, join(data, 'server.crt'))
  copyFileSync(server.key, join(data, 'server.key'))
  execFileSync('chown', ['postgres:postgres', join(data, 'server.crt'), join(data, 'server.key')])
  chmodSync(join(data, 'server.key'), 0o600)
  const port = await freePort()
  appendFileSync(
    join(data, 'postgresql.conf'),
    `\nport = ${port}\nlisten_addresses = '127.0.0.1'\nunix_socket_directories = '${dir}'\nssl = on\nfsync = off\n`,
  )
  const child: ChildProcess = spawn(pgBin('postgres'), ['-D', data], { ...user, stdio: 'ignore' })
  await waitFor(async () => !(await refused(port)), 'PostgreSQL to listen', 20_000, 100)
  return {
    port,
    ca,
    stop: async () => {
      if (child.exitCode === null && child.signalCode === null) {
        const exited = new Promise((r) => child.once('exit', r))
        child.kill('SIGINT')
        await exited
      }
      rmSync(dir, { recursive: true, force: true })
    },
  }
}

/** Run one query with psql; returns its unaligned, tuples-only output. */
export function psql(conninfo: string, sql: string): string {
  return execFileSync('psql', [conninfo, '-tAc', sql], {
    encoding: 'utf8',
    stdio: ['ignore', 'pipe', 'pipe'],
  }).trim()
}
