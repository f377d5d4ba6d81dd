/**
 * The client side of the hybrid data path (docs/protocol.md): decides what a
 * y-websocket backup link uploads and whether the server holds everything
 * this device holds.
 *
 * - In `backup` mode (peers reached directly) the link uploads this device's
 *   own edits at once, but a change that came from a peer only when the
 *   server turns out to lack it: after `reconcileMs` of quiet the link asks
 *   for the server's committed state (`stateQuery` with the digest of its
 *   state vector → `stateDelta`: "same", or the state-vector entries changed
 *   since the last answer, plus a delete-set digest; `stateAck` with the
 *   whole vector from older servers) and uploads what is missing, structs
 *   and deletes. Each change reaches the server about once: its author
 *   uploads it, the others only check. It sends only this device's own
 *   awareness.
 * - In `relay` mode it behaves like stock y-websocket (uploads everything it
 *   sees; the server forwards live to and from it).
 * - In both, `covered` is true only while the server's last committed state
 *   covers every change that came from peers (its own edits are counted by
 *   `DurabilityTracker`), and every `pollMs` (unless peers' changes keep
 *   arriving) a backup link asks again and pulls what the server has that
 *   this device lacks, once the mesh had an answer's time to bring it: split
 *   meshes converge through the server without live relay.
 */
import * as Y from 'yjs'
import type { Awareness } from 'y-protocols/awareness'
import type { WebsocketProvider } from 'y-websocket'
import * as encoding from 'lib0/encoding'
import * as decoding from 'lib0/decoding'
import { MessageType } from '../protocol/messages.ts'
import { applyStateVectorChanges, deleteSetDigest, encodeLinkMode, encodeStateQuery, hasMore, LinkMode, readStateAck, readStateDelta, stateVectorDigest, type StateAck, type StateDelta } from '../protocol/hybrid.ts'

/** How a link takes part in live forwarding. */
export type LinkModeName = 'relay' | 'backup'

/** Options of a `BackupLink`. */
export interface BackupLinkOptions {
  /** Whether an update with this origin came from a peer (WebRTC, another tab) rather than from this device's user. */
  isPeerOrigin: (origin: unknown) => boolean
  /** The mode to connect in (default relay). */
  mode?: LinkModeName
  /** Quiet time after a peer's change before asking the server whether it has it (ms, default 500). */
  reconcileMs?: number
  /** How often a backup-only link asks the server what it has (ms, default 2000): the bound on split-mesh convergence. */
  pollMs?: number
  /** Called when `covered` changes. */
  onChange?: () => void
}

const SYNC = 0
const STEP1 = 0
const UPDATE = 2
/** Longest wait between state queries while the server keeps disagreeing (ms). */
const MAX_BACKOFF_MS = 10_000
/** Queries sent and not yet answered, at most (the server answers each in order, or the socket closes). */
const MAX_OUTSTANDING = 4

/** This device's state when it sent one query: the answer is compared with it, not with later changes. */
interface AtQuery {
  encoded: Uint8Array
  sv: Map<number, number>
  digest: number
}

/**
 * Wraps a `WebsocketProvider` (created by the caller, not yet connected or
 * just created) with the hybrid upload policy. `destroy()` leaves the
 * provider to its owner.
 */
export class BackupLink {
  /** The current link mode. */
  mode: LinkModeName
  /** The server's last committed state covers every change this device got from peers. */
  covered = false
  /** Peer changes uploaded because the server lacked them (for tests and the bench). */
  uploads = 0

  readonly #ws: WebsocketProvider
  readonly #doc: Y.Doc
  readonly #opts: BackupLinkOptions
  readonly #upload: (update: Uint8Array, origin: unknown) => void
  readonly #sendAwareness: (changes: { added: number[]; updated: number[]; removed: number[] }, origin: unknown) => void
  #nonce = 0
  #asked = -1
  /** This device's state at each query not answered yet, by nonce. */
  readonly #queries = new Map<number, AtQuery>()
  /** The server's state vector as its compact answers (`stateDelta`) on this socket told it; null once it cannot be followed (then queries ask for the whole vector). */
  #serverSv: Map<number, number> | null = new Map()
  /** A peer's change arrived after the outstanding query was sent (the next query covers it). */
  #changedSinceQuery = false
  /** State the server lacked at the previous ack: uploaded only if it still lacks it now (its author had time to). */
  #lacked: Map<number, number> | null = null
  /** The server's state at the previous answer when it had structs this device lacked: pulled if still missing at the next (the mesh had time to bring them). */
  #ahead: Map<number, number> | null = null
  #timer: ReturnType<typeof setTimeout> | null = null
  /** Fires `reconcileMs` after the last change that came from a peer. */
  #quiet: ReturnType<typeof setTimeout> | null = null
  #lastPeerChange = 0
  #lastQueryAt = 0
  #poll: ReturnType<typeof setInterval> | null = null
  #misses = 0
  #pulled = false
  #peers = { direct: 0, relayed: 0 }
  #destroyed = false
  #followers = new Set<BackupLink>()

  constructor(ws: WebsocketProvider, awareness: Awareness, opts: BackupLinkOptions) {
    this.#ws = ws
    this.#doc = ws.doc
    this.#opts = opts
    this.mode = opts.mode ?? 'relay'
    ws.params.link = this.mode
    // Swap y-websocket's own listeners for filtered ones (its destroy() removes whatever they are then).
    this.#upload = ws._updateHandler
    this.#doc.off('update', ws._updateHandler)
    ws._updateHandler = this.#onUpdate
    this.#doc.on('update', this.#onUpdate)
    this.#sendAwareness = ws._awarenessUpdateHandler
    awareness.off('update', ws._awarenessUpdateHandler)
    ws._awarenessUpdateHandler = this.#onAwareness
    awareness.on('update', this.#onAwareness)
    ws.messageHandlers[MessageType.stateAck] = (_enc: encoding.Encoder, dec: decoding.Decoder) => this.#onStateAck(readStateAck(dec))
    ws.messageHandlers[MessageType.stateDelta] = (_enc: encoding.Encoder, dec: decoding.Decoder) => this.#onStateDelta(readStateDelta(dec))
    this.#poll = setInterval(() => {
      if (this.mode !== 'backup') return
      // While peers' changes keep arriving the quiet timer asks once they stop (each answer would
      // only list the writers that moved); still at least every MAX_BACKOFF_MS.
      const now = Date.now()
      if (now - this.#lastPeerChange < (opts.reconcileMs ?? 500) && now - this.#lastQueryAt < MAX_BACKOFF_MS) return
      this.#schedule(0)
    }, opts.pollMs ?? 2000)
  }

  /** Switches the link mode and reports the peer counts the user sees (for the server's /metrics). */
  setMode(mode: LinkModeName, direct: number, relayed: number): void {
    if (this.#destroyed) return
    const changed = mode !== this.mode
    if (!changed && direct === this.#peers.direct && relayed === this.#peers.relayed) return
    this.mode = mode
    this.#peers = { direct, relayed }
    this.#ws.params.link = mode
    if (changed) for (const f of this.#followers) f.setMode(mode, 0, 0)
    if (!this.#send(encodeLinkMode(mode === 'backup' ? LinkMode.backup : LinkMode.relay, direct, relayed))) return
    // Now relayed: catch up on what was not forwarded while backup-only.
    if (changed && mode === 'relay') this.#pull()
  }

  /** Makes `other` (a companion document's link) take this link's mode from now on. Returns the function that stops it. */
  follow(other: BackupLink): () => void {
    this.#followers.add(other)
    other.setMode(this.mode, 0, 0)
    return () => this.#followers.delete(other)
  }

  /** The link finished its sync handshake: check at once that the server has everything. */
  synced(): void {
    this.#misses = 0
    this.#send(encodeLinkMode(this.mode === 'backup' ? LinkMode.backup : LinkMode.relay, this.#peers.direct, this.#peers.relayed))
    this.#schedule(0)
  }

  /** The socket closed: nothing is known about the server until the next handshake. */
  closed(): void {
    this.#asked = -1
    // The server's record of what it told this socket went with it.
    this.#queries.clear()
    this.#serverSv = new Map()
    this.#ahead = null
    this.#setCovered(false)
  }

  /** Stops timers and restores nothing (the provider is destroyed by its owner). */
  destroy(): void {
    this.#destroyed = true
    if (this.#timer !== null) clearTimeout(this.#timer)
    if (this.#quiet !== null) clearTimeout(this.#quiet)
    if (this.#poll !== null) clearInterval(this.#poll)
    this.#timer = this.#poll = null
  }

  #onUpdate = (update: Uint8Array, origin: unknown) => {
    if (origin === this.#ws) return // came from the server: it has it
    if (this.#opts.isPeerOrigin(origin)) {
      this.#changedSinceQuery = true
      this.#setCovered(false)
      this.#lastPeerChange = Date.now()
      if (this.#quiet !== null) clearTimeout(this.#quiet)
      this.#quiet = setTimeout(() => {
        this.#quiet = null
        this.#schedule(0)
      }, this.#opts.reconcileMs ?? 500)
      if (this.mode === 'backup') return
    }
    this.#upload(update, origin)
  }

  #onAwareness = (changes: { added: number[]; updated: number[]; removed: number[] }, origin: unknown) => {
    if (this.mode === 'relay') return this.#sendAwareness(changes, origin)
    // Backup-only: only this device speaks for itself; peers send their own.
    const me = this.#doc.clientID
    const own = (ids: number[]) => (ids.includes(me) ? [me] : [])
    const mine = { added: own(changes.added), updated: own(changes.updated), removed: own(changes.removed) }
    if (mine.added.length + mine.updated.length + mine.removed.length > 0) this.#sendAwareness(mine, origin)
  }

  #schedule(ms: number) {
    if (this.#destroyed || this.#timer !== null) return
    this.#timer = setTimeout(() => {
      this.#timer = null
      if (!this.#ws.synced || this.#queries.size >= MAX_OUTSTANDING) return
      const encoded = Y.encodeStateVector(this.#doc)
      const atQuery = { encoded, sv: Y.decodeStateVector(encoded), digest: deleteSetDigest(this.#doc) }
      // With our state vector's digest a newer server answers compactly (`stateDelta`); an older one ignores it.
      const svDigest = this.#serverSv === null ? undefined : stateVectorDigest(encoded)
      if (!this.#send(encodeStateQuery(++this.#nonce, svDigest))) return
      this.#asked = this.#nonce
      this.#lastQueryAt = Date.now()
      this.#queries.set(this.#nonce, atQuery)
      this.#changedSinceQuery = false
    }, ms)
  }

  /** A compact answer: follow the server's state vector (every answer, even a stale one, moves it), then decide as for a full one. */
  #onStateDelta(delta: StateDelta) {
    const atQuery = this.#queries.get(delta.nonce)
    if (this.#serverSv === null) return
    if (delta.same && !atQuery) {
      this.#serverSv = null // cannot happen with an in-order server; fall back to whole state vectors
      return
    }
    if (delta.same) this.#serverSv = new Map(atQuery!.sv)
    else applyStateVectorChanges(this.#serverSv, delta.changes)
    const stateVector = delta.same ? atQuery!.encoded : Y.encodeStateVector(this.#serverSv)
    this.#onStateAck({ nonce: delta.nonce, stateVector, digest: delta.digest })
  }

  #onStateAck(ack: StateAck) {
    const atQuery = this.#queries.get(ack.nonce)
    // Answers come in order: this one also settles every earlier query.
    for (const nonce of this.#queries.keys()) if (nonce <= ack.nonce) this.#queries.delete(nonce)
    if (this.#destroyed || ack.nonce !== this.#asked || !atQuery) return
    const server = Y.decodeStateVector(ack.stateVector)
    // Compared with what this device held when it asked: a peer's change that arrived since may
    // be on its way to the server from its author, and the next query checks it.
    const { sv: local, digest } = atQuery
    const sameDeletes = ack.digest === digest
    const serverLacks = hasMore(local, server)
    // The server has structs this device lacks. While everyone types they are mostly on their way
    // over WebRTC from their authors: pull (its step 2 carries its whole delete set) only what it
    // had at the previous answer too and is still missing here, or at once when relaying (nothing
    // comes by the mesh then). Deletes this device lacks: pull at once.
    const now = Y.decodeStateVector(Y.encodeStateVector(this.#doc))
    const stillBehind = this.#ahead !== null && hasMore(this.#ahead, now)
    const behind = hasMore(server, local) && hasMore(server, now)
    const pull = !sameDeletes || (behind && (this.mode === 'relay' || stillBehind))
    if (pull) this.#pull()
    this.#ahead = behind && !pull ? server : null
    if (!serverLacks && sameDeletes) {
      this.#lacked = null
      this.#misses = 0
      this.#pulled = false
      this.#setCovered(!this.#changedSinceQuery)
      if (this.#ahead) this.#schedule(this.#opts.reconcileMs ?? 500)
      return
    }
    this.#setCovered(false)
    // Structs it lacked last time too (their authors had a reconcile interval to upload them), or
    // deletes it still lacks after a pull: upload the difference (with this device's delete set).
    const stillLacks = this.#lacked !== null && hasMore(this.#lacked, server)
    this.#lacked = serverLacks && !stillLacks ? local : null
    if (stillLacks || (!sameDeletes && this.#pulled)) {
      this.uploads++
      this.#send(syncFrame(UPDATE, Y.encodeStateAsUpdate(this.#doc, ack.stateVector)))
    }
    this.#pulled = !sameDeletes
    // Ask again: soon the first time, then backing off while the server keeps disagreeing.
    const delay = Math.min(MAX_BACKOFF_MS, (this.#opts.reconcileMs ?? 500) * 2 ** Math.max(0, this.#misses - 1))
    this.#misses++
    this.#schedule(delay)
  }

  #pull() {
    this.#send(syncFrame(STEP1, Y.encodeStateVector(this.#doc)))
  }

  #setCovered(covered: boolean) {
    if (covered === this.covered) return
    this.covered = covered
    this.#opts.onChange?.()
  }

  /** Sends a frame on the open socket; false when there is none. */
  #send(data: Uint8Array): boolean {
    const socket = this.#ws.ws
    if (!socket || socket.readyState !== 1) return false
    try {
      socket.send(data)
      return true
    } catch {
      return false // the close handler takes over
    }
  }
}

function syncFrame(subtype: number, payload: Uint8Array): Uint8Array {
  const enc = encoding.createEncoder()
  encoding.writeVarUint(enc, SYNC)
  encoding.writeVarUint(enc, subtype)
  encoding.writeVarUint8Array(enc, payload)
  return encoding.toUint8Array(enc)
}
