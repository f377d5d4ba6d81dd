/**
 * URL paths → views. `/` is home, `/d/<docId>` a document; any other
 * `/d/...` is an invalid document link; everything else is not found.
 */
import { isValidDocId } from '../protocol/ids.ts'

/** A matched route. */
export type Route =
  | { name: 'home' }
  | { name: 'doc'; docId: string }
  | { name: 'invalid-doc'; raw: string }
  | { name: 'not-found'; path: string }

/** Matches a pathname (no query, no fragment). The id is validated as written, without percent-decoding. */
export function matchRoute(pathname: string): Route {
  if (pathname === '/' || pathname === '' || pathname === '/index.html') return { name: 'home' }
  const m = /^\/d\/([^/]*)\/?$/.exec(pathname) ?? (/^\/d\/?$/.test(pathname) ? ['', ''] : null)
  if (m) return isValidDocId(m[1]) ? { name: 'doc', docId: m[1] } : { name: 'invalid-doc', raw: m[1] }
  if (pathname.startsWith('/d/')) return { name: 'invalid-doc', raw: pathname.slice(3) }
  return { name: 'not-found', path: pathname }
}

/** The path of a document. */
export function docPath(docId: string): string {
  return `/d/${docId}`
}
