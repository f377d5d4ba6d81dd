/**
 * Saved versions of a document: plain records in a `Y.Array` of a companion
 * Yjs document (see `log.ts`). Everything read from it came from some peer
 * or server, so `readVersion` checks each field and drops what does not fit.
 */

/** One saved version: the full text at that time and who had edited it since the previous one. */
export interface Version {
  /** Random id (unique per version). */
  id: string
  /** When it was taken (ms since epoch). */
  at: number
  /** Names (from presence) of the people who edited since the previous version. */
  by: string[]
  /** A name the user gave it ("Save version"); named versions are never pruned. */
  name: string
  /** Taken by hand (true) or automatically. */
  manual: boolean
  /** Characters added and removed since the previous version. */
  added: number
  removed: number
  /** The document text. */
  text: string
}

/** Caps on what a version may hold; longer fields are cut, bad records dropped. */
export const VERSION_LIMITS = {
  /** Characters of a version name. */
  name: 100,
  /** Editor names recorded per version. */
  names: 20,
  /** Characters per editor name. */
  nameChars: 64,
  /** Characters of text (a 1M-character document is the largest murmur edits comfortably). */
  text: 4_000_000,
}

const clip = (s: string, n: number) => (s.length > n ? s.slice(0, n) : s)
const count = (n: unknown) => (typeof n === 'number' && Number.isFinite(n) && n >= 0 ? Math.floor(n) : 0)

/** Returns `raw` as a `Version` if it is one (fields clipped to `VERSION_LIMITS`), else null. */
export function readVersion(raw: unknown): Version | null {
  if (typeof raw !== 'object' || raw === null) return null
  const r = raw as Record<string, unknown>
  if (typeof r.id !== 'string' || r.id.length === 0 || r.id.length > 64) return null
  if (typeof r.at !== 'number' || !Number.isFinite(r.at)) return null
  if (typeof r.text !== 'string' || r.text.length > VERSION_LIMITS.text) return null
  const by = Array.isArray(r.by) ? r.by.filter((n): n is string => typeof n === 'string').slice(0, VERSION_LIMITS.names).map((n) => clip(n, VERSION_LIMITS.nameChars)) : []
  return {
    id: r.id,
    at: r.at,
    by,
    name: typeof r.name === 'string' ? clip(r.name.trim(), VERSION_LIMITS.name) : '',
    manual: r.manual === true,
    added: count(r.added),
    removed: count(r.removed),
    text: r.text,
  }
}

/** Newest first (ties broken by id, so every device lists the same order). */
export function newestFirst(a: Version, b: Version): number {
  return b.at - a.at || (a.id < b.id ? 1 : a.id > b.id ? -1 : 0)
}

/** A random version id (96 bits, base64url). */
export function newVersionId(): string {
  const bytes = new Uint8Array(12)
  globalThis.crypto.getRandomValues(bytes)
  let binary = ''
  for (const b of bytes) binary += String.fromCharCode(b)
  return btoa(binary).replace(/\+/g, '-').replace(/\//g, '_').replace(/=+$/, '')
}
