// The Fly.io take-home JSON, as fproxy reads it: {"Apps":[{"Name","Ports":[…],"Targets":["host:port"]}]}.
import * as v from 'valibot'
import { strict } from '../schema.ts'
import type { Format } from './format.ts'

const port = v.union([v.number(), v.string()], 'must be a port number')

const schema = strict({
  Apps: v.array(
    strict({
      Name: v.string('must be a string'),
      Ports: v.pipe(v.array(port, 'must be a list of ports'), v.minLength(1, 'needs at least one port')),
      Targets: v.pipe(
        v.array(v.string('must be "host:port"'), 'must be a list of "host:port"'),
        v.minLength(1, 'needs at least one target'),
      ),
    }),
    'must be a list of apps',
  ),
})

export const fly: Format = {
  name: 'fly',
  detect: (doc) => typeof doc === 'object' && doc !== null && !Array.isArray(doc) && 'Apps' in doc,
  schema,
  toNative: (doc) => {
    const d = doc as v.InferOutput<typeof schema>
    return { apps: d.Apps.map((a) => ({ name: a.Name, listen: a.Ports, targets: a.Targets })) }
  },
  renamePath: (path) =>
    path
      .replace(/^apps/, 'Apps')
      .replace(/\.name\b/, '.Name')
      .replace(/\.listen\b/, '.Ports')
      .replace(/\.targets\b/, '.Targets'),
}
