#!/usr/bin/env node
// Entry point of the `sluice` command: checks the Node version, then runs the built CLI.
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
