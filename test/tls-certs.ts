// Test certificates, made with openssl in the test: a CA, and certificates it signs.
import { execFileSync } from 'node:child_process'
import { randomBytes } from 'node:crypto'
import { writeFileSync } from 'node:fs'
import { join } from 'node:path'

export interface Cert {
  cert: string
  key: string
}

function openssl(args: string[], cwd: string): void {
  execFileSync('openssl', args, { cwd, stdio: 'pipe' })
}

/** A self-signed CA in `dir` (`name`.pem, `name`.key). */
export function makeCa(dir: string, name = 'ca'): Cert {
  openssl(['ecparam', '-name', 'prime256v1', '-genkey', '-noout', '-out', `${name}.key`], dir)
  openssl(
    [
      'req',
      '-x509',
      '-new',
      '-key',
      `${name}.key`,
      '-out',
      `${name}.pem`,
      '-days',
      '2',
      '-subj',
      `/CN=sluice test ${name}`,
    ],
    dir,
  )
  return { cert: join(dir, `${name}.pem`), key: join(dir, `${name}.key`) }
}

/** openssl's UTCTime (YYMMDDHHMMSSZ) for a Date. */
function utcTime(d: Date): string {
  return `${d.toISOString().slice(2, 19).replace(/[-T:]/g, '')}Z`
}

/**
 * A certificate for `cn` (and the given SANs) signed by `ca`, for servers or clients. `days` (default
 * 2) is how long from now it stays valid; zero or negative makes one that has already expired: it
 * ended `-days` days ago, a day after it began. (`openssl x509 -days` refuses a past validity on
 * some versions and openssl 3.0 has no `-not_after`, so those go through `openssl ca`, whose
 * `-startdate`/`-enddate` take any dates.)
 */
export function makeCert(
  dir: string,
  ca: Cert,
  name: string,
  opts: { cn: string; dns?: string[]; ips?: string[]; client?: boolean; days?: number },
): Cert {
  openssl(['ecparam', '-name', 'prime256v1', '-genkey', '-noout', '-out', `${name}.key`], dir)
  openssl(['req', '-new', '-key', `${name}.key`, '-out', `${name}.csr`, '-subj', `/CN=${opts.cn}`], dir)
  const sans = [...(opts.dns ?? []).map((d) => `DNS:${d}`), ...(opts.ips ?? []).map((i) => `IP:${i}`)]
  const ext = [
    'basicConstraints=CA:FALSE',
    `extendedKeyUsage=${opts.client ? 'clientAuth' : 'serverAuth'}`,
    ...(sans.length ? [`subjectAltName=${sans.join(',')}`] : []),
  ]
  writeFileSync(join(dir, `${name}.ext`), `${ext.join('\n')}\n`)
  const days = opts.days ?? 2
  if (days <= 0) {
    signPast(dir, ca, name, days)
    return { cert: join(dir, `${name}.pem`), key: join(dir, `${name}.key`) }
  }
  openssl(
    [
      'x509',
      '-req',
      '-in',
      `${name}.csr`,
      '-CA',
      ca.cert,
      '-CAkey',
      ca.key,
      '-CAcreateserial',
      '-out',
      `${name}.pem`,
      '-days',
      String(days),
      '-extfile',
      `${name}.ext`,
    ],
    dir,
  )
  return { cert: join(dir, `${name}.pem`), key: join(dir, `${name}.key`) }
}

/** Sign `name`.csr with validity in the past (see makeCert), through a throwaway `openssl ca` set-up. */
function signPast(dir: string, ca: Cert, name: string, days: number): void {
  const end = new Date(Date.now() + days * 86_400_000 - 60_000)
  const start = new Date(end.getTime() - 86_400_000)
  writeFileSync(join(dir, `${name}.index`), '')
  writeFileSync(join(dir, `${name}.serial`), `${randomBytes(8).toString('hex').toUpperCase()}\n`)
  writeFileSync(
    join(dir, `${name}.cnf`),
    [
      '[ca]',
      'default_ca = past',
      '[past]',
      `database = ${name}.index`,
      `serial = ${name}.serial`,
      'new_certs_dir = .',
      'default_md = sha256',
      'policy = anything',
      'unique_subject = no',
      '[anything]',
      'commonName = supplied',
      '',
    ].join('\n'),
  )
  openssl(
    [
      'ca',
      '-batch',
      '-notext',
      '-config',
      `${name}.cnf`,
      '-cert',
      ca.cert,
      '-keyfile',
      ca.key,
      '-in',
      `${name}.csr`,
      '-out',
      `${name}.pem`,
      '-startdate',
      utcTime(start),
      '-enddate',
      utcTime(end),
      '-extfile',
      `${name}.ext`,
    ],
    dir,
  )
}
