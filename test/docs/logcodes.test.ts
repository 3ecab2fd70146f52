// Every log line that reports a failure (warn, error, fatal) carries a code from the registry: a
// reading of src/ for each logger call at those levels, whose fields must name `code` (directly, or
// through a `fields` object built with one just before the call).
import assert from 'node:assert/strict'
import { readdirSync, readFileSync, statSync } from 'node:fs'
import { join, relative } from 'node:path'
import { test } from 'node:test'
import { root } from '../helpers.ts'

const src = join(root, 'src')

function files(dir: string): string[] {
  return readdirSync(dir).flatMap((f) => {
    const p = join(dir, f)
    return statSync(p).isDirectory() ? files(p) : p.endsWith('.ts') ? [p] : []
  })
}

test('every warn, error and fatal log call in src/ gives a code', () => {
  const missing: string[] = []
  let calls = 0
  for (const f of files(src)) {
    const text = readFileSync(f, 'utf8')
    for (const m of text.matchAll(/\blog\.(warn|error|fatal)\(/g)) {
      calls++
      let i = m.index + m[0].length
      let depth = 1
      while (i < text.length && depth) {
        if (text[i] === '(') depth++
        else if (text[i] === ')') depth--
        i++
      }
      const args = text.slice(m.index + m[0].length, i - 1)
      if (/\bcode\b/.test(args)) continue
      // `fields` (or `{ ...fields, … }`) built with a code in the lines just before.
      const before = text.slice(Math.max(0, text.lastIndexOf('\n', m.index - 1) - 1200), m.index)
      if (/^\s*(\{\s*\.\.\.)?fields\b/.test(args) && /\bfields[^=]*=\s*\{[^}]*\bcode:/s.test(before)) continue
      missing.push(`${relative(root, f)}:${text.slice(0, m.index).split('\n').length}`)
    }
  }
  assert.ok(calls > 30, `${calls} calls read`)
  assert.deepEqual(missing, [], 'log calls at warn or above without a code')
})
