/**
 * Coverage tags: what lets a backup-only client of a private document know
 * whether the server's log holds a change it got from a peer, without the
 * server reading anything. A tag is a keyed hash (HMAC-SHA256 with a key
 * derived from the link key, 8 bytes) of what an update covers: the clock
 * range of each client's structs and its delete set, in canonical order.
 * The author of a change and every peer that receives it compute the same
 * tag; the server only compares tags for equality (`stateAck`).
 */
import * as Y from 'yjs'
import * as encoding from 'lib0/encoding'

/** Bytes of a tag. */
export const TAG_BYTES = 8

/** What `update` covers, canonically encoded (client ids ascending; delete ranges as Yjs wrote them, sorted and merged); null when it covers nothing. */
export function coverageOf(update: Uint8Array): Uint8Array | null {
  const { from, to } = Y.parseUpdateMeta(update)
  const { ds } = Y.decodeUpdate(update)
  const e = encoding.createEncoder()
  const clients = [...to.keys()].sort((a, b) => a - b)
  encoding.writeVarUint(e, clients.length)
  for (const c of clients) {
    encoding.writeVarUint(e, c)
    encoding.writeVarUint(e, from.get(c) ?? 0)
    encoding.writeVarUint(e, to.get(c)!)
  }
  const deleters = [...ds.clients.keys()].sort((a, b) => a - b)
  encoding.writeVarUint(e, deleters.length)
  for (const c of deleters) {
    // Yjs writes a delete set's ranges sorted and merged (as /sync's delete-set digest relies on too).
    const ranges = ds.clients.get(c)!
    encoding.writeVarUint(e, c)
    encoding.writeVarUint(e, ranges.length)
    for (const r of ranges) {
      encoding.writeVarUint(e, r.clock)
      encoding.writeVarUint(e, r.len)
    }
  }
  return clients.length === 0 && deleters.length === 0 ? null : encoding.toUint8Array(e)
}

/** The tag of `update` under `key` (an HMAC key from `deriveDocKeys`); null when the update covers nothing. */
export async function coverageTag(key: CryptoKey, update: Uint8Array): Promise<Uint8Array | null> {
  const what = coverageOf(update)
  if (!what) return null
  const mac = await globalThis.crypto.subtle.sign('HMAC', key, what as Uint8Array<ArrayBuffer>)
  return new Uint8Array(mac, 0, TAG_BYTES)
}

/** A tag as a map key. */
export function tagKey(tag: Uint8Array): string {
  let s = ''
  for (const b of tag) s += b.toString(16).padStart(2, '0')
  return s
}
