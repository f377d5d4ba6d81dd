import * as Y from 'yjs'

/** Thrown when bytes from the network are not a well-formed Yjs update. */
export class MalformedUpdateError extends Error {
  override name = 'MalformedUpdateError'
}

/**
 * Checks a Yjs (v1) update against a document's state vector before it is
 * applied, so the server never integrates something it cannot vouch for.
 *
 * Returns `'ready'` when every struct it adds continues a client's known
 * history and every item it references (origin, right origin, parent,
 * deleted range) exists in the document or earlier in the same update;
 * `'missing'` when applying it now would leave pending structs or deletes
 * (the caller holds it until the dependencies arrive); `'empty'` when it adds
 * nothing the document lacks. Throws `MalformedUpdateError` on bytes that do
 * not decode.
 */
export function checkUpdate(update: Uint8Array, stateVector: ReadonlyMap<number, number>): 'ready' | 'missing' | 'empty' {
  let decoded: ReturnType<typeof Y.decodeUpdate>
  try {
    decoded = Y.decodeUpdate(update)
  } catch (err) {
    throw new MalformedUpdateError(`undecodable update: ${(err as Error).message}`)
  }
  // Clock each client reaches once the contiguous part of this update is applied.
  const reach = new Map(stateVector)
  let adds = false
  for (const s of decoded.structs) {
    if (s instanceof Y.Skip) continue
    const { client, clock } = s.id
    const known = reach.get(client) ?? 0
    if (clock > known) return 'missing'
    const end = clock + s.length
    if (end > known) {
      reach.set(client, end)
      adds = true
    }
  }
  const has = (id: Y.ID | null) => id === null || id.clock < (reach.get(id.client) ?? 0)
  for (const s of decoded.structs) {
    if (!(s instanceof Y.Item)) continue
    if ((stateVector.get(s.id.client) ?? 0) >= s.id.clock + s.length) continue
    const parent = s.parent as unknown
    const refs = [s.origin, s.rightOrigin, parent instanceof Y.ID ? parent : null]
    // A client's item can only reference that client's earlier items: a
    // reference into itself or its own future is malformed (Yjs throws on it).
    for (const ref of refs) {
      if (ref && ref.client === s.id.client && ref.clock >= s.id.clock) throw new MalformedUpdateError('item references itself or a later item of its client')
    }
    if (!has(s.origin) || !has(s.rightOrigin) || (parent instanceof Y.ID && !has(parent))) return 'missing'
  }
  let deletes = false
  for (const [client, ranges] of decoded.ds.clients) {
    for (const r of ranges) {
      if (r.len === 0) continue
      if (r.clock + r.len > (reach.get(client) ?? 0)) return 'missing'
      deletes = true
    }
  }
  return adds || deletes ? 'ready' : 'empty'
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
