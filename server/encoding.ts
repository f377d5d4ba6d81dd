/**
 * Content negotiation for the built client's precompressed variants
 * (`<file>.br`, `<file>.gz`, written by build/precompress.ts): which one a
 * request's `Accept-Encoding` allows, brotli first. A client that asks for
 * neither gets the file itself (identity).
 */
import { lstatSync, type Stats } from 'node:fs'

/** A content coding murmur precompresses, with its file suffix. */
export const ENCODINGS = [
  { name: 'br', suffix: '.br' },
  { name: 'gzip', suffix: '.gz' },
] as const

/** What to send for one request: the file on disk, its stat, and the `Content-Encoding` (null: identity). */
export interface Variant {
  path: string
  stat: Stats
  encoding: 'br' | 'gzip' | null
  /** The file has precompressed variants, so the response depends on `Accept-Encoding` (send `Vary`). */
  varies: boolean
}

/** The q-value `header` gives `coding` (RFC 9110 §12.5.3: an explicit entry wins over `*`; absent means not acceptable). */
export function acceptQuality(header: string | undefined, coding: string): number {
  if (!header) return 0
  let star = 0
  for (const part of header.split(',')) {
    const [name, ...params] = part.trim().toLowerCase().split(';')
    const qParam = params.map((p) => p.trim()).find((p) => p.startsWith('q='))
    const q = qParam ? Number(qParam.slice(2)) : 1
    const value = Number.isFinite(q) ? Math.min(1, Math.max(0, q)) : 0
    if (name === coding) return value
    if (name === '*') star = value
  }
  return star
}

/**
 * Picks the variant of `file` (already stat'ed as `stat`) to send for
 * `acceptEncoding`: the first of br, gzip that the client accepts and that
 * exists as a regular file (symlinks are ignored), else the file itself.
 */
export function pickVariant(file: string, stat: Stats, acceptEncoding: string | undefined): Variant {
  let varies = false
  let chosen: Variant | null = null
  for (const enc of ENCODINGS) {
    let s: Stats
    try {
      s = lstatSync(file + enc.suffix)
    } catch {
      continue
    }
    if (!s.isFile()) continue // not a symlink either: a variant never leads outside the client directory
    varies = true
    if (!chosen && acceptQuality(acceptEncoding, enc.name) > 0) chosen = { path: file + enc.suffix, stat: s, encoding: enc.name, varies }
  }
  return chosen ? { ...chosen, varies } : { path: file, stat, encoding: null, varies }
}
