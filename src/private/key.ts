/**
 * The link key of a private document: 32 random bytes, unpadded base64url
 * (43 characters), carried in the URL fragment as `#key=<key>` (other
 * parameters such as `token=` may follow after `&`). The fragment never
 * reaches a server. No DOM, no Node APIs.
 */

/** Length of a link key in bytes. */
export const LINK_KEY_BYTES = 32

const KEY_PATTERN = /^[A-Za-z0-9_-]{43}$/

/** Unpadded base64url of `bytes`. */
export function toBase64Url(bytes: Uint8Array): string {
  let binary = ''
  for (const b of bytes) binary += String.fromCharCode(b)
  return btoa(binary).replace(/\+/g, '-').replace(/\//g, '_').replace(/=+$/, '')
}

/** Bytes of unpadded base64url `text`; throws on characters outside the alphabet. */
export function fromBase64Url(text: string): Uint8Array {
  const b64 = text.replace(/-/g, '+').replace(/_/g, '/') + '='.repeat((4 - (text.length % 4)) % 4)
  const binary = atob(b64)
  const out = new Uint8Array(binary.length)
  for (let i = 0; i < binary.length; i++) out[i] = binary.charCodeAt(i)
  return out
}

/** A new link key: 32 random bytes as 43 characters of base64url. */
export function newLinkKey(): string {
  const bytes = new Uint8Array(LINK_KEY_BYTES)
  globalThis.crypto.getRandomValues(bytes)
  return toBase64Url(bytes)
}

/** True when `key` has the form of a link key (43 base64url characters that decode to 32 bytes). */
export function isLinkKey(key: unknown): key is string {
  return typeof key === 'string' && KEY_PATTERN.test(key) && fromBase64Url(key).length === LINK_KEY_BYTES
}

/** The `key` parameter of a fragment like `#key=…&token=…`, or null when absent or malformed. */
export function keyFromHash(hash: string): string | null {
  const h = hash.startsWith('#') ? hash.slice(1) : hash
  if (!h) return null
  const k = new URLSearchParams(h).get('key')
  return isLinkKey(k) ? k : null
}

/** The fragment of a new private document's link: `#key=<key>`. */
export function keyFragment(key: string): string {
  return `#key=${key}`
}
