#!/usr/bin/env -S node --max-semi-space-size=4
// Entry point of the `sluice` command: checks the Node version, then runs the built CLI.
//
// --max-semi-space-size=4 (MiB) keeps V8's young generation small. Left to grow to its default
// maximum during start-up (loading the config libraries), it stays larger than the old
// generation's headroom on a small heap, and V8 then starts a full mark-compact every ~120 ms that
// frees nothing: p99 latency through the proxy went from ~1.5 ms to ~10 ms (see bench/NOTES.md).
const [major, minor] = process.versions.node.split('.').map(Number)
if (major < 22 || (major === 22 && minor < 12)) {
  process.stderr.write(
    `sluice needs Node.js >= 22.12 (this is ${process.version}). In a checkout, "npx sluice" and npm scripts use\n` +
      'the Node 24 pinned in devDependencies; elsewhere, install a current Node.\n',
  )
  process.exit(1)
}
try {
  await import('../dist/cli/main.js')
} catch (err) {
  if (err?.code === 'ERR_MODULE_NOT_FOUND' && String(err.message).includes('dist/cli/main.js')) {
    process.stderr.write('sluice is not built: run "npm run build" (npm ci builds it too)\n')
    process.exit(1)
  }
  throw err
}
