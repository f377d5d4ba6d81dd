import * as Y from 'yjs'
import { Awareness, applyAwarenessUpdate, encodeAwarenessUpdate, removeAwarenessStates } from 'y-protocols/awareness'
import * as encoding from 'lib0/encoding'
import * as decoding from 'lib0/decoding'
import { AwarenessLedger, encodeAwarenessEntries, parseAwarenessUpdate, type AwarenessEntry } from './awareness.ts'
import type { ServerContext } from './context.ts'
import { localFanout, REMOTE_ORIGIN, type Fanout, type FanoutSubscription } from './fanout/fanout.ts'
import type { Store } from './store/store.ts'

/** A member of a room: told about every update and awareness change. */
export interface RoomMember {
  /** Called with each update integrated into the document (not for its own), and the member it came from. */
  onUpdate(update: Uint8Array, origin: unknown): void
  /** Called with each encoded awareness update, and the member it came from (null: the room itself). */
  onAwareness(update: Uint8Array, origin: unknown): void
}

/**
 * One loaded document: its Y.Doc, the awareness of its clients, and the
 * write-behind queue that persists every integrated update.
 *
 * Writes are group-committed: updates integrated in the same event-loop turn
 * go to storage in one transaction. `flushed()` resolves once everything
 * integrated before the call is committed — the basis of "backed up".
 *
 * Across instances (`fanout/`): each committed batch and each awareness change
 * is published on the document's channel; what other instances publish is
 * applied with `REMOTE_ORIGIN`, relayed to members, and never stored or
 * published again. A room subscribes before loading, catches up from storage
 * when the link comes back, and reads storage before compacting a shared
 * document, so a snapshot never drops rows another instance stored.
 */
export class Room {
  readonly doc = new Y.Doc({ gc: true })
  readonly awareness = new Awareness(this.doc)
  /** Which member speaks for which awareness client id, and the state bytes held. */
  readonly presence = new AwarenessLedger()
  readonly members = new Set<RoomMember>()
  /** Updates integrated since load: a version number for caches of the document's state. */
  changes = 0
  /** Set when an update failed to integrate: the in-memory document can no longer be trusted. */
  broken = false
  private queue: Uint8Array[] = []
  private enqueued = 0
  private committed = 0
  private waiters: { target: number; resolve: () => void }[] = []
  private writing = false
  private lastSeq = 0
  private rowsSinceSnapshot = 0
  /** Bytes accepted (integrated) since load, and of those, committed: for the document's stored size. */
  private acceptedBytes = 0
  private committedBytes = 0
  /** Stored size at load or at the last compaction, and `acceptedBytes` at that point. */
  private baseBytes = 0
  private baseAccepted = 0
  private outbox: Uint8Array[] | null = null
  private unloadTimer: NodeJS.Timeout | null = null
  private closed = false
  /** Set once the Y.Doc is destroyed (`closed` is set earlier, when closing starts and still compacts). */
  private destroyed = false
  private fanoutSub: FanoutSubscription | null = null
  /** Fan-out messages that arrived while loading (with their sender), applied once the stored state is in. */
  private early: [Buffer, string][] | null = []
  /** Each other instance that relayed awareness here, as the owner of the ids it spoke for first. */
  private readonly instances = new Map<string, object>()

  constructor(
    readonly docId: string,
    private readonly ctx: ServerContext,
    private readonly store: Store,
    private readonly fanout: Fanout = localFanout,
  ) {
    this.awareness.setLocalState(null)
    this.doc.on('update', this.handleDocUpdate)
    this.awareness.on('update', this.handleAwarenessUpdate)
  }

  /** Loads the stored document; compacts at once when the log is long. */
  async load(): Promise<void> {
    // Listen to the other instances first, so nothing committed between our load and the subscription is missed.
    this.fanoutSub = this.fanout.subscribe(`doc:${this.docId}`, {
      message: (payload, from) => (this.early ? this.early.push([payload, from]) : this.applyRemote(payload, from)),
      resync: () => void this.catchUp().catch(() => {}),
    })
    let stored
    try {
      stored = await this.store.load(this.docId)
    } catch (err) {
      this.fanoutSub.close()
      throw err
    }
    this.doc.off('update', this.handleDocUpdate)
    Y.transact(this.doc, () => {
      for (const update of stored.updates) {
        try {
          Y.applyUpdate(this.doc, update)
        } catch (err) {
          this.ctx.log.warn({ doc: this.docId, err: (err as Error).message }, 'skipping stored update that does not apply')
        }
      }
    })
    this.doc.on('update', this.handleDocUpdate)
    for (const [payload, from] of this.early ?? []) this.applyRemote(payload, from)
    this.early = null
    this.lastSeq = stored.lastSeq
    this.rowsSinceSnapshot = stored.updates.length
    this.baseBytes = stored.bytes
    if (this.rowsSinceSnapshot > this.ctx.config.compactAfterUpdates) await this.compact()
  }

  /**
   * Integrates a validated update from `origin`. Returns false (and leaves
   * the document and storage unchanged) when Yjs throws while integrating.
   */
  apply(update: Uint8Array, origin: unknown): boolean {
    this.outbox = []
    try {
      Y.applyUpdate(this.doc, update, origin)
    } catch (err) {
      // Whatever Yjs integrated before throwing stays out of storage and off
      // the wire; the room is marked broken so its owner reloads it.
      this.outbox = null
      this.broken = true
      this.ctx.log.warn({ doc: this.docId, err: (err as Error).message }, 'update failed to integrate')
      return false
    }
    const out = this.outbox
    this.outbox = null
    for (const u of out) this.accept(u, origin)
    return true
  }

  /**
   * The document's stored size once everything integrated is committed: the
   * snapshot plus the log since (what `--max-document-bytes` bounds).
   */
  get storedBytes(): number {
    return this.baseBytes + this.acceptedBytes - this.baseAccepted
  }

  /** Resolves once every update integrated before this call is committed to storage. */
  flushed(): Promise<void> {
    if (this.committed >= this.enqueued) return Promise.resolve()
    return new Promise((resolve) => this.waiters.push({ target: this.enqueued, resolve }))
  }

  /** Adds a member and cancels a pending unload. */
  join(member: RoomMember): void {
    this.members.add(member)
    if (this.unloadTimer) clearTimeout(this.unloadTimer)
    this.unloadTimer = null
  }

  /**
   * Removes a member and the awareness states it spoke for; when the room is
   * empty, schedules `onIdle` after the configured idle time.
   */
  leave(member: RoomMember, onIdle: () => void): void {
    this.members.delete(member)
    const ids = this.presence.release(member)
    if (ids.length) removeAwarenessStates(this.awareness, ids, member)
    if (this.members.size === 0 && !this.closed) {
      this.unloadTimer = setTimeout(onIdle, this.ctx.config.idleUnloadMs)
      this.unloadTimer.unref()
    }
  }

  /**
   * Flushes, compacts when anything was written since the last snapshot
   * (unless `compact` is false, as on shutdown, or the room is broken), and
   * frees the document.
   */
  async close(compact = true): Promise<void> {
    if (this.closed) return
    this.closed = true
    if (this.unloadTimer) clearTimeout(this.unloadTimer)
    await this.flushed()
    this.fanoutSub?.close()
    if (compact && this.rowsSinceSnapshot > 1 && !this.broken) await this.compact().catch(() => {})
    this.destroyed = true
    this.awareness.destroy()
    this.doc.destroy()
  }

  private handleDocUpdate = (update: Uint8Array, origin: unknown) => {
    if (this.outbox) this.outbox.push(update)
    else this.accept(update, origin)
  }

  private accept(update: Uint8Array, origin: unknown): void {
    this.changes++
    if (origin === REMOTE_ORIGIN) {
      // Stored by the instance that accepted it; only relay it to our members.
      for (const m of this.members) m.onUpdate(update, origin)
      return
    }
    this.queue.push(update)
    this.enqueued++
    this.acceptedBytes += update.byteLength
    if (!this.writing) {
      this.writing = true
      setImmediate(() => void this.writeLoop())
    }
    for (const m of this.members) if (m !== origin) m.onUpdate(update, origin)
  }

  private handleAwarenessUpdate = ({ added, updated, removed }: { added: number[]; updated: number[]; removed: number[] }, origin: unknown) => {
    const changed = added.concat(updated, removed)
    if (changed.length === 0) return
    // The awareness timeout (30 s without a renewal) frees ids another instance spoke for.
    if (origin === 'timeout') this.presence.forget(removed, (owner) => [...this.instances.values()].includes(owner))
    const enc = encodeAwarenessUpdate(this.awareness, changed)
    for (const m of this.members) m.onAwareness(enc, origin)
    if (origin !== REMOTE_ORIGIN) this.fanout.publish(`doc:${this.docId}`, fanoutMessage(FANOUT_AWARENESS, [enc]))
  }

  /**
   * Another instance went silent (`Fanout.onInstanceGone`): the presence it
   * relayed is dropped now and its ids are free for whoever claims them next.
   */
  instanceGone(from: string): void {
    const owner = this.instances.get(from)
    if (!owner) return
    this.instances.delete(from)
    const ids = this.presence.release(owner).filter((id) => this.awareness.getStates().has(id))
    // Removed at their current clock, not the next (as `removeAwarenessStates` would): the
    // user's next state change, from whichever instance they reconnect to, is then newer.
    const removals = ids.map((client) => ({ client, clock: this.awareness.meta.get(client)?.clock ?? 0, state: NULL_STATE }))
    if (removals.length) applyAwarenessUpdate(this.awareness, encodeAwarenessEntries(removals), REMOTE_ORIGIN)
  }

  /** Applies awareness another instance accepted, minus the ids someone else here or elsewhere holds (`AwarenessLedger.claimRemote`). */
  private applyRemoteAwareness(data: Uint8Array, from: string): void {
    let owner = this.instances.get(from)
    if (!owner) this.instances.set(from, (owner = { instance: from }))
    let entries: AwarenessEntry[]
    try {
      entries = parseAwarenessUpdate(data, Number.MAX_SAFE_INTEGER, Number.MAX_SAFE_INTEGER)
    } catch {
      return
    }
    const accepted = this.presence.claimRemote(owner, entries)
    if (accepted.length) applyAwarenessUpdate(this.awareness, encodeAwarenessEntries(accepted), REMOTE_ORIGIN)
  }

  /** Applies what another instance published: committed updates (not stored again) or awareness. */
  private applyRemote(payload: Buffer, from: string): void {
    if (this.destroyed) return
    const decoder = decoding.createDecoder(payload)
    const kind = decoding.readVarUint(decoder)
    const n = decoding.readVarUint(decoder)
    for (let i = 0; i < n; i++) {
      const data = decoding.readVarUint8Array(decoder)
      if (kind === FANOUT_UPDATES) Y.applyUpdate(this.doc, data, REMOTE_ORIGIN)
      else if (kind === FANOUT_AWARENESS) this.applyRemoteAwareness(data, from)
    }
  }

  /** Applies everything stored (after a gap in the fan-out, and before compacting a shared document). */
  private async catchUp(): Promise<void> {
    const stored = await this.store.load(this.docId)
    if (this.destroyed) return
    Y.transact(
      this.doc,
      () => {
        for (const u of stored.updates) {
          try {
            Y.applyUpdate(this.doc, u, REMOTE_ORIGIN)
          } catch {
            // Skipped at load too.
          }
        }
      },
      REMOTE_ORIGIN,
    )
    this.lastSeq = Math.max(this.lastSeq, stored.lastSeq)
  }

  private async writeLoop(): Promise<void> {
    while (this.queue.length > 0) {
      const batch = this.queue
      this.queue = []
      try {
        this.lastSeq = await this.store.append(this.docId, batch)
      } catch (err) {
        this.ctx.metrics.storageErrors.inc()
        this.ctx.log.error({ doc: this.docId, err: (err as Error).message }, 'storage append failed; retrying')
        this.queue = batch.concat(this.queue)
        await new Promise((r) => setTimeout(r, 1000))
        continue
      }
      this.committed += batch.length
      this.fanout.publish(`doc:${this.docId}`, fanoutMessage(FANOUT_UPDATES, batch))
      for (const u of batch) this.committedBytes += u.byteLength
      this.rowsSinceSnapshot += batch.length
      this.ctx.metrics.persistedUpdates.inc(batch.length)
      this.waiters = this.waiters.filter((w) => (w.target <= this.committed ? (w.resolve(), false) : true))
      if (this.rowsSinceSnapshot > this.ctx.config.compactAfterUpdates && this.queue.length === 0 && !this.broken && !this.closed) {
        await this.compact().catch(() => {})
      }
    }
    this.writing = false
  }

  /**
   * Replaces the stored log with one snapshot of the in-memory document.
   * Encoding the state costs ~12 ms for a 311 KB document with 260k edits,
   * whereas `Y.mergeUpdates` grows super-linearly with the number of rows —
   * so the snapshot comes from the live Y.Doc, which the room holds anyway.
   */
  private async compact(): Promise<void> {
    // Other instances may have stored rows up to our lastSeq that have not reached us yet: read them first.
    if (this.fanout.shared) await this.catchUp()
    const upTo = this.lastSeq
    const upToBytes = this.committedBytes
    const snapshot = Y.encodeStateAsUpdate(this.doc)
    try {
      await this.store.compact(this.docId, upTo, snapshot)
      this.rowsSinceSnapshot = 1 + (this.lastSeq - upTo)
      this.baseBytes = snapshot.byteLength
      this.baseAccepted = upToBytes
      this.ctx.metrics.compactions.inc()
    } catch (err) {
      this.ctx.metrics.storageErrors.inc()
      this.ctx.log.error({ doc: this.docId, err: (err as Error).message }, 'compaction failed')
      throw err
    }
  }
}

/** An awareness state meaning "gone" (JSON `null`). */
const NULL_STATE = new TextEncoder().encode('null')

const FANOUT_UPDATES = 0
const FANOUT_AWARENESS = 1

/** Encodes a fan-out message: its kind, then a list of updates. */
function fanoutMessage(kind: number, items: Uint8Array[]): Uint8Array {
  const enc = encoding.createEncoder()
  encoding.writeVarUint(enc, kind)
  encoding.writeVarUint(enc, items.length)
  for (const u of items) encoding.writeVarUint8Array(enc, u)
  return encoding.toUint8Array(enc)
}

/** Thrown by `open` when `--max-loaded-documents` are loaded and every one has members. */
export class RoomsFullError extends Error {
  override name = 'RoomsFullError'
}

/**
 * The set of loaded rooms. `open` loads a document on first use (concurrent
 * callers share one load); an idle room is flushed and unloaded, so memory
 * follows active documents, not stored ones.
 */
export function createRooms(ctx: ServerContext, store: Store, fanout: Fanout = localFanout) {
  const rooms = new Map<string, Promise<Room>>()
  /** Rooms whose load finished, for evicting idle ones when the cap is reached. */
  const loaded = new Map<string, Room>()
  const closing = new Map<string, Promise<void>>()
  // An instance that went silent takes its users' presence with it, in every loaded room.
  fanout.onInstanceGone((from) => {
    for (const room of loaded.values()) room.instanceGone(from)
  })

  async function unload(docId: string, room: Room): Promise<void> {
    if (room.members.size > 0) return
    const p = (async () => {
      rooms.delete(docId)
      loaded.delete(docId)
      await room.close()
      ctx.metrics.rooms.dec()
    })()
    closing.set(docId, p)
    await p.finally(() => closing.delete(docId))
  }

  return {
    /** Returns the loaded room for `docId`, loading it first if needed, with `member` joined. */
    async open(docId: string, member: RoomMember): Promise<Room> {
      await closing.get(docId)
      let p = rooms.get(docId)
      if (!p) {
        if (rooms.size >= ctx.config.maxLoadedDocuments) {
          // Idle rooms (waiting to unload) go first; with every room in use, refuse.
          for (const [id, r] of loaded) {
            if (rooms.size < ctx.config.maxLoadedDocuments) break
            if (r.members.size === 0) void unload(id, r)
          }
          if (rooms.size >= ctx.config.maxLoadedDocuments) throw new RoomsFullError(`${rooms.size} documents loaded, all in use`)
        }
        const room = new Room(docId, ctx, store, fanout)
        p = room.load().then(() => {
          loaded.set(docId, room)
          return room
        })
        rooms.set(docId, p)
        ctx.metrics.rooms.inc()
        p.catch(() => {
          rooms.delete(docId)
          ctx.metrics.rooms.dec()
        })
      }
      const room = await p
      room.join(member)
      return room
    },
    /**
     * Unloads a broken room now (its owner has closed its members): the next
     * `open` loads the document afresh from storage.
     */
    async reset(room: Room): Promise<void> {
      if (rooms.get(room.docId) === undefined) return
      for (const m of room.members) room.members.delete(m)
      await unload(room.docId, room)
    },
    /** Removes `member` and its awareness states; the room unloads after the idle time once empty. */
    leave(room: Room, member: RoomMember): void {
      room.leave(member, () => void unload(room.docId, room))
    },
    /** Number of loaded rooms. */
    get size() {
      return rooms.size
    },
    /** Flushes and unloads every room (shutdown: no compaction, so stopping stays fast). */
    async closeAll(): Promise<void> {
      const all = await Promise.allSettled(rooms.values())
      rooms.clear()
      loaded.clear()
      await Promise.all(all.map((r) => (r.status === 'fulfilled' ? r.value.close(false) : undefined)))
      await Promise.all(closing.values())
    },
  }
}

/** The room registry type. */
export type Rooms = ReturnType<typeof createRooms>
