// tcpproxy's YAML: apps: [{name, ports: [..], targets: ["host:port"]}], lowercase keys.
import * as v from 'valibot'
import { strict } from '../schema.ts'
import type { Format } from './format.ts'

const keys = ['name', 'ports', 'targets']

const schema = strict({
  apps: v.array(
    strict({
      name: v.string('must be a string'),
      ports: v.pipe(
        v.array(v.union([v.number(), v.string()], 'must be a port number'), 'must be a list of ports'),
        v.minLength(1, 'needs at least one port'),
      ),
      targets: v.pipe(
        v.array(v.string('must be "host:port"'), 'must be a list of "host:port"'),
        v.minLength(1, 'needs at least one target'),
      ),
    }),
    'must be a list of apps',
  ),
})

export const tcpproxy: Format = {
  name: 'tcpproxy',
  // Only `apps`, and apps with only name/ports/targets, with `ports` present: sluice's own format says `listen`.
  detect: (doc) => {
    if (typeof doc !== 'object' || doc === null || Array.isArray(doc)) return false
    const top = Object.keys(doc)
    const apps = (doc as { apps?: unknown }).apps
    if (top.length !== 1 || top[0] !== 'apps' || !Array.isArray(apps) || apps.length === 0) return false
    return apps.every(
      (a) =>
        typeof a === 'object' && a !== null && 'ports' in a && Object.keys(a).every((k) => keys.includes(k)),
    )
  },
  schema,
  toNative: (doc) => {
    const d = doc as v.InferOutput<typeof schema>
    return { apps: d.apps.map((a) => ({ name: a.name, listen: a.ports, targets: a.targets })) }
  },
  renamePath: (path) => path.replace(/\.listen\b/, '.ports'),
}
