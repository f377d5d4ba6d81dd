/**
 * y-webrtc messages of any size on the mesh. y-webrtc sends each message
 * as one data channel message, and a message above the channel's maximum
 * size (256 KiB in libwebrtc, less in some browsers) closes the connection
 * (@roamhq/wrtc) or is refused (Chromium throws; y-webrtc ignores it and the
 * update is lost): a big paste, or the sync step 2 of a big document when
 * two peers pair, never arrived. A message above `MESH_PART_BYTES` is therefore cut
 * into part frames `[111, total, offset, bytes]` (total and offset as
 * varUints) written through the connection's stream, which waits while the
 * data channel's buffer is full; the receiver puts them back together and
 * hands the whole message to y-webrtc as if it had arrived in one piece.
 * Smaller messages go unchanged (older peers keep working for those),
 * unless parts are still queued: then they follow as a one-part message, so
 * y-webrtc's messages stay in order.
 *
 * Untrusted input: a whole message is at most `MAX_WHOLE_MESSAGE_BYTES`
 * (and never of a murmur type, so parts cannot smuggle one); one message
 * per connection is in reassembly; a part that is oversized, malformed, out
 * of order or overlapping drops that connection's partial message and
 * changes nothing else.
 */
import * as encoding from 'lib0/encoding'
import * as decoding from 'lib0/decoding'
import { MeshMessage } from '../protocol/messages.ts'

/** Largest message sent in one piece on the mesh: 16 KiB fits every browser's data channel message size. */
export const MESH_PART_BYTES = 16 * 1024

/**
 * Largest message put back together (16 MiB). y-webrtc's largest message is
 * the sync step 2 of a whole document; the server takes a first sync of at
 * most this much in one `/sync` frame (`--max-frame-bytes` default, a ~1M
 * character text with history), so the mesh carries every document the
 * server can back up, and one connection holds at most this much while a
 * message is in reassembly.
 */
export const MAX_WHOLE_MESSAGE_BYTES = 16 * 1024 * 1024

/**
 * Most bytes of parts waiting in one connection's stream (32 MiB: two of
 * the largest messages). A peer that stops reading would otherwise hold
 * every big change this device makes; past this the connection is closed,
 * and pairing again brings that peer up to date with sync step 1/2.
 */
export const MAX_QUEUED_BYTES = 2 * MAX_WHOLE_MESSAGE_BYTES

/** Room left in a part for its header (type byte and two varUints of at most 5 bytes each). */
const HEADER_BYTES = 16
const meshTypes: ReadonlySet<number> = new Set(Object.values(MeshMessage))

/** Cuts `data` into part frames of at most `partBytes` each (header included), in order. */
export function splitMessage(data: Uint8Array, partBytes = MESH_PART_BYTES): Uint8Array[] {
  const room = partBytes - HEADER_BYTES
  const parts: Uint8Array[] = []
  for (let offset = 0; offset < data.byteLength; offset += room) {
    const e = encoding.createEncoder()
    encoding.writeUint8(e, MeshMessage.part)
    encoding.writeVarUint(e, data.byteLength)
    encoding.writeVarUint(e, offset)
    encoding.writeUint8Array(e, data.subarray(offset, offset + room))
    parts.push(encoding.toUint8Array(e))
  }
  return parts
}

/** Puts the part frames of one connection back together, one message at a time. */
export class PartAssembler {
  /** Largest whole message accepted. */
  readonly maxBytes: number
  /** Partial messages dropped because of a bad part (for tests). */
  dropped = 0
  #parts: Uint8Array[] = []
  #total = 0
  #received = 0
  #warned = false

  constructor(maxBytes = MAX_WHOLE_MESSAGE_BYTES) {
    this.maxBytes = maxBytes
  }

  /** Bytes of the message in reassembly received so far. */
  get held(): number {
    return this.#received
  }

  /** Takes one part frame; returns the whole message once this part completes it, else null. */
  push(frame: Uint8Array): Uint8Array | null {
    if (frame.byteLength > MESH_PART_BYTES) return this.#drop('an oversized part')
    let total: number
    let offset: number
    let start: number
    try {
      const d = decoding.createDecoder(frame)
      if (decoding.readUint8(d) !== MeshMessage.part) return this.#drop('not a part')
      total = decoding.readVarUint(d)
      offset = decoding.readVarUint(d)
      start = d.pos
    } catch {
      return this.#drop('a malformed part')
    }
    const bytes = frame.byteLength - start
    if (bytes === 0 || total > this.maxBytes || offset + bytes > total) return this.#drop('a part beyond its message')
    if (offset === 0) {
      if (meshTypes.has(frame[start])) return this.#drop('a part message of a murmur type')
      if (this.#received > 0) this.#drop('a new message before the last was whole')
      this.#total = total
    } else if (this.#received === 0 || offset !== this.#received || total !== this.#total) {
      return this.#drop('a part out of order')
    }
    this.#parts.push(frame.subarray(start))
    this.#received += bytes
    if (this.#received < this.#total) return null
    const whole = new Uint8Array(this.#total)
    let at = 0
    for (const part of this.#parts) {
      whole.set(part, at)
      at += part.byteLength
    }
    this.reset()
    return whole
  }

  /** Forgets the message in reassembly (the connection closed). */
  reset(): void {
    this.#parts = []
    this.#total = 0
    this.#received = 0
  }

  #drop(why: string): null {
    this.dropped++
    this.reset()
    if (!this.#warned) console.warn(`[murmur] mesh: a peer sent ${why}; its partial message was dropped`)
    this.#warned = true
    return null
  }
}

/** What this module uses of a y-webrtc connection's simple-peer. */
export interface PartPeer {
  send(data: Uint8Array): void
  write(data: Uint8Array): boolean
  destroy(): void
  readonly connected: boolean
  readonly destroyed?: boolean
  /** Bytes written to the stream and not yet handed to the channel. */
  readonly writableLength?: number
  /** simple-peer's data channel (open before `connected` turns true). */
  readonly _channel?: { readyState: string } | null
}

const assemblers = new WeakMap<object, PartAssembler>()

/**
 * Makes `peer` carry y-webrtc messages of any size: wraps its `send` (once
 * per peer) and returns the peer's assembler, to be fed every part frame
 * that arrives (`data[0] === MeshMessage.part`) and reset when it closes.
 * simple-peer's stream writes call `send` too: frames of murmur's mesh
 * types pass straight through. A peer with more than `maxQueuedBytes`
 * waiting (it stopped reading) is closed.
 */
export function carryWholeMessages(peer: PartPeer, maxBytes = MAX_WHOLE_MESSAGE_BYTES, maxQueuedBytes = MAX_QUEUED_BYTES): PartAssembler {
  const known = assemblers.get(peer)
  if (known) return known
  const assembler = new PartAssembler(maxBytes)
  assemblers.set(peer, assembler)
  const send = peer.send
  let queued = 0 // our parts written to the stream and not yet handed to the channel
  peer.send = function carry(data: Uint8Array) {
    if (meshTypes.has(data[0])) {
      if (data[0] === MeshMessage.part && queued > 0) queued--
      return send.call(peer, data)
    }
    // No open channel: as before (the send throws, y-webrtc ignores it). The channel opens, and the
    // other side's sync step 1 arrives, a moment before simple-peer says it connected, and y-webrtc
    // answers at once with the whole document: parts written then wait in the stream until the
    // connect (sent whole, a big answer closed the connection).
    const open = peer.connected || peer._channel?.readyState === 'open'
    if ((queued === 0 && data.byteLength <= MESH_PART_BYTES) || !open || peer.destroyed) return send.call(peer, data)
    if (data.byteLength > maxBytes) {
      console.warn(`[murmur] mesh: a ${data.byteLength}-byte message is above what a peer accepts; not sent`)
      return
    }
    if ((peer.writableLength ?? 0) + data.byteLength > maxQueuedBytes) {
      console.warn(`[murmur] mesh: a peer is not reading (${peer.writableLength} bytes waiting); closing its connection`)
      peer.destroy()
      return
    }
    for (const part of splitMessage(data)) {
      queued++
      peer.write(part)
    }
  }
  return assembler
}
