import { createHmac, randomBytes } from 'node:crypto'

/** One RTCIceServer entry as browsers and simple-peer take it. */
export interface IceServer {
  urls: string | string[]
  username?: string
  credential?: string
}

/**
 * Short-lived TURN credentials in the TURN REST form coturn accepts with
 * `use-auth-secret`: `username = <expiry>:<id>`,
 * `credential = base64(HMAC-SHA1(secret, username))`.
 */
export function turnCredentials(urls: string[], secret: string, ttlSeconds: number, now = Date.now()): IceServer {
  const username = `${Math.floor(now / 1000) + ttlSeconds}:${randomBytes(6).toString('base64url')}`
  const credential = createHmac('sha1', secret).update(username).digest('base64')
  return { urls, username, credential }
}
