/**
 * Versions over the WebRTC mesh, with or without a server: the history
 * companion document syncs on the document's own data channels (a
 * `MeshPort` of type `MeshMessage.history`), so two devices that only ever
 * met each other share their versions.
 *
 * Frames: `[110, 0, stateVector]` is the hello ("send me what I lack"),
 * always answered (even with an empty update), sent to each peer when its
 * channel opens (and to all on attach) but one at a time: a newcomer asks
 * the next peer only after the previous answer is in (or nothing of it came
 * for `ANSWER_WAIT_MS`), so it downloads a history about once, not once per
 * peer;
 * `[110, 1, last, bytes]` is one part of an update (the answer to a hello,
 * or a version just taken here), cut at `MESH_PART_BYTES` because a whole
 * history is several MB and data channel messages are not. Parts of one
 * update arrive in order (one ordered channel, one sender queue).
 *
 * What is sent live: this device's own changes (new versions, pruning) to
 * every peer; what came from a peer or from storage/server only while
 * `forward()` says the mesh is incomplete (like the text, `mesh.ts`).
 * Untrusted input: a state vector above `maxStateVectorBytes` or an update
 * above `maxUpdateBytes` is dropped; an update that fails to apply is
 * skipped with one warning; an answer that would queue more than
 * `maxQueuedBytes` for one peer is not sent. Records inside are checked by
 * `readVersion`.
 */
import * as Y from 'yjs'
import * as encoding from 'lib0/encoding'
import * as decoding from 'lib0/decoding'
import { MESH_PART_BYTES, type MeshPort } from '../session/mesh-port.ts'

const HELLO = 0
const PART = 1
/** How long to wait for any part of an answer before saying hello to the next peer anyway (ms). */
const ANSWER_WAIT_MS = 5_000

/** Options of a `HistoryMeshSync`. */
export interface HistoryMeshOptions {
  /** Whether changes that did not start on this device must be passed on (the mesh is incomplete). */
  forward: () => boolean
  /** Whether `origin` is one of this document's providers (storage, server): such changes are not this device's own. */
  isProviderOrigin: (origin: unknown) => boolean
  /** Largest update accepted from a peer (default 64 MiB: a full history of a 16 M-character retention). */
  maxUpdateBytes?: number
  /** Largest state vector accepted from a peer (default 1 MiB). */
  maxStateVectorBytes?: number
  /** Bytes queued for one peer beyond which an update for it is not sent (default 64 MiB). */
  maxQueuedBytes?: number
}

interface Inbox {
  parts: Uint8Array[]
  bytes: number
  dropping: boolean
}

/** Syncs `doc` with every peer of `port`. `destroy()` stops it (the port stays with the session). */
export class HistoryMeshSync {
  /** Updates from peers applied (for tests). */
  received = 0
  /** Bytes of update parts sent (for tests and the bench). */
  sentBytes = 0
  readonly #doc: Y.Doc
  readonly #port: MeshPort
  readonly #opts: HistoryMeshOptions
  readonly #inbox = new Map<string, Inbox>()
  readonly #detach: () => void
  #from: string | null = null
  #warned = false
  /** The peer whose answer to our hello is awaited; hellos to the others wait for it. */
  #asking: string | null = null
  #waiting = new Set<string>()
  #askTimer: ReturnType<typeof setTimeout> | null = null

  constructor(doc: Y.Doc, port: MeshPort, opts: HistoryMeshOptions) {
    this.#doc = doc
    this.#port = port
    this.#opts = opts
    doc.on('update', this.#onUpdate)
    this.#detach = port.attach({
      connect: (peerId) => this.#hello(peerId),
      message: (peerId, data) => this.#onMessage(peerId, data),
      disconnect: (peerId) => {
        this.#inbox.delete(peerId)
        this.#waiting.delete(peerId)
        if (this.#asking === peerId) this.#askNext()
      },
    })
  }

  destroy(): void {
    if (this.#askTimer !== null) clearTimeout(this.#askTimer)
    this.#detach()
    this.#doc.off('update', this.#onUpdate)
    this.#inbox.clear()
  }

  // One hello at a time: every peer would answer a newcomer with the same history, so the others
  // are asked once the first answer is in, when what they add is only what that one lacked.
  #hello(peerId: string) {
    if (this.#asking !== null && this.#asking !== peerId) return void this.#waiting.add(peerId)
    this.#asking = peerId
    this.#restartAskTimer()
    const e = encoding.createEncoder()
    encoding.writeVarUint(e, this.#port.type)
    encoding.writeVarUint(e, HELLO)
    encoding.writeVarUint8Array(e, Y.encodeStateVector(this.#doc))
    this.#port.send(peerId, encoding.toUint8Array(e))
  }

  #restartAskTimer() {
    if (this.#askTimer !== null) clearTimeout(this.#askTimer)
    this.#askTimer = setTimeout(() => this.#askNext(), ANSWER_WAIT_MS)
  }

  #askNext() {
    if (this.#askTimer !== null) clearTimeout(this.#askTimer)
    this.#askTimer = null
    this.#asking = null
    const open = new Set(this.#port.peers())
    for (const peerId of this.#waiting) {
      this.#waiting.delete(peerId)
      if (open.has(peerId)) return this.#hello(peerId)
    }
  }

  #onUpdate = (update: Uint8Array, origin: unknown) => {
    const own = origin !== this && !this.#opts.isProviderOrigin(origin)
    if (!own && !this.#opts.forward()) return
    for (const peerId of this.#port.peers()) if (peerId !== this.#from || origin !== this) this.#sendUpdate(peerId, update)
  }

  #sendUpdate(peerId: string, update: Uint8Array) {
    // A peer that does not read (or asks again and again) gets nothing more until its queue drains,
    // so what one peer can make this device hold stays bounded; its next hello recovers the rest.
    if (this.#port.queued(peerId) + update.byteLength > (this.#opts.maxQueuedBytes ?? 64 * 1024 * 1024)) return
    const room = MESH_PART_BYTES - 8
    for (let at = 0; at < update.byteLength || at === 0; at += room) {
      const part = update.subarray(at, at + room)
      const e = encoding.createEncoder()
      encoding.writeVarUint(e, this.#port.type)
      encoding.writeVarUint(e, PART)
      encoding.writeUint8(e, at + room >= update.byteLength ? 1 : 0)
      encoding.writeUint8Array(e, part)
      if (!this.#port.send(peerId, encoding.toUint8Array(e))) return
      this.sentBytes += part.byteLength
    }
  }

  #onMessage(peerId: string, data: Uint8Array) {
    const d = decoding.createDecoder(data)
    decoding.readVarUint(d) // the port's type
    const kind = decoding.readVarUint(d)
    if (kind === HELLO) {
      const sv = decoding.readVarUint8Array(d)
      if (sv.byteLength > (this.#opts.maxStateVectorBytes ?? 1024 * 1024)) return
      let update: Uint8Array
      try {
        update = Y.encodeStateAsUpdate(this.#doc, sv)
      } catch (err) {
        return this.#warn(err)
      }
      // Answered even when empty (two zero bytes), so the asker knows it may ask the next peer.
      this.#sendUpdate(peerId, update)
      return
    }
    if (kind !== PART) return
    const last = decoding.readUint8(d) === 1
    const part = decoding.readTailAsUint8Array(d)
    if (peerId === this.#asking && !last) this.#restartAskTimer()
    const box = this.#inbox.get(peerId) ?? { parts: [], bytes: 0, dropping: false }
    this.#inbox.set(peerId, box)
    if (!box.dropping) {
      box.bytes += part.byteLength
      if (box.bytes > (this.#opts.maxUpdateBytes ?? 64 * 1024 * 1024)) {
        box.dropping = true
        box.parts = []
      } else box.parts.push(part.slice())
    }
    if (!last) return
    const { parts, dropping } = box
    this.#inbox.delete(peerId)
    if (dropping) this.#warn(new Error('update above maxUpdateBytes'))
    else this.#apply(peerId, parts.length === 1 ? parts[0]! : concat(parts))
    // Applied first, so the next hello already says what this answer brought.
    if (peerId === this.#asking) this.#askNext()
  }

  #apply(peerId: string, update: Uint8Array) {
    this.#from = peerId
    try {
      Y.applyUpdate(this.#doc, update, this)
      this.received++
    } catch (err) {
      this.#warn(err)
    } finally {
      this.#from = null
    }
  }

  #warn(err: unknown) {
    if (this.#warned) return
    this.#warned = true
    console.warn('[murmur] history: skipping a message from a peer that cannot be applied; later ones are skipped silently', err)
  }
}

function concat(parts: Uint8Array[]): Uint8Array {
  const out = new Uint8Array(parts.reduce((n, p) => n + p.byteLength, 0))
  let at = 0
  for (const p of parts) {
    out.set(p, at)
    at += p.byteLength
  }
  return out
}
