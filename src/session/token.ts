/**
 * Access tokens travel in the URL fragment (`#token=<t>`), which browsers
 * never send to a server; the client hands them to /signal and /sync itself.
 */

/** The `token` parameter of a fragment like `#token=abc` or `#a=1&token=abc`, or null. */
export function tokenFromHash(hash: string): string | null {
  const h = hash.startsWith('#') ? hash.slice(1) : hash
  if (!h) return null
  const t = new URLSearchParams(h).get('token')
  return t ? t : null
}

/** The shareable link of a document: origin + `/d/<id>` + the current fragment (so the token is kept). */
export function shareLink(origin: string, docId: string, hash: string): string {
  const frag = hash && hash !== '#' ? (hash.startsWith('#') ? hash : '#' + hash) : ''
  return `${origin}/d/${docId}${frag}`
}
