// The sidecar HTTP dispatcher's YAML: {key, destination, rewrites: {VALUE: {destination?, patch: [{key, val}]}}}.
// The listen port is not in the file: SIDECAR_PORT, else 5000 (sluice's --listen wins over both).
import * as v from 'valibot'
import { parseDestination } from '../http.ts'
import { strict } from '../schema.ts'
import { hasControl } from '../text.ts'
import type { Format } from './format.ts'

const url = v.pipe(
  v.string('must be a URL such as http://127.0.0.1:8080'),
  v.check(
    (x) => typeof parseDestination(x) !== 'string',
    (i) => String(parseDestination(i.input)),
  ),
)

const schema = strict({
  key: v.pipe(
    v.string('must be the name of the request header that picks the rewrite'),
    v.regex(/^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$/, 'is not a valid header name'),
  ),
  destination: url,
  rewrites: v.optional(
    v.record(
      v.string(),
      strict({
        destination: v.optional(url),
        patch: v.optional(
          v.array(
            strict({
              key: v.pipe(
                v.string('must be a header name'),
                v.regex(/^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$/, 'is not a valid header name'),
              ),
              val: v.pipe(
                v.union([v.string(), v.number(), v.boolean()], 'must be a string, number or boolean'),
                v.check((x) => !hasControl(String(x)), 'must not contain control characters'),
              ),
            }),
            'must be a list of {key, val}',
          ),
        ),
      }),
      'must be a mapping of header value: {destination, patch}',
    ),
  ),
})

/** The port the sidecar listens on when nothing else says: SIDECAR_PORT, else 5000. */
export function sidecarPort(): number | string {
  const env = process.env.SIDECAR_PORT
  return env === undefined || env === '' ? 5000 : env
}

export const sidecar: Format = {
  name: 'sidecar',
  // Its own keys at the top and no `apps`: `destination` is required, so it is not part of the test.
  detect: (doc) => {
    if (typeof doc !== 'object' || doc === null || Array.isArray(doc)) return false
    return (
      !('apps' in doc) &&
      ('key' in doc || 'rewrites' in doc || ('destination' in doc && Object.keys(doc).length <= 3))
    )
  },
  schema,
  toNative: (doc) => {
    const d = doc as v.InferOutput<typeof schema>
    return {
      apps: [
        {
          name: 'sidecar',
          kind: 'http',
          listen: [sidecarPort()],
          destination: d.destination,
          rules: Object.entries(d.rewrites ?? {}).map(([value, r]) => ({
            name: /^[A-Za-z0-9][A-Za-z0-9._-]{0,62}$/.test(value) ? value : undefined,
            match: { [d.key]: value },
            ...(r.destination ? { destination: r.destination } : {}),
            ...(r.patch?.length
              ? { headers: { set: Object.fromEntries(r.patch.map((p) => [p.key, String(p.val)])) } }
              : {}),
          })),
        },
      ],
    }
  },
  renamePath: (path) =>
    path.replace(/^apps\[0\]\.listen(\[0\])?/, 'SIDECAR_PORT').replace(/^apps\[0\]\./, ''),
}
