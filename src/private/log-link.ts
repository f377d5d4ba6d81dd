/**
 * The backup link of a private document: `/log/<docId>` (protocol in
 * `src/protocol/log.ts`). Every update this client makes or receives from
 * peers is sealed with the content key and appended; the server's ack
 * (after its commit) is what "backed up" means. On (re)connect it catches up
 * from a cursor kept beside the document in IndexedDB, applies what it can
 * decrypt (skipping, with one console message, entries that fail to decrypt
 * or apply), then appends whatever the server is not known to hold. It
 * relays awareness sealed with the awareness key, and compacts: once the log
 * since the last snapshot is long, it uploads a sealed snapshot replacing
 * the entries up to its cursor (the server does it atomically; entries
 * appended meanwhile stay).
 *
 * Events (lib0 ObservableV2): `status` ({status}), `synced` (caught up and
 * everything local sent), `ack` (the tracker nonce now durable),
 * `connection-close` ({code}), `closed` ({code}: permanent, no reconnect).
 */
import * as Y from 'yjs'
import { ObservableV2 } from 'lib0/observable'
import * as decoding from 'lib0/decoding'
import { applyAwarenessUpdate, encodeAwarenessUpdate, removeAwarenessStates, type Awareness } from 'y-protocols/awareness'
import { decodeServerFrame, encodeClientFrame, LogMessage, type LogEntry, type ServerLogFrame } from '../protocol/log.ts'
import { open, seal, type DocKeys } from './crypto.ts'
import { aheadOf, coverUpdate, decodeSv, encodeSv, type StateVector } from './state-vector.ts'

/** Where the cursor and the server's known state vector are kept (y-indexeddb's `get`/`set`), or nothing. */
export interface LogMeta {
  get(key: string): Promise<unknown>
  set(key: string, value: unknown): Promise<unknown>
}

/** Options of a `PrivateLogLink`. */
export interface PrivateLogOptions {
  /** ws(s) base URL of the log endpoint, e.g. `ws://host/log`. */
  url: string
  docId: string
  doc: Y.Doc
  awareness: Awareness
  keys: DocKeys
  token?: string | null
  /** The durability tracker's current change count: an ack of an append sent now means that many are durable. */
  nonce: () => number
  /** Updates from these origins are not appended live (IndexedDB replays); the reconnect diff covers them. */
  skipOrigin?: (origin: unknown) => boolean
  meta?: LogMeta | null
  /** Entries since the last snapshot before this client compacts (default 500). */
  compactAfter?: number
  WebSocketPolyfill?: unknown
}

/** Events of a `PrivateLogLink`. */
export type PrivateLogEvents = {
  status: (e: { status: 'connecting' | 'connected' | 'disconnected' }) => void
  synced: (synced: boolean) => void
  ack: (nonce: number) => void
  'connection-close': (e: { code: number }) => void
  closed: (e: { code: number }) => void
  compacted: (e: { upToSeq: number }) => void
}

const META_CURSOR = 'logCursor'
const META_SV = 'logServerSv'
const META_DIRTY = 'logDirty'

/** A private document's connection to the server's encrypted log. */
export class PrivateLogLink extends ObservableV2<PrivateLogEvents> {
  /** Caught up on the current connection and every local change sent. */
  synced = false
  /** Last seq applied in order (persisted). */
  cursor = 0
  /** Entries the server holds since its last snapshot, as far as this client knows. */
  sinceSnapshot = 0
  /** Entries that could not be decrypted or applied (skipped). */
  skipped = 0
  /** The socket, while one exists. */
  ws: WebSocket | null = null

  #o: PrivateLogOptions
  #known: StateVector = new Map()
  #dirty = false
  #appendId = 0
  #inflight = new Map<number, { nonce: number; update: Uint8Array }>()
  #in: Promise<void> = Promise.resolve()
  #out: Promise<void> = Promise.resolve()
  #destroyed = false
  #attempts = 0
  #timer: ReturnType<typeof setTimeout> | null = null
  #saveTimer: ReturnType<typeof setTimeout> | null = null
  #compacting = false
  #noCompaction = false
  #warned = false
  #remoteAwareness = new Set<number>()
  #ready: Promise<void>

  constructor(opts: PrivateLogOptions) {
    super()
    this.#o = opts
    opts.doc.on('update', this.#onUpdate)
    opts.awareness.on('update', this.#onAwareness)
    this.#ready = this.#loadMeta().then(() => this.#connect())
  }

  async #loadMeta(): Promise<void> {
    const meta = this.#o.meta
    if (!meta) return
    const [cursor, sv, dirty] = await Promise.all([META_CURSOR, META_SV, META_DIRTY].map((k) => meta.get(k).catch(() => undefined)))
    if (typeof cursor === 'number' && Number.isSafeInteger(cursor) && cursor >= 0) this.cursor = cursor
    this.#known = decodeSv(sv)
    this.#dirty = this.#dirty || dirty === true
  }

  #saveMeta(now = false): void {
    const meta = this.#o.meta
    if (!meta) return
    if (this.#saveTimer !== null) clearTimeout(this.#saveTimer)
    this.#saveTimer = null
    const write = () => {
      this.#saveTimer = null
      void meta.set(META_CURSOR, this.cursor).catch(() => {})
      void meta.set(META_SV, encodeSv(this.#known)).catch(() => {})
      void meta.set(META_DIRTY, this.#dirty).catch(() => {})
    }
    if (now) write()
    else this.#saveTimer = setTimeout(write, 300)
  }

  #connect(): void {
    if (this.#destroyed) return
    const WS = (this.#o.WebSocketPolyfill ?? WebSocket) as typeof WebSocket
    const url = `${this.#o.url}/${encodeURIComponent(this.#o.docId)}${this.#o.token ? `?token=${encodeURIComponent(this.#o.token)}` : ''}`
    const ws = new WS(url)
    ws.binaryType = 'arraybuffer'
    this.ws = ws
    this.emit('status', [{ status: 'connecting' }])
    ws.onopen = () => {
      this.#attempts = 0
      this.emit('status', [{ status: 'connected' }])
      ws.send(encodeClientFrame({ type: LogMessage.subscribe, cursor: this.cursor }))
    }
    ws.onmessage = (ev: MessageEvent) => {
      let frame: ServerLogFrame
      try {
        frame = decodeServerFrame(new Uint8Array(ev.data as ArrayBuffer))
      } catch (err) {
        console.warn('[murmur] private log: undecodable frame from the server', err)
        return
      }
      this.#in = this.#in.then(() => this.#onFrame(ws, frame)).catch((err) => console.error('[murmur] private log: handling a frame failed', err))
    }
    ws.onclose = (ev: CloseEvent) => {
      if (this.ws !== ws) return
      this.ws = null
      const wasSynced = this.synced
      this.synced = false
      if (this.#inflight.size) this.#dirty = true
      this.#inflight.clear()
      // A snapshot above the server's frame cap (1009) would fail the same way on every reconnect.
      if (this.#compacting && ev.code === 1009) this.#noCompaction = true
      this.#compacting = false
      removeAwarenessStates(this.#o.awareness, [...this.#remoteAwareness], this)
      this.#remoteAwareness.clear()
      if (wasSynced) this.emit('synced', [false])
      this.emit('connection-close', [{ code: ev.code }])
      this.emit('status', [{ status: 'disconnected' }])
      if (ev.code >= 4400 && ev.code < 4500) {
        this.emit('closed', [{ code: ev.code }])
        return
      }
      if (this.#destroyed) return
      const delay = Math.min(10_000, 100 * 2 ** this.#attempts++) * (0.5 + Math.random() / 2)
      this.#timer = setTimeout(() => this.#connect(), delay)
    }
  }

  #warnOnce(what: string, err: unknown): void {
    this.skipped++
    if (this.#warned) return
    this.#warned = true
    console.warn(`[murmur] private document ${this.#o.docId}: skipping ${what} that cannot be decrypted or applied (wrong key or damaged data); later ones are skipped silently`, err)
  }

  /**
   * Decrypts `entries` and applies them in one Yjs transaction (one update
   * event: one IndexedDB row and one editor refresh for a whole catch-up
   * frame). An entry that fails to decrypt or apply is skipped.
   */
  async #applyAll(entries: LogEntry[]): Promise<void> {
    const plains = await Promise.all(
      entries.map((e) =>
        open(this.#o.keys.content, e.data).catch((err) => {
          this.#warnOnce('an entry', err)
          return null
        }),
      ),
    )
    this.#o.doc.transact(() => {
      for (const plain of plains) {
        if (!plain) continue
        try {
          Y.applyUpdate(this.#o.doc, plain, this)
          coverUpdate(this.#known, plain)
        } catch (err) {
          this.#warnOnce('an entry', err)
        }
      }
    }, this)
  }

  async #onFrame(ws: WebSocket, f: ServerLogFrame): Promise<void> {
    if (this.ws !== ws || this.#destroyed) return
    switch (f.type) {
      case LogMessage.entries:
        {
          const fresh = f.entries.filter((e) => e.seq > this.cursor)
          await this.#applyAll(fresh)
          for (const e of fresh) {
            if (e.snapshot) this.sinceSnapshot = 0
            else this.sinceSnapshot++
            this.cursor = Math.max(this.cursor, e.seq)
          }
        }
        this.#saveMeta()
        this.#maybeCompact()
        return
      case LogMessage.caughtUp: {
        if (f.lastSeq < this.cursor) {
          // The server lost entries (restored from an older backup): it holds only what it sent.
          this.cursor = f.lastSeq
          this.#known = new Map()
          this.#dirty = true
        }
        this.sinceSnapshot = f.count
        const behind = this.#dirty || aheadOf(this.#o.doc, this.#known)
        if (behind) this.#append(Y.encodeStateAsUpdate(this.#o.doc, encodeSv(this.#known)), true)
        this.synced = true
        this.emit('synced', [true])
        // Nothing to send: the server already holds everything this client has.
        if (!behind) this.emit('ack', [this.#o.nonce()])
        this.#sendAwareness([this.#o.doc.clientID])
        this.#saveMeta()
        this.#maybeCompact()
        return
      }
      case LogMessage.appended: {
        const sent = this.#inflight.get(f.nonce)
        if (!sent) return
        this.#inflight.delete(f.nonce)
        coverUpdate(this.#known, sent.update)
        if (f.seq === this.cursor + 1) this.cursor = f.seq
        this.sinceSnapshot++
        if (this.#inflight.size === 0 && this.#dirty) this.#dirty = false
        this.#saveMeta()
        this.emit('ack', [sent.nonce])
        this.#maybeCompact()
        return
      }
      case LogMessage.snapshotDone:
        this.#compacting = false
        if (f.applied) {
          this.sinceSnapshot = Math.max(0, this.cursor - f.upToSeq)
          this.emit('compacted', [{ upToSeq: f.upToSeq }])
        }
        this.#maybeCompact()
        return
      case LogMessage.compacted:
        this.sinceSnapshot = Math.max(0, this.cursor - f.upToSeq)
        this.emit('compacted', [{ upToSeq: f.upToSeq }])
        this.#maybeCompact()
        return
      case LogMessage.awareness:
        try {
          const plain = await open(this.#o.keys.awareness, f.data)
          applyAwarenessUpdate(this.#o.awareness, plain, this)
          for (const id of awarenessClients(plain)) if (id !== this.#o.doc.clientID) this.#remoteAwareness.add(id)
        } catch (err) {
          this.#warnOnce('a presence message', err)
        }
    }
  }

  /** Seals `update` and appends it (in order with every other append). `catchUp`: the reconnect diff, which clears `dirty` once acked. */
  #append(update: Uint8Array, catchUp = false): void {
    const nonce = this.#o.nonce()
    const ws = this.ws
    if (!catchUp) this.#dirty = this.#dirty || !this.synced
    this.#out = this.#out.then(async () => {
      const data = await seal(this.#o.keys.content, update)
      if (this.ws !== ws || !ws || ws.readyState !== 1) {
        this.#dirty = true
        return
      }
      const id = ++this.#appendId
      this.#inflight.set(id, { nonce, update })
      ws.send(encodeClientFrame({ type: LogMessage.append, nonce: id, proof: this.#o.keys.writeProof, data }))
    })
  }

  #onUpdate = (update: Uint8Array, origin: unknown) => {
    if (origin === this || this.#destroyed || this.#o.skipOrigin?.(origin)) return
    if (this.synced) this.#append(update)
    else {
      this.#dirty = true
      this.#saveMeta()
    }
  }

  #onAwareness = ({ added, updated, removed }: { added: number[]; updated: number[]; removed: number[] }, origin: unknown) => {
    if (origin === this) return
    this.#sendAwareness([...added, ...updated, ...removed])
  }

  #sendAwareness(clients: number[]): void {
    const ws = this.ws
    if (!this.synced || !ws || clients.length === 0) return
    const update = encodeAwarenessUpdate(this.#o.awareness, clients)
    this.#out = this.#out.then(async () => {
      const data = await seal(this.#o.keys.awareness, update)
      if (this.ws === ws && ws.readyState === 1) ws.send(encodeClientFrame({ type: LogMessage.awareness, data }))
    })
  }

  /** Uploads a sealed snapshot up to the cursor once the log since the last one is long (after a random pause, so peers rarely both do it). */
  #maybeCompact(): void {
    const limit = this.#o.compactAfter ?? 500
    if (this.#compacting || this.#noCompaction || !this.synced || this.sinceSnapshot < limit || this.cursor === 0) return
    this.#compacting = true
    const ws = this.ws
    setTimeout(() => {
      if (this.ws !== ws || !ws || !this.synced || this.sinceSnapshot < limit) {
        this.#compacting = false
        return
      }
      const upToSeq = this.cursor
      const state = Y.encodeStateAsUpdate(this.#o.doc)
      this.#out = this.#out.then(async () => {
        const data = await seal(this.#o.keys.content, state)
        if (this.ws === ws && ws.readyState === 1) ws.send(encodeClientFrame({ type: LogMessage.snapshot, nonce: 0, proof: this.#o.keys.writeProof, upToSeq, data }))
        else this.#compacting = false
      })
    }, Math.random() * Math.min(1000, limit * 2))
  }

  /** Resolves when the first connection attempt has started (the cursor is loaded). */
  get whenStarted(): Promise<void> {
    return this.#ready
  }

  /** Closes the socket and stops reconnecting; saves the cursor. */
  override destroy(): void {
    if (this.#destroyed) return
    this.#destroyed = true
    if (this.#timer !== null) clearTimeout(this.#timer)
    if (this.#saveTimer !== null) this.#saveMeta(true)
    this.#o.doc.off('update', this.#onUpdate)
    this.#o.awareness.off('update', this.#onAwareness)
    const ws = this.ws
    if (ws) {
      this.ws = null
      try {
        ws.close()
      } catch {
        // already closing
      }
    }
    super.destroy()
  }
}

/** Client ids an awareness update speaks for (its first field is the count, then id, clock, state each). */
function awarenessClients(update: Uint8Array): number[] {
  const d = decoding.createDecoder(update)
  const ids: number[] = []
  const n = decoding.readVarUint(d)
  for (let i = 0; i < n; i++) {
    ids.push(decoding.readVarUint(d))
    decoding.readVarUint(d)
    decoding.readVarString(d)
  }
  return ids
}
