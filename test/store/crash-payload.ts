/** Deterministic row contents shared by `crash-writer.ts` and `crash.test.ts`. */

/** Documents the crash writer appends to concurrently. */
export const CRASH_DOCS = ['alpha', 'beta', 'gamma']

function fill(kind: number, doc: string, seq: number, length: number): Uint8Array {
  const out = new Uint8Array(length)
  const view = new DataView(out.buffer)
  out[0] = kind
  view.setUint32(1, seq)
  let x = (seq * 2654435761 + doc.length * 97 + doc.charCodeAt(0)) >>> 0
  for (let i = 5; i < length; i++) {
    x = (Math.imul(x, 1103515245) + 12345) >>> 0
    out[i] = x >>> 24
  }
  return out
}

/** Row `seq` of `doc`: kind 1, the seq, then 0–4 KiB of pseudo-random bytes. */
export function crashPayload(doc: string, seq: number): Uint8Array {
  return fill(1, doc, seq, 5 + ((seq * 7919) % 4096))
}

/** The snapshot standing for rows 1..`upToSeq` of `doc`: kind 2, the seq, 16 KiB. */
export function crashSnapshot(doc: string, upToSeq: number): Uint8Array {
  return fill(2, doc, upToSeq, 16 * 1024)
}
