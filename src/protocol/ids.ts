/** A document id: URL-safe, 1–64 characters. Shared by client and server. */
export const DOC_ID_PATTERN = /^[A-Za-z0-9_-]{1,64}$/

/** True when `id` is a syntactically valid document id. */
export function isValidDocId(id: unknown): id is string {
  return typeof id === 'string' && DOC_ID_PATTERN.test(id)
}

/** A new document id: 128 random bits as unpadded base64url (22 characters). */
export function newDocId(): string {
  const bytes = new Uint8Array(16)
  globalThis.crypto.getRandomValues(bytes)
  let binary = ''
  for (const b of bytes) binary += String.fromCharCode(b)
  return btoa(binary).replace(/\+/g, '-').replace(/\//g, '_').replace(/=+$/, '')
}

/** What a history companion's id adds to its document's id. A `.` never occurs in a document id, so the two cannot collide. */
export const HISTORY_SUFFIX = '.history'

/** The id of the Yjs document holding `docId`'s saved versions (synced through `/sync` like any document). */
export function historyDocId(docId: string): string {
  return docId + HISTORY_SUFFIX
}

/** The document a `/sync` room id belongs to: the id itself, or the document of a history companion; null when invalid. */
export function roomDocId(id: unknown): string | null {
  if (typeof id !== 'string') return null
  const base = id.endsWith(HISTORY_SUFFIX) ? id.slice(0, -HISTORY_SUFFIX.length) : id
  return isValidDocId(base) ? base : null
}
