// The documentation stays true: examples and README configs load, every error code and metric is
// documented, and nothing documented is missing from the code.
import assert from 'node:assert/strict'
import { readdirSync, readFileSync } from 'node:fs'
import { join } from 'node:path'
import { test } from 'node:test'
import { stringify } from 'yaml'
import { runHelp } from '../../src/cli/run.ts'
import { loadConfigFile, loadConfigText } from '../../src/config/load.ts'
import { toDocument } from '../../src/config/print.ts'
import { codes, registry } from '../../src/errors.ts'
import { createMetrics } from '../../src/observe/metrics.ts'
import { root } from '../helpers.ts'

const readme = readFileSync(join(root, 'README.md'), 'utf8')

test('every file in examples/ is a valid config', () => {
  const files = readdirSync(join(root, 'examples')).filter((f) => /\.(ya?ml|json|toml)$/.test(f))
  assert.ok(files.length >= 3)
  for (const f of files) assert.doesNotThrow(() => loadConfigFile(join(root, 'examples', f)), f)
})

test('the README config blocks load', () => {
  const blocks = [...readme.matchAll(/```(yaml|json)\n([\s\S]*?)```/g)]
  const configs = blocks.filter(([, lang, body]) =>
    lang === 'json' ? body!.includes('"Apps"') : /^apps:/m.test(body!),
  )
  assert.ok(configs.length >= 3, `found ${configs.length}`)
  for (const [, lang, body] of configs)
    assert.doesNotThrow(() => loadConfigText(body!, `readme.${lang}`), body)
})

test('docs/errors.md lists exactly the error codes the code defines', () => {
  const doc = readFileSync(join(root, 'docs', 'errors.md'), 'utf8')
  const [own, node = ''] = doc.split('## Node.js codes sluice reads')
  const documented = new Set([...own!.matchAll(/`(ERR_[A-Z_]+)`/g)].map((m) => m[1]!))
  assert.deepEqual([...documented].sort(), Object.keys(codes).sort())
  // Node.js's own codes that src/ reads are explained in their section, and are not sluice's.
  const firstCells = [...node.matchAll(/^\| ([^|]*) \|/gm)].map((m) => m[1]!)
  const nodeCodes = new Set(
    firstCells.flatMap((c) => [...c.matchAll(/`(ERR_[A-Z0-9_]+)`/g)].map((m) => m[1]!)),
  )
  const used = new Set<string>()
  for (const f of readdirSync(join(root, 'src'), { recursive: true }) as string[])
    if (f.endsWith('.ts'))
      for (const m of readFileSync(join(root, 'src', f), 'utf8').matchAll(/'(ERR_[A-Z0-9_]+)'/g))
        used.add(m[1]!)
  const unexplained = [...used].filter((c) => !(c in codes) && !nodeCodes.has(c))
  assert.deepEqual(unexplained, [], 'codes src/ uses that docs/errors.md does not explain')
  for (const c of nodeCodes) assert.ok(!(c in codes), `${c} is Node's, not sluice's`)
})

test("docs/errors.md gives each code's HTTP status as the registry has it", () => {
  const doc = readFileSync(join(root, 'docs', 'errors.md'), 'utf8')
  const wrong: string[] = []
  for (const [code, e] of Object.entries(registry)) {
    if (!('status' in e)) continue
    const row = doc.split('\n').find((l) => l.startsWith(`| \`${code}\``)) ?? ''
    if (!new RegExp(`\\b${e.status}\\b`).test(row)) wrong.push(`${code} (${e.status})`)
  }
  assert.deepEqual(wrong, [], 'rows that do not give the status')
})

test('the README metric table matches the metrics sluice exports', async () => {
  const m = createMetrics()
  const exported = (await m.registry.getMetricsAsJSON())
    .map((x) => x.name)
    .filter((n) => n.startsWith('sluice_'))
  const documented = new Set([...readme.matchAll(/`(sluice_[a-z_]+)(?:\{[a-z,]+\})?`/g)].map((x) => x[1]!))
  assert.deepEqual([...documented].sort(), exported.sort())
})

test('every option of sluice run in the README exists', () => {
  const table = readme.slice(
    readme.indexOf('### Command-line options of `sluice run`'),
    readme.indexOf('## Configuration reference'),
  )
  const options = [...table.matchAll(/(--[a-z][a-z-]+)/g)].map((x) => x[1]!)
  assert.ok(options.length >= 5)
  for (const o of options) assert.ok(runHelp.includes(o), o)
})

test("the README's default column for tcp apps is what check prints for a minimal app", () => {
  const table = readme.slice(readme.indexOf('### Apps (`kind: tcp`, the default)'))
  const rows = table.slice(0, table.indexOf('\n\n', table.indexOf('| field'))).split('\n')
  const { config } = loadConfigText('apps: [{name: a, listen: [1], targets: ["h:1"]}]', 'a.yaml')
  const app = (toDocument(config).apps as Record<string, unknown>[])[0]!
  let compared = 0
  for (const row of rows) {
    const m = /^\| `([a-z_]+)` *\| `([^`]+)` *\|/.exec(row)
    if (!m) continue
    const [, field, documented] = m
    const printed = app[field!]
    assert.notEqual(printed, undefined, `README documents ${field}, check does not print it`)
    const text =
      typeof printed === 'object' ? stringify(printed, { flow: true } as never).trim() : String(printed)
    const plain = (x: string) => x.replace(/\s+/g, '')
    assert.equal(plain(text), plain(documented!), field)
    compared++
  }
  assert.ok(compared >= 10, `compared ${compared} rows`)
})
