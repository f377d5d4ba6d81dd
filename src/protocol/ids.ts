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
