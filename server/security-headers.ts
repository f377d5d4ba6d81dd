import { createHash, timingSafeEqual } from 'node:crypto'
import type { IncomingMessage, ServerResponse } from 'node:http'

/**
 * Sets the headers every response carries: the Content-Security-Policy
 * (`--content-security-policy`, which also forbids framing), no Referer to
 * any other site, and no MIME sniffing.
 */
export function setSecurityHeaders(res: ServerResponse, csp: string): void {
  if (csp) res.setHeader('Content-Security-Policy', csp)
  res.setHeader('Referrer-Policy', 'no-referrer')
  res.setHeader('X-Content-Type-Options', 'nosniff')
}

const digest = (s: string) => createHash('sha256').update(s).digest()

/** Whether `req` carries `Authorization: Bearer <token>` (compared in constant time); always true when `token` is empty. */
export function bearerAuthorized(req: IncomingMessage, token: string): boolean {
  if (!token) return true
  const m = /^Bearer +(\S+)\s*$/i.exec(req.headers.authorization ?? '')
  return m !== null && timingSafeEqual(digest(m[1]), digest(token))
}
