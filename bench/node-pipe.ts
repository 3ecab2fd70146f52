// The floor for any Node.js TCP proxy: accept, connect, pipe() both ways, nothing else. Run by
// bench/run.ts beside sluice so that the report can say how much is sluice and how much is Node.
// Usage: node bench/node-pipe.ts LISTEN_PORT:TARGET_PORT ...
import { connect, createServer } from 'node:net'

for (const pair of process.argv.slice(2)) {
  const [listen, target] = pair.split(':').map(Number)
  createServer({ allowHalfOpen: true, noDelay: true }, (client) => {
    const upstream = connect({ port: target!, host: '127.0.0.1', allowHalfOpen: true, noDelay: true })
    client.pipe(upstream)
    upstream.pipe(client)
    client.on('error', () => upstream.destroy())
    upstream.on('error', () => client.destroy())
  }).listen(listen, '127.0.0.1')
}
