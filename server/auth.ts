import { createHmac, timingSafeEqual } from 'node:crypto'
import { isValidDocId } from '../src/protocol/ids.ts'

/** What a token grants: one document, read-only (`r`) or read-write (`rw`), until `exp` (Unix seconds). */
export interface Grant {
  doc: string
  mode: 'r' | 'rw'
  exp: number
}

/** Thrown when a token is missing, malformed, badly signed, expired or for another document. */
export class AuthError extends Error {
  override name = 'AuthError'
}

const b64url = (buf: Buffer) => buf.toString('base64url')
const sign = (secret: string, payload: string) => createHmac('sha256', secret).update(payload).digest()

/** Mints a token `<base64url(JSON grant)>.<base64url(HMAC-SHA256)>` valid for `ttlSeconds`. */
export function mintToken(secret: string, doc: string, mode: Grant['mode'], ttlSeconds: number, now = Date.now()): string {
  if (!secret) throw new AuthError('no auth secret configured')
  if (!isValidDocId(doc)) throw new AuthError(`invalid document id "${doc}"`)
  const payload = b64url(Buffer.from(JSON.stringify({ doc, mode, exp: Math.floor(now / 1000) + ttlSeconds })))
  return `${payload}.${b64url(sign(secret, payload))}`
}

/** Verifies `token` for `doc` and returns its grant, or throws `AuthError`. */
export function verifyToken(secret: string, token: string | null | undefined, doc: string, now = Date.now()): Grant {
  if (!token) throw new AuthError('token required')
  const dot = token.indexOf('.')
  if (dot <= 0 || token.length > 1024) throw new AuthError('malformed token')
  const payload = token.slice(0, dot)
  // Compare the signature as text, so only its one canonical encoding passes:
  // Node's base64url decoder skips junk and spare bits, which made tokens malleable.
  const given = Buffer.from(token.slice(dot + 1))
  const expected = Buffer.from(b64url(sign(secret, payload)))
  if (given.length !== expected.length || !timingSafeEqual(given, expected)) throw new AuthError('bad signature')
  let grant: Grant
  try {
    grant = JSON.parse(Buffer.from(payload, 'base64url').toString('utf8'))
  } catch {
    throw new AuthError('malformed token')
  }
  if (typeof grant !== 'object' || grant === null || typeof grant.doc !== 'string' || (grant.mode !== 'r' && grant.mode !== 'rw') || typeof grant.exp !== 'number') {
    throw new AuthError('malformed token')
  }
  if (grant.exp * 1000 <= now) throw new AuthError('token expired')
  if (grant.doc !== doc) throw new AuthError('token is for another document')
  return grant
}

/**
 * The WebRTC room secret of `doc`: y-webrtc's room `password`, handed only
 * to read-write token holders (`/config.json?token=`), so peers without it
 * can neither read the room's signaling nor be connected to. Derived from
 * the auth secret, so every server instance with that secret agrees.
 */
export function roomSecret(secret: string, doc: string): string {
  return b64url(createHmac('sha256', secret).update(`murmur-webrtc-room:${doc}`).digest())
}

/**
 * Reads the `doc` a token claims without trusting it, so `verifyToken` can
 * then check signature, expiry and that claim. Returns '' when unreadable.
 */
export function claimedDoc(token: string): string {
  try {
    const grant = JSON.parse(Buffer.from(token.slice(0, token.indexOf('.')), 'base64url').toString('utf8'))
    return typeof grant?.doc === 'string' ? grant.doc : ''
  } catch {
    return ''
  }
}
