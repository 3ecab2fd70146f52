// The JSON Schema of sluice's own format (`sluice schema`), from the valibot schemas of each app kind.
import { toJsonSchema } from '@valibot/to-json-schema'
import { faultJsonSchemas } from './faults.ts'
import { httpAppSchema } from './http.ts'
import { nativeSchema, tcpAppSchema } from './schema.ts'
import { tunnelAppSchema } from './tunnel.ts'

/** The JSON Schema of sluice's own format, for editor completion. */
export function jsonSchema(): object {
  const root = toJsonSchema(nativeSchema, { errorMode: 'ignore' }) as Record<string, unknown>
  const props = root.properties as Record<string, Record<string, unknown>>
  props.apps = {
    type: 'array',
    description: 'The apps',
    items: toJsonSchema(tcpAppSchema, { errorMode: 'ignore' }),
  }
  const app = props.apps.items as Record<string, any>
  delete app.$schema
  // Faults, one schema per type, for apps and for object targets.
  const fault = {
    description: 'A fault (see the README: Faults)',
    anyOf: Object.values(faultJsonSchemas()).map((schema) => {
      const j = toJsonSchema(schema, { errorMode: 'ignore' }) as Record<string, unknown>
      delete j.$schema
      return j
    }),
  }
  const faults = (description: string) => ({ type: 'array', description, items: fault })
  app.properties.faults = faults("Faults on the app's connections")
  const targetObject = app.properties.targets.items.anyOf.find((x: { type?: string }) => x.type === 'object')
  if (targetObject) targetObject.properties.faults = faults('Faults on connections to this target only')
  // http apps (kind: http) next to tcp apps: one schema or the other per item.
  const http = toJsonSchema(httpAppSchema, { errorMode: 'ignore' }) as Record<string, any>
  delete http.$schema
  http.properties.faults = faults('HTTP faults for every request (latency, http_error)')
  const tunnel = toJsonSchema(tunnelAppSchema, { errorMode: 'ignore' }) as Record<string, any>
  delete tunnel.$schema
  props.apps = {
    type: 'array',
    description: 'The apps: tcp (default), http or tunnel',
    items: { anyOf: [app, http, tunnel] },
  }
  root.title = 'sluice configuration'
  return root
}
