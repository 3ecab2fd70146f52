// The certificate, key and CA files tunnel apps name: can each be read, is it PEM of the right
// kind, does the key belong to the certificate? `sluice check`, the start and every reload ask, so
// a file that cannot be used is named with its field before anything runs on it.
import { createPrivateKey, type KeyObject, X509Certificate } from 'node:crypto'
import { readFileSync } from 'node:fs'
import type { ConfigIssue } from '../errors.ts'
import type { Config, TunnelAppSpec } from './types.ts'

/** The file's bytes, or why it cannot be had. */
function read(file: string): Buffer | string {
  try {
    return readFileSync(file)
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code
    if (code === 'ENOENT') return `${file}: no such file`
    if (code === 'EISDIR') return `${file}: is a directory, not a file`
    if (code === 'EACCES' || code === 'EPERM') return `${file}: cannot be read (permission denied)`
    return `${file}: cannot be read (${code ?? (err as Error).message})`
  }
}

const PEM_CERT = /-----BEGIN CERTIFICATE-----[\s\S]*?-----END CERTIFICATE-----/g

/** The certificates in a PEM file, or why there are none that parse. */
function certificates(file: string, data: Buffer): X509Certificate[] | string {
  const blocks = data.toString('latin1').match(PEM_CERT) ?? []
  if (blocks.length === 0) return `${file}: no PEM certificate in it (-----BEGIN CERTIFICATE-----)`
  const out: X509Certificate[] = []
  for (const [i, block] of blocks.entries()) {
    try {
      out.push(new X509Certificate(block))
    } catch (err) {
      const which = blocks.length > 1 ? `certificate ${i + 1} of ${blocks.length}` : 'the certificate'
      return `${file}: ${which} does not parse (${(err as NodeJS.ErrnoException).code ?? (err as Error).message})`
    }
  }
  return out
}

/** The private key in a PEM file, or why it cannot be used. */
function privateKey(file: string, data: Buffer): KeyObject | string {
  try {
    return createPrivateKey(data)
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code
    if (code === 'ERR_MISSING_PASSPHRASE')
      return `${file}: the key is encrypted (sluice takes unencrypted keys)`
    return `${file}: no PEM private key that parses (${code ?? (err as Error).message})`
  }
}

/** Problems with one tunnel app's files, under `at` (apps[i]) in sluice's field names. */
export function tunnelFileIssues(app: TunnelAppSpec, at: string): ConfigIssue[] {
  const issues: ConfigIssue[] = []
  const problem = (field: string, message: string) => issues.push({ path: `${at}.tls.${field}`, message })
  let cert: X509Certificate | null = null
  const certData = read(app.tls.cert)
  if (typeof certData === 'string') problem('cert', certData)
  else {
    const certs = certificates(app.tls.cert, certData)
    if (typeof certs === 'string') problem('cert', certs)
    else cert = certs[0]!
  }
  const keyData = read(app.tls.key)
  if (typeof keyData === 'string') problem('key', keyData)
  else {
    const key = privateKey(app.tls.key, keyData)
    if (typeof key === 'string') problem('key', key)
    else if (cert && !cert.checkPrivateKey(key))
      problem('key', `${app.tls.key}: the key does not belong to the certificate in ${app.tls.cert}`)
  }
  if (app.tls.ca !== null) {
    const caData = read(app.tls.ca)
    if (typeof caData === 'string') problem('ca', caData)
    else {
      const cas = certificates(app.tls.ca, caData)
      if (typeof cas === 'string') problem('ca', cas)
    }
  }
  return issues
}

/** Problems with the files of every tunnel app in `config` (paths in sluice's field names). */
export function configFileIssues(config: Config): ConfigIssue[] {
  return config.apps.flatMap((app, i) => (app.kind === 'tunnel' ? tunnelFileIssues(app, `apps[${i}]`) : []))
}
