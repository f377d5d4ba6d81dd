/**
 * The private-document log channel (`/log/<docId>`): binary frames in lib0
 * encoding, each starting with a varUint message type. The server stores and
 * relays opaque ciphertext; it cannot merge, read or check it, only the
 * write capability (see `src/private/crypto.ts`). No DOM, no Node APIs.
 *
 * Client → server:
 * - `[subscribe, cursor]`: send every entry after `cursor` (the snapshot
 *   first when entries up to it were compacted), then `[caughtUp, lastSeq,
 *   entriesSinceSnapshot]`, then entries others append, live.
 * - `[append, nonce, proof, box, tag?]`: store `box`; answered `[appended,
 *   nonce, seq]` once it is committed to disk. `tag` (optional, 0–32 bytes):
 *   the entry's coverage tag (`src/private/coverage.ts`), kept in memory
 *   only and listed in `stateAck`.
 * - `[snapshot, nonce, proof, upToSeq, box]`: replace entries ≤ `upToSeq`
 *   by `box` atomically; answered `[snapshotDone, nonce, upToSeq, applied]`
 *   (`applied` 0: a snapshot at or after `upToSeq` was already there).
 * - `[awareness, box]`: relayed to the document's other sockets, never stored.
 * - `[linkMode, mode]`: 0 relay (default), 1 backup-only; also `?link=` on
 *   the URL. Entries and awareness go from X to Y only when X or Y relays.
 * - `[stateQuery, nonce, cursor]`: answered `[stateAck, nonce, lastSeq,
 *   complete, n, (seq, tag)…]`: the tags of entries after `cursor` (an entry
 *   sent without a tag has an empty one), except the asking socket's own. `complete` 0: the server cannot
 *   list every entry after `cursor` (too many, or from before it started
 *   keeping tags): catch up from the cursor instead.
 * - `[fetch, from, to]`: send the entries with seqs `from..to` (the snapshot
 *   first when some of them were compacted) as `entries`, nothing else.
 *
 * Server → client: `[entries, count, (seq, isSnapshot, box)…]`, `[caughtUp, …]`,
 * `[appended, …]`, `[snapshotDone, …]`, `[compacted, upToSeq]` (someone
 * compacted: count entries from there), `[awareness, box]`, `[stateAck, …]`.
 */
import * as encoding from 'lib0/encoding'
import * as decoding from 'lib0/decoding'

/** Message types of `/log/<docId>`. */
export const LogMessage = {
  subscribe: 0,
  append: 1,
  snapshot: 2,
  awareness: 3,
  linkMode: 4,
  stateQuery: 5,
  fetch: 6,
  entries: 10,
  caughtUp: 11,
  appended: 12,
  snapshotDone: 13,
  compacted: 14,
  stateAck: 15,
} as const

/** Largest coverage tag an append may carry. */
export const MAX_TAG_BYTES = 32

/** Link modes of `/log` (as on `/sync`). */
export const LogLinkMode = { relay: 0, backup: 1 } as const

/** One entry's coverage tag, as listed in a `stateAck`. */
export interface TaggedSeq {
  seq: number
  tag: Uint8Array
}

/** Bytes of a write proof. */
export const WRITE_PROOF_BYTES = 32

/** One stored entry as sent to clients. */
export interface LogEntry {
  seq: number
  /** The entry replaces every entry up to `seq` (an encrypted snapshot). */
  snapshot: boolean
  data: Uint8Array
}

/** A decoded client → server frame. */
export type ClientLogFrame =
  | { type: typeof LogMessage.subscribe; cursor: number }
  | { type: typeof LogMessage.append; nonce: number; proof: Uint8Array; data: Uint8Array; tag?: Uint8Array }
  | { type: typeof LogMessage.snapshot; nonce: number; proof: Uint8Array; upToSeq: number; data: Uint8Array }
  | { type: typeof LogMessage.awareness; data: Uint8Array }
  | { type: typeof LogMessage.linkMode; mode: number }
  | { type: typeof LogMessage.stateQuery; nonce: number; cursor: number }
  | { type: typeof LogMessage.fetch; from: number; to: number }

/** A decoded server → client frame. */
export type ServerLogFrame =
  | { type: typeof LogMessage.entries; entries: LogEntry[] }
  | { type: typeof LogMessage.caughtUp; lastSeq: number; count: number }
  | { type: typeof LogMessage.appended; nonce: number; seq: number }
  | { type: typeof LogMessage.snapshotDone; nonce: number; upToSeq: number; applied: boolean }
  | { type: typeof LogMessage.compacted; upToSeq: number }
  | { type: typeof LogMessage.awareness; data: Uint8Array }
  | { type: typeof LogMessage.stateAck; nonce: number; lastSeq: number; complete: boolean; tags: TaggedSeq[] }

function build(type: number, write: (e: encoding.Encoder) => void): Uint8Array {
  const e = encoding.createEncoder()
  encoding.writeVarUint(e, type)
  write(e)
  return encoding.toUint8Array(e)
}

/** Encodes a client → server frame. */
export function encodeClientFrame(f: ClientLogFrame): Uint8Array {
  return build(f.type, (e) => {
    switch (f.type) {
      case LogMessage.subscribe:
        encoding.writeVarUint(e, f.cursor)
        return
      case LogMessage.append:
        encoding.writeVarUint(e, f.nonce)
        encoding.writeVarUint8Array(e, f.proof)
        encoding.writeVarUint8Array(e, f.data)
        if (f.tag?.byteLength) encoding.writeVarUint8Array(e, f.tag)
        return
      case LogMessage.snapshot:
        encoding.writeVarUint(e, f.nonce)
        encoding.writeVarUint8Array(e, f.proof)
        encoding.writeVarUint(e, f.upToSeq)
        encoding.writeVarUint8Array(e, f.data)
        return
      case LogMessage.awareness:
        encoding.writeVarUint8Array(e, f.data)
        return
      case LogMessage.linkMode:
        encoding.writeVarUint(e, f.mode)
        return
      case LogMessage.stateQuery:
        encoding.writeVarUint(e, f.nonce)
        encoding.writeVarUint(e, f.cursor)
        return
      case LogMessage.fetch:
        encoding.writeVarUint(e, f.from)
        encoding.writeVarUint(e, f.to)
    }
  })
}

/** Thrown for a frame that does not decode (truncated, unknown type, trailing bytes). */
export class LogFrameError extends Error {
  override name = 'LogFrameError'
}

function decodeWith<T>(bytes: Uint8Array, read: (d: decoding.Decoder, type: number) => T): T {
  const d = decoding.createDecoder(bytes)
  let out: T
  try {
    out = read(d, decoding.readVarUint(d))
  } catch (err) {
    if (err instanceof LogFrameError) throw err
    throw new LogFrameError('truncated or malformed frame')
  }
  if (decoding.hasContent(d)) throw new LogFrameError('trailing bytes after the frame')
  return out
}

/** Decodes a client → server frame; throws `LogFrameError` on anything malformed. */
export function decodeClientFrame(bytes: Uint8Array): ClientLogFrame {
  return decodeWith<ClientLogFrame>(bytes, (d, type) => {
    switch (type) {
      case LogMessage.subscribe:
        return { type, cursor: decoding.readVarUint(d) }
      case LogMessage.append: {
        const f = { type, nonce: decoding.readVarUint(d), proof: decoding.readVarUint8Array(d), data: decoding.readVarUint8Array(d) }
        if (!decoding.hasContent(d)) return f
        const tag = decoding.readVarUint8Array(d)
        if (tag.byteLength > MAX_TAG_BYTES) throw new LogFrameError(`tag above ${MAX_TAG_BYTES} bytes`)
        return { ...f, tag }
      }
      case LogMessage.snapshot:
        return { type, nonce: decoding.readVarUint(d), proof: decoding.readVarUint8Array(d), upToSeq: decoding.readVarUint(d), data: decoding.readVarUint8Array(d) }
      case LogMessage.awareness:
        return { type, data: decoding.readVarUint8Array(d) }
      case LogMessage.linkMode: {
        const mode = decoding.readVarUint(d)
        if (mode !== LogLinkMode.relay && mode !== LogLinkMode.backup) throw new LogFrameError(`unknown link mode ${mode}`)
        return { type, mode }
      }
      case LogMessage.stateQuery:
        return { type, nonce: decoding.readVarUint(d), cursor: decoding.readVarUint(d) }
      case LogMessage.fetch:
        return { type, from: decoding.readVarUint(d), to: decoding.readVarUint(d) }
      default:
        throw new LogFrameError(`unknown message type ${type}`)
    }
  })
}

/** Encodes a server → client frame. */
export function encodeServerFrame(f: ServerLogFrame): Uint8Array {
  return build(f.type, (e) => {
    switch (f.type) {
      case LogMessage.entries:
        encoding.writeVarUint(e, f.entries.length)
        for (const x of f.entries) {
          encoding.writeVarUint(e, x.seq)
          encoding.writeVarUint(e, x.snapshot ? 1 : 0)
          encoding.writeVarUint8Array(e, x.data)
        }
        return
      case LogMessage.caughtUp:
        encoding.writeVarUint(e, f.lastSeq)
        encoding.writeVarUint(e, f.count)
        return
      case LogMessage.appended:
        encoding.writeVarUint(e, f.nonce)
        encoding.writeVarUint(e, f.seq)
        return
      case LogMessage.snapshotDone:
        encoding.writeVarUint(e, f.nonce)
        encoding.writeVarUint(e, f.upToSeq)
        encoding.writeVarUint(e, f.applied ? 1 : 0)
        return
      case LogMessage.compacted:
        encoding.writeVarUint(e, f.upToSeq)
        return
      case LogMessage.awareness:
        encoding.writeVarUint8Array(e, f.data)
        return
      case LogMessage.stateAck:
        encoding.writeVarUint(e, f.nonce)
        encoding.writeVarUint(e, f.lastSeq)
        encoding.writeVarUint(e, f.complete ? 1 : 0)
        encoding.writeVarUint(e, f.tags.length)
        for (const t of f.tags) {
          encoding.writeVarUint(e, t.seq)
          encoding.writeVarUint8Array(e, t.tag)
        }
    }
  })
}

/** Decodes a server → client frame; throws `LogFrameError` on anything malformed. */
export function decodeServerFrame(bytes: Uint8Array): ServerLogFrame {
  return decodeWith<ServerLogFrame>(bytes, (d, type) => {
    switch (type) {
      case LogMessage.entries: {
        const n = decoding.readVarUint(d)
        const entries: LogEntry[] = []
        for (let i = 0; i < n; i++) entries.push({ seq: decoding.readVarUint(d), snapshot: decoding.readVarUint(d) === 1, data: decoding.readVarUint8Array(d) })
        return { type, entries }
      }
      case LogMessage.caughtUp:
        return { type, lastSeq: decoding.readVarUint(d), count: decoding.readVarUint(d) }
      case LogMessage.appended:
        return { type, nonce: decoding.readVarUint(d), seq: decoding.readVarUint(d) }
      case LogMessage.snapshotDone:
        return { type, nonce: decoding.readVarUint(d), upToSeq: decoding.readVarUint(d), applied: decoding.readVarUint(d) === 1 }
      case LogMessage.compacted:
        return { type, upToSeq: decoding.readVarUint(d) }
      case LogMessage.awareness:
        return { type, data: decoding.readVarUint8Array(d) }
      case LogMessage.stateAck: {
        const nonce = decoding.readVarUint(d)
        const lastSeq = decoding.readVarUint(d)
        const complete = decoding.readVarUint(d) === 1
        const n = decoding.readVarUint(d)
        const tags: TaggedSeq[] = []
        for (let i = 0; i < n; i++) tags.push({ seq: decoding.readVarUint(d), tag: decoding.readVarUint8Array(d) })
        return { type, nonce, lastSeq, complete, tags }
      }
      default:
        throw new LogFrameError(`unknown message type ${type}`)
    }
  })
}
