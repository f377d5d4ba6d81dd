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
 * - `[append, nonce, proof, box]`: store `box`; answered `[appended, nonce,
 *   seq]` once it is committed to disk.
 * - `[snapshot, nonce, proof, upToSeq, box]`: replace entries ≤ `upToSeq`
 *   by `box` atomically; answered `[snapshotDone, nonce, upToSeq, applied]`
 *   (`applied` 0: a snapshot at or after `upToSeq` was already there).
 * - `[awareness, box]`: relayed to the document's other sockets, never stored.
 *
 * Server → client: `[entries, count, (seq, isSnapshot, box)…]`, `[caughtUp, …]`,
 * `[appended, …]`, `[snapshotDone, …]`, `[compacted, upToSeq]` (someone
 * compacted: count entries from there), `[awareness, box]`.
 */
import * as encoding from 'lib0/encoding'
import * as decoding from 'lib0/decoding'

/** Message types of `/log/<docId>`. */
export const LogMessage = {
  subscribe: 0,
  append: 1,
  snapshot: 2,
  awareness: 3,
  entries: 10,
  caughtUp: 11,
  appended: 12,
  snapshotDone: 13,
  compacted: 14,
} as const

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
  | { type: typeof LogMessage.append; nonce: number; proof: Uint8Array; data: Uint8Array }
  | { type: typeof LogMessage.snapshot; nonce: number; proof: Uint8Array; upToSeq: number; data: Uint8Array }
  | { type: typeof LogMessage.awareness; data: Uint8Array }

/** A decoded server → client frame. */
export type ServerLogFrame =
  | { type: typeof LogMessage.entries; entries: LogEntry[] }
  | { type: typeof LogMessage.caughtUp; lastSeq: number; count: number }
  | { type: typeof LogMessage.appended; nonce: number; seq: number }
  | { type: typeof LogMessage.snapshotDone; nonce: number; upToSeq: number; applied: boolean }
  | { type: typeof LogMessage.compacted; upToSeq: number }
  | { type: typeof LogMessage.awareness; data: Uint8Array }

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
        return
      case LogMessage.snapshot:
        encoding.writeVarUint(e, f.nonce)
        encoding.writeVarUint8Array(e, f.proof)
        encoding.writeVarUint(e, f.upToSeq)
        encoding.writeVarUint8Array(e, f.data)
        return
      case LogMessage.awareness:
        encoding.writeVarUint8Array(e, f.data)
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
      case LogMessage.append:
        return { type, nonce: decoding.readVarUint(d), proof: decoding.readVarUint8Array(d), data: decoding.readVarUint8Array(d) }
      case LogMessage.snapshot:
        return { type, nonce: decoding.readVarUint(d), proof: decoding.readVarUint8Array(d), upToSeq: decoding.readVarUint(d), data: decoding.readVarUint8Array(d) }
      case LogMessage.awareness:
        return { type, data: decoding.readVarUint8Array(d) }
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
      default:
        throw new LogFrameError(`unknown message type ${type}`)
    }
  })
}
