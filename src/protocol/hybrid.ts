/**
 * Codec for murmur's hybrid data path extension of the y-websocket protocol
 * (docs/protocol.md). No DOM, no Node APIs: shared by client, server, tests.
 *
 * - `[linkMode=102, mode, directPeers, relayedPeers]` (client → server): `mode`
 *   0 = relay (today's y-websocket behaviour), 1 = backup-only (the server
 *   forwards nothing live to this socket from other backup-only sockets, and
 *   nothing from it to them). The peer counts are what the client shows, for
 *   /metrics. The initial mode may also be given as the URL parameter
 *   `link=relay|backup`, so the server's greeting already follows it.
 * - `[stateQuery=103, nonce]` (client → server): once everything received on
 *   the socket before it is committed, the server answers
 * - `[stateAck=104, nonce, stateVector, deleteSetDigest]`: its committed Yjs
 *   state vector (`Y.encodeStateVector` bytes) and a digest of its encoded
 *   delete set (a state vector does not cover deletions).
 */
import * as Y from 'yjs'
import * as encoding from 'lib0/encoding'
import * as decoding from 'lib0/decoding'
import { MessageType } from './messages.ts'

/** Link modes a murmur client can ask for. A socket that never asks is a stock client (relay). */
export const LinkMode = { relay: 0, backup: 1 } as const

/** A link mode value. */
export type LinkModeValue = (typeof LinkMode)[keyof typeof LinkMode]

/** Encodes `[linkMode, mode, directPeers, relayedPeers]`. */
export function encodeLinkMode(mode: LinkModeValue, direct: number, relayed: number): Uint8Array {
  const enc = encoding.createEncoder()
  encoding.writeVarUint(enc, MessageType.linkMode)
  encoding.writeVarUint(enc, mode)
  encoding.writeVarUint(enc, direct)
  encoding.writeVarUint(enc, relayed)
  return encoding.toUint8Array(enc)
}

/** Encodes `[stateQuery, nonce]`. */
export function encodeStateQuery(nonce: number): Uint8Array {
  const enc = encoding.createEncoder()
  encoding.writeVarUint(enc, MessageType.stateQuery)
  encoding.writeVarUint(enc, nonce)
  return encoding.toUint8Array(enc)
}

/** Encodes `[stateAck, nonce, stateVector, deleteSetDigest]`. */
export function encodeStateAck(nonce: number, stateVector: Uint8Array, digest: number): Uint8Array {
  const enc = encoding.createEncoder()
  encoding.writeVarUint(enc, MessageType.stateAck)
  encoding.writeVarUint(enc, nonce)
  encoding.writeVarUint8Array(enc, stateVector)
  encoding.writeVarUint(enc, digest)
  return encoding.toUint8Array(enc)
}

/** A decoded state ack. */
export interface StateAck {
  nonce: number
  /** The encoded state vector, as sent (usable with `Y.encodeStateAsUpdate`). */
  stateVector: Uint8Array
  digest: number
}

/** Reads what follows the type of a state ack. Throws on truncated or malformed input. */
export function readStateAck(decoder: decoding.Decoder): StateAck {
  const nonce = decoding.readVarUint(decoder)
  const stateVector = decoding.readVarUint8Array(decoder)
  Y.decodeStateVector(stateVector) // validates
  const digest = decoding.readVarUint(decoder)
  return { nonce, stateVector, digest }
}

/**
 * A 53-bit digest of `doc`'s delete set in Yjs' canonical encoding (clients
 * sorted, adjacent ranges merged): two documents with the same deletions
 * have the same digest whatever order the deletions arrived in.
 */
export function deleteSetDigest(doc: Y.Doc): number {
  // Relative to its own state vector, the update holds no structs: only the delete set.
  return cyrb53(Y.encodeStateAsUpdate(doc, Y.encodeStateVector(doc)))
}

/** cyrb53 (public domain): a fast 53-bit non-cryptographic hash. */
function cyrb53(bytes: Uint8Array): number {
  let h1 = 0xdeadbeef
  let h2 = 0x41c6ce57
  for (let i = 0; i < bytes.length; i++) {
    const b = bytes[i]
    h1 = Math.imul(h1 ^ b, 2654435761)
    h2 = Math.imul(h2 ^ b, 1597334677)
  }
  h1 = Math.imul(h1 ^ (h1 >>> 16), 2246822507) ^ Math.imul(h2 ^ (h2 >>> 13), 3266489909)
  h2 = Math.imul(h2 ^ (h2 >>> 16), 2246822507) ^ Math.imul(h1 ^ (h1 >>> 13), 3266489909)
  return 4294967296 * (2097151 & h2) + (h1 >>> 0)
}

/** True when state vector `a` has something `b` lacks (some client's clock in `a` is beyond `b`'s). */
export function hasMore(a: ReadonlyMap<number, number>, b: ReadonlyMap<number, number>): boolean {
  for (const [client, clock] of a) if (clock > (b.get(client) ?? 0)) return true
  return false
}
