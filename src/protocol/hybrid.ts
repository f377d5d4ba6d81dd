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
 * - `[stateQuery=103, nonce, svDigest?]` (client → server): once everything
 *   received on the socket before it is committed, the server answers
 * - `[stateAck=104, nonce, stateVector, deleteSetDigest]`: its committed Yjs
 *   state vector (`Y.encodeStateVector` bytes) and a digest of its encoded
 *   delete set (a state vector does not cover deletions); or, when the query
 *   carried the digest of the client's state vector (newer clients),
 * - `[stateDelta=105, nonce, same, entries, deleteSetDigest]`: `same` = 1
 *   when the committed state vector has that digest, else the entries
 *   `(client, clock)` that changed since the previous 105 on this socket
 *   (clock 0: entry gone). Both sides keep the last state vector sent, so an
 *   ack costs what changed, not the number of writers.
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

/**
 * Encodes `[stateQuery, nonce, svDigest?]`. With `svDigest` (the digest of
 * the asker's state vector, `stateVectorDigest`) a newer server answers with
 * a compact `stateDelta`; an older one ignores it and answers `stateAck`.
 */
export function encodeStateQuery(nonce: number, svDigest?: number): Uint8Array {
  const enc = encoding.createEncoder()
  encoding.writeVarUint(enc, MessageType.stateQuery)
  encoding.writeVarUint(enc, nonce)
  if (svDigest !== undefined) encoding.writeVarUint(enc, svDigest)
  return encoding.toUint8Array(enc)
}

/** A decoded state query: `svDigest` is null for older clients (answer with a full `stateAck`). */
export interface StateQuery {
  nonce: number
  svDigest: number | null
}

/** Reads what follows the type of a state query. Throws on truncated or malformed input. */
export function readStateQuery(decoder: decoding.Decoder): StateQuery {
  const nonce = decoding.readVarUint(decoder)
  const svDigest = decoding.hasContent(decoder) ? decoding.readVarUint(decoder) : null
  return { nonce, svDigest }
}

/** A 53-bit digest of an encoded state vector (`Y.encodeStateVector` sorts its entries, so equal vectors have equal digests). */
export function stateVectorDigest(stateVector: Uint8Array): number {
  return cyrb53(stateVector)
}

/** A state vector as a map from client id to clock. */
export type StateVector = ReadonlyMap<number, number>

/** The entries of `next` that differ from `known`, with clock 0 for clients `next` lacks. */
export function stateVectorChanges(known: StateVector, next: StateVector): [number, number][] {
  const out: [number, number][] = []
  if (known === next) return out
  for (const [client, clock] of next) if (known.get(client) !== clock) out.push([client, clock])
  for (const client of known.keys()) if (!next.has(client)) out.push([client, 0])
  return out
}

/** Applies `changes` (from `stateVectorChanges`) to `sv` in place. */
export function applyStateVectorChanges(sv: Map<number, number>, changes: readonly (readonly [number, number])[]): void {
  for (const [client, clock] of changes) {
    if (clock === 0) sv.delete(client)
    else sv.set(client, clock)
  }
}

/** Encodes `[stateDelta, nonce, same, count, (client, clock)*, deleteSetDigest]`. */
export function encodeStateDelta(nonce: number, same: boolean, changes: readonly (readonly [number, number])[], digest: number): Uint8Array {
  const enc = encoding.createEncoder()
  encoding.writeVarUint(enc, MessageType.stateDelta)
  encoding.writeVarUint(enc, nonce)
  encoding.writeVarUint(enc, same ? 1 : 0)
  if (!same) {
    encoding.writeVarUint(enc, changes.length)
    for (const [client, clock] of changes) {
      encoding.writeVarUint(enc, client)
      encoding.writeVarUint(enc, clock)
    }
  }
  encoding.writeVarUint(enc, digest)
  return encoding.toUint8Array(enc)
}

/** A decoded compact state ack: `same`, or the state-vector entries changed since the previous one on this socket. */
export interface StateDelta {
  nonce: number
  same: boolean
  changes: [number, number][]
  digest: number
}

/** Reads what follows the type of a compact state ack. Throws on truncated or malformed input. */
export function readStateDelta(decoder: decoding.Decoder): StateDelta {
  const nonce = decoding.readVarUint(decoder)
  const same = decoding.readVarUint(decoder) === 1
  const changes: [number, number][] = []
  if (!same) {
    const count = decoding.readVarUint(decoder)
    // Each entry takes at least two bytes: a count beyond the frame is malformed.
    if (count * 2 > decoder.arr.length - decoder.pos) throw new Error('state delta: count beyond the frame')
    for (let i = 0; i < count; i++) changes.push([decoding.readVarUint(decoder), decoding.readVarUint(decoder)])
  }
  const digest = decoding.readVarUint(decoder)
  return { nonce, same, changes, digest }
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
