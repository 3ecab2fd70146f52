// The input formats, in detection order (sluice's own last: it accepts anything else).
import { fly } from './fly.ts'
import type { Format } from './format.ts'
import { native } from './native.ts'
import { ptproxy } from './ptproxy.ts'
import { sidecar } from './sidecar.ts'
import { tcpproxy } from './tcpproxy.ts'

export type { Format } from './format.ts'
export const formats: readonly Format[] = [fly, tcpproxy, sidecar, ptproxy, native]

/** The format a parsed document is in. */
export function detectFormat(doc: unknown): Format {
  return formats.find((f) => f.detect(doc)) ?? native
}
