// sluice's own format: the document already has sluice's shape.
import type { Format } from './format.ts'

export const native: Format = {
  name: 'sluice',
  detect: () => true,
  schema: null,
  toNative: (doc) => doc,
  renamePath: (path) => path,
}
