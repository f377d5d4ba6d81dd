/**
 * What the server is known to hold of a private document, as a Yjs state
 * vector (client id → clock) merged from every entry read from or
 * acknowledged by the log. The server cannot compute a diff (it only has
 * ciphertext), so on (re)connect the client sends what lies beyond it.
 */
import * as Y from 'yjs'

/** A state vector as a map. */
export type StateVector = Map<number, number>

/** Raises `into` to cover everything in `update` (an update's state vector, merged by max clock). */
export function coverUpdate(into: StateVector, update: Uint8Array): void {
  for (const [client, clock] of Y.decodeStateVector(Y.encodeStateVectorFromUpdate(update))) {
    if ((into.get(client) ?? 0) < clock) into.set(client, clock)
  }
}

/** True when `doc` has structs beyond `known`. */
export function aheadOf(doc: Y.Doc, known: StateVector): boolean {
  for (const [client, clock] of Y.decodeStateVector(Y.encodeStateVector(doc))) if ((known.get(client) ?? 0) < clock) return true
  return false
}

/** Encodes `sv` for `Y.encodeStateAsUpdate` and for storage. */
export function encodeSv(sv: StateVector): Uint8Array {
  return Y.encodeStateVector(sv as unknown as Y.Doc)
}

/** Decodes what `encodeSv` wrote; an unreadable value is an empty vector. */
export function decodeSv(bytes: unknown): StateVector {
  if (!(bytes instanceof Uint8Array)) return new Map()
  try {
    return Y.decodeStateVector(bytes)
  } catch {
    return new Map()
  }
}
