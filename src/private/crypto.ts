/**
 * The keys of a private document, all derived from its link key with
 * HKDF-SHA256 (salt: the docId, so one key reused for two documents yields
 * unrelated keys), and AES-GCM-256 sealing with random 96-bit nonces.
 * WebCrypto only (`globalThis.crypto.subtle`): browsers and Node 20.
 *
 * A sealed box is `[version 1][nonce 12][ciphertext + 16-byte tag]`.
 */
import { fromBase64Url, toBase64Url } from './key.ts'

/** HKDF `info` strings: one per purpose, so no derived value reveals another. */
export const KEY_INFO = {
  content: 'murmur/v1 document content',
  awareness: 'murmur/v1 awareness',
  write: 'murmur/v1 write capability',
  signaling: 'murmur/v1 signaling password',
  tag: 'murmur/v1 coverage tag',
} as const

const VERSION = 1
const NONCE_BYTES = 12
/** Bytes a sealed box adds to its plaintext (version, nonce, GCM tag). */
export const SEAL_OVERHEAD = 1 + NONCE_BYTES + 16

/** Everything a client derives from a link key. */
export interface DocKeys {
  /** Encrypts document updates and snapshots. */
  content: CryptoKey
  /** Encrypts awareness (names, colours, cursors) relayed by the server. */
  awareness: CryptoKey
  /** The write capability presented with every append and snapshot (the server keeps only its SHA-256). */
  writeProof: Uint8Array
  /** y-webrtc's room `password`: encrypts signaling, so the server never sees SDP or names. */
  signalingPassword: string
  /** HMAC key of coverage tags (`coverage.ts`): the server compares them, it cannot invert them. */
  tag: CryptoKey
}

/** Thrown when a box cannot be opened: wrong key, tampered bytes, or not a box at all. */
export class DecryptError extends Error {
  override name = 'DecryptError'
}

const subtle = () => globalThis.crypto.subtle
const utf8 = (s: string) => new TextEncoder().encode(s)
/** WebCrypto's typings want an ArrayBuffer-backed view. */
const buf = (b: Uint8Array) => b as Uint8Array<ArrayBuffer>

/** Derives every key of `docId` from the base64url link key. */
export async function deriveDocKeys(linkKey: string, docId: string): Promise<DocKeys> {
  const ikm = await subtle().importKey('raw', buf(fromBase64Url(linkKey)), 'HKDF', false, ['deriveBits', 'deriveKey'])
  const params = (info: string): HkdfParams => ({ name: 'HKDF', hash: 'SHA-256', salt: utf8(docId), info: utf8(info) })
  const aes = (info: string) => subtle().deriveKey(params(info), ikm, { name: 'AES-GCM', length: 256 }, false, ['encrypt', 'decrypt'])
  const bits = async (info: string) => new Uint8Array(await subtle().deriveBits(params(info), ikm, 256))
  const hmac = (info: string) => subtle().deriveKey(params(info), ikm, { name: 'HMAC', hash: 'SHA-256', length: 256 }, false, ['sign'])
  const [content, awareness, writeProof, signaling, tag] = await Promise.all([aes(KEY_INFO.content), aes(KEY_INFO.awareness), bits(KEY_INFO.write), bits(KEY_INFO.signaling), hmac(KEY_INFO.tag)])
  return { content, awareness, writeProof, signalingPassword: toBase64Url(signaling), tag }
}

/** Encrypts `plain` under `key` with a fresh random nonce. */
export async function seal(key: CryptoKey, plain: Uint8Array): Promise<Uint8Array> {
  const nonce = globalThis.crypto.getRandomValues(new Uint8Array(NONCE_BYTES))
  const ct = new Uint8Array(await subtle().encrypt({ name: 'AES-GCM', iv: nonce }, key, buf(plain)))
  const out = new Uint8Array(1 + NONCE_BYTES + ct.length)
  out[0] = VERSION
  out.set(nonce, 1)
  out.set(ct, 1 + NONCE_BYTES)
  return out
}

/** Decrypts a box made by `seal`; throws `DecryptError` when it was not sealed with `key` or was altered. */
export async function open(key: CryptoKey, box: Uint8Array): Promise<Uint8Array> {
  if (box.length < SEAL_OVERHEAD || box[0] !== VERSION) throw new DecryptError('not a sealed box of a known version')
  try {
    return new Uint8Array(await subtle().decrypt({ name: 'AES-GCM', iv: buf(box.subarray(1, 1 + NONCE_BYTES)) }, key, buf(box.subarray(1 + NONCE_BYTES))))
  } catch {
    throw new DecryptError('cannot decrypt: wrong key or altered data')
  }
}
