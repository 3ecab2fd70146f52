// Test certificates, made with openssl in the test: a CA, and certificates it signs.
import { execFileSync } from 'node:child_process'
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

/** A certificate for `cn` (and the given SANs) signed by `ca`, for servers or clients. */
export function makeCert(
  dir: string,
  ca: Cert,
  name: string,
  opts: { cn: string; dns?: string[]; ips?: string[]; client?: boolean },
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
      '2',
      '-extfile',
      `${name}.ext`,
    ],
    dir,
  )
  return { cert: join(dir, `${name}.pem`), key: join(dir, `${name}.key`) }
}
