// The import graph of src/: no file imports itself back through others (types included), and the
// folders form layers (docs/architecture.md): no two folders import each other, directly or round
// a longer loop.
import assert from 'node:assert/strict'
import { readdirSync, readFileSync, statSync } from 'node:fs'
import { dirname, join, relative, resolve } from 'node:path'
import { test } from 'node:test'
import { root } from '../helpers.ts'

const src = join(root, 'src')

function files(dir: string): string[] {
  return readdirSync(dir).flatMap((f) => {
    const p = join(dir, f)
    return statSync(p).isDirectory() ? files(p) : p.endsWith('.ts') ? [p] : []
  })
}

/** file → the files it imports (static import/export … from, type-only ones too). */
function graph(): Map<string, string[]> {
  const g = new Map<string, string[]>()
  for (const f of files(src)) {
    const text = readFileSync(f, 'utf8')
    const deps: string[] = []
    for (const m of text.matchAll(/^(?:import|export)\s[^'"]*?\sfrom\s+['"](\.[^'"]+)['"]/gms))
      deps.push(resolve(dirname(f), m[1]!))
    for (const m of text.matchAll(/\bimport\(\s*['"](\.[^'"]+)['"]\s*\)/g))
      deps.push(resolve(dirname(f), m[1]!))
    g.set(f, deps)
  }
  return g
}

/** Strongly connected components with more than one node (Tarjan). */
function cycles<T>(nodes: Iterable<T>, next: (n: T) => Iterable<T>): T[][] {
  let index = 0
  const idx = new Map<T, number>()
  const low = new Map<T, number>()
  const stack: T[] = []
  const on = new Set<T>()
  const out: T[][] = []
  const visit = (v: T): void => {
    idx.set(v, index)
    low.set(v, index++)
    stack.push(v)
    on.add(v)
    for (const w of next(v)) {
      if (!idx.has(w)) {
        visit(w)
        low.set(v, Math.min(low.get(v)!, low.get(w)!))
      } else if (on.has(w)) low.set(v, Math.min(low.get(v)!, idx.get(w)!))
    }
    if (low.get(v) === idx.get(v)) {
      const c: T[] = []
      let w: T
      do {
        w = stack.pop()!
        on.delete(w)
        c.push(w)
      } while (w !== v)
      if (c.length > 1) out.push(c)
    }
  }
  for (const n of nodes) if (!idx.has(n)) visit(n)
  return out
}

const folder = (f: string) => {
  const parts = relative(src, f).split('/')
  return parts.length > 1 ? parts[0]! : '(top)'
}

test('no import circle between files of src/, type-only imports included', () => {
  const g = graph()
  const found = cycles(g.keys(), (f) => (g.get(f) ?? []).filter((d) => g.has(d)))
  assert.deepEqual(
    found.map((c) => c.map((f) => relative(src, f)).sort()),
    [],
    'files that import each other (move the shared types to a file both import)',
  )
})

test('the folders of src/ form layers: no folder import circle', () => {
  const g = graph()
  const edges = new Set<string>()
  for (const [f, deps] of g)
    for (const d of deps) if (folder(f) !== folder(d)) edges.add(`${folder(f)} -> ${folder(d)}`)
  const next = new Map<string, string[]>()
  for (const e of edges) {
    const [a, b] = e.split(' -> ') as [string, string]
    next.set(a, [...(next.get(a) ?? []), b])
  }
  const found = cycles(next.keys(), (n) => next.get(n) ?? [])
  assert.deepEqual(
    found.map((c) => c.sort()),
    [],
    'folders that import each other',
  )
})
