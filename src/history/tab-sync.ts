/**
 * Versions between tabs of this browser: a BroadcastChannel per document's
 * history (the mesh skips other tabs, which y-webrtc reaches over its own
 * BroadcastChannel, and y-indexeddb does not tell one tab what another
 * stored). On open a tab says hello with its state vector; every tab answers
 * with what it lacks; every change that did not come from another tab goes
 * to the others as it happens — a peer's too, since a tab's own next version
 * may build on it (copies stay inside the browser; Yjs drops duplicates).
 * Messages: `[0, stateVector]` or `[1, update]` (same-origin tabs only).
 */
import * as Y from 'yjs'

const HELLO = 0
const UPDATE = 1

/** Syncs `doc` with the same history open in other tabs. `destroy()` closes the channel. */
export class HistoryTabSync {
  readonly #doc: Y.Doc
  readonly #channel: BroadcastChannel | null

  constructor(name: string, doc: Y.Doc) {
    this.#doc = doc
    this.#channel = typeof BroadcastChannel === 'function' ? new BroadcastChannel(`murmur:${name}`) : null
    if (!this.#channel) return
    this.#channel.onmessage = (e: MessageEvent) => this.#onMessage(e.data)
    doc.on('update', this.#onUpdate)
    this.#post(HELLO, Y.encodeStateVector(doc))
  }

  destroy(): void {
    this.#doc.off('update', this.#onUpdate)
    this.#channel?.close()
  }

  #post(kind: number, bytes: Uint8Array) {
    try {
      this.#channel?.postMessage([kind, bytes])
    } catch {
      // closed
    }
  }

  #onUpdate = (update: Uint8Array, origin: unknown) => {
    if (origin !== this) this.#post(UPDATE, update)
  }

  #onMessage(data: unknown) {
    if (!Array.isArray(data) || !(data[1] instanceof Uint8Array)) return
    try {
      if (data[0] === HELLO) {
        const update = Y.encodeStateAsUpdate(this.#doc, data[1])
        if (update.byteLength > 2) this.#post(UPDATE, update)
      } else if (data[0] === UPDATE) Y.applyUpdate(this.#doc, data[1], this)
    } catch (err) {
      console.warn('[murmur] history: a message from another tab could not be applied', err)
    }
  }
}
