import * as Y from 'yjs'

/** Thrown when bytes from the network are not a well-formed Yjs update. */
export class MalformedUpdateError extends Error {
  override name = 'MalformedUpdateError'
}

/**
 * What a Yjs (v1) update needs from a document, found by decoding it once.
 * It depends only on the update, so an update held for missing dependencies
 * is never decoded again: `statusOf` and `unmet` compare it with a state
 * vector in time proportional to the number of clients it names.
 */
export interface UpdateNeeds {
  /**
   * `[client, clock]` pairs: the update applies without pending structs or
   * deletes once the document's state vector reaches `clock` for every
   * `client` (it continues each client's history, and every item it
   * references or deletes exists in the document or in the update).
   */
  readonly needs: readonly (readonly [number, number])[]
  /** client → end clock of this update's structs (what it can add). */
  readonly ends: ReadonlyMap<number, number>
  /** The update deletes at least one range. */
  readonly deletes: boolean
  /** Structs (items, GCs) the update carries: what the document's struct count may grow by. */
  readonly structs: number
}

/** Bytes of updates `analyzeUpdate` has decoded in this process (exported as a metric: held updates must not be decoded again). */
export const decodeStats = { bytes: 0 }

/**
 * Decodes `update` once and returns what it needs (see `UpdateNeeds`).
 * Throws `MalformedUpdateError` on bytes that do not decode, and on an item
 * that references itself or a later item of its own client (Yjs throws on it).
 */
export function analyzeUpdate(update: Uint8Array): UpdateNeeds {
  let decoded: ReturnType<typeof Y.decodeUpdate>
  decodeStats.bytes += update.byteLength
  try {
    decoded = Y.decodeUpdate(update)
  } catch (err) {
    throw new MalformedUpdateError(`undecodable update: ${(err as Error).message}`)
  }
  const need = new Map<number, number>()
  const require = (client: number, clock: number) => {
    if (clock > (need.get(client) ?? 0)) need.set(client, clock)
  }
  // A client's structs continue its history: the first one, and any one after a
  // gap (Skip) in this update, needs the document to hold everything before it.
  const ends = new Map<number, number>()
  for (const s of decoded.structs) {
    if (s instanceof Y.Skip) continue
    const { client, clock } = s.id
    const end = ends.get(client)
    if (end === undefined || clock > end) require(client, clock)
    if (end === undefined || clock + s.length > end) ends.set(client, clock + s.length)
  }
  // Once those hold, the document plus this update cover [0, end) of each of its
  // clients; anything referenced or deleted beyond that must come from elsewhere.
  const covered = (client: number, clock: number) => clock < (ends.get(client) ?? 0)
  for (const s of decoded.structs) {
    if (!(s instanceof Y.Item)) continue
    const parent = s.parent as unknown
    for (const ref of [s.origin, s.rightOrigin, parent instanceof Y.ID ? parent : null]) {
      if (!ref) continue
      if (ref.client === s.id.client && ref.clock >= s.id.clock) throw new MalformedUpdateError('item references itself or a later item of its client')
      if (!covered(ref.client, ref.clock)) require(ref.client, ref.clock + 1)
    }
  }
  let deletes = false
  for (const [client, ranges] of decoded.ds.clients) {
    for (const r of ranges) {
      if (r.len === 0) continue
      deletes = true
      if (!covered(client, r.clock + r.len - 1)) require(client, r.clock + r.len)
    }
  }
  return { needs: [...need], ends, deletes, structs: decoded.structs.length }
}

/**
 * Index of the first need (from `from`) that `stateVector` does not meet, or
 * -1 when all are met. Callers that hold an update keep the index: a state
 * vector only grows, so needs already met are never checked again.
 */
export function unmet(needs: UpdateNeeds, stateVector: ReadonlyMap<number, number>, from = 0): number {
  for (let i = from; i < needs.needs.length; i++) {
    const [client, clock] = needs.needs[i]
    if ((stateVector.get(client) ?? 0) < clock) return i
  }
  return -1
}

/**
 * `'ready'` when the update applies cleanly to a document with `stateVector`
 * and changes it; `'missing'` when applying it now would leave pending
 * structs or deletes (hold it until the dependencies arrive); `'empty'` when
 * it adds nothing the document lacks.
 */
export function statusOf(needs: UpdateNeeds, stateVector: ReadonlyMap<number, number>): 'ready' | 'missing' | 'empty' {
  if (unmet(needs, stateVector) !== -1) return 'missing'
  if (needs.deletes) return 'ready'
  for (const [client, end] of needs.ends) if (end > (stateVector.get(client) ?? 0)) return 'ready'
  return 'empty'
}

/**
 * Checks a Yjs (v1) update against a document's state vector before it is
 * applied, so the server never integrates something it cannot vouch for:
 * `statusOf(analyzeUpdate(update), stateVector)`.
 */
export function checkUpdate(update: Uint8Array, stateVector: ReadonlyMap<number, number>): 'ready' | 'missing' | 'empty' {
  return statusOf(analyzeUpdate(update), stateVector)
}

/** Structs in `doc`'s store (Yjs keeps one array per client: O(clients), not O(structs)). */
export function structCount(doc: Y.Doc): number {
  let n = 0
  for (const structs of doc.store.clients.values()) n += structs.length
  return n
}

/**
 * The state vector of `doc` as a map, read straight from its struct store
 * (what `Y.encodeStateVector` encodes, without the encode/decode round trip).
 */
export function stateVectorOf(doc: Y.Doc): Map<number, number> {
  const sv = new Map<number, number>()
  for (const [client, structs] of doc.store.clients) {
    const last = structs[structs.length - 1]
    sv.set(client, last.id.clock + last.length)
  }
  return sv
}
