// What an input format provides: recognise a parsed document, validate it in its own terms, and
// turn it into sluice's own shape (then normalised like any native config).
import type * as v from 'valibot'
import type { FormatName } from '../types.ts'

export interface Format {
  name: FormatName
  /** Whether a parsed document is in this format; formats are tried in order, native last. */
  detect(doc: unknown): boolean
  /** Validates the document in the format's own key names, so errors name the user's fields. */
  schema: v.GenericSchema | null
  toNative(doc: unknown): unknown
  /** Maps a field path in sluice's shape back to the format's own key names. */
  renamePath(path: string): string
}
