// The documentation stays true: examples and README configs load, every error code and metric is
// documented, and nothing documented is missing from the code.
import assert from 'node:assert/strict'
import { readdirSync, readFileSync } from 'node:fs'
import { join } from 'node:path'
import { test } from 'node:test'
import { runHelp } from '../../src/cli/run.ts'
import { loadConfigFile, loadConfigText } from '../../src/config/load.ts'
import { codes } from '../../src/errors.ts'
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
  const documented = new Set([...doc.matchAll(/`(ERR_[A-Z_]+)`/g)].map((m) => m[1]!))
  assert.deepEqual([...documented].sort(), Object.keys(codes).sort())
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
