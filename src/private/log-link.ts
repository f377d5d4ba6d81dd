/**
 * The backup link of a private document: `/log/<docId>` (protocol in
 * `src/protocol/log.ts`). Every update this client makes is sealed with the
 * content key and appended at once; the server's ack (after its commit) is
 * what "backed up" means. Updates from peers are appended at once only in
 * relay mode; in backup mode (peers reached directly, docs/protocol.md) the
 * link instead asks the server which coverage tags (`coverage.ts`) it holds
 * and appends a peer's change only when the server still lacks it one
 * reconcile interval later (its author had time to), and the server sends
 * it nothing live: it moves its cursor past entries whose tags it already
 * has, and catches up from the cursor when it meets one it does not. On (re)connect it catches up
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
import { decodeServerFrame, encodeClientFrame, LogLinkMode, LogMessage, type LogEntry, type ServerLogFrame } from '../protocol/log.ts'
import { open, seal, type DocKeys } from './crypto.ts'
import { aheadOf, coverUpdate, decodeSv, encodeSv, type StateVector } from './state-vector.ts'
import { coverageTag, tagKey } from './coverage.ts'

/** How the link takes part in live forwarding (as on `/sync`). */
export type LogLinkModeName = 'relay' | 'backup'

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
  /** The mode to connect in (default relay: every update appended, everything live). */
  mode?: LogLinkModeName
  /** Whether an update with this origin came from a peer (WebRTC, another tab). Default: none does. */
  isPeerOrigin?: (origin: unknown) => boolean
  /** Quiet time after a peer's change before asking the server whether it holds it (ms, default 500). */
  reconcileMs?: number
  /** How often the link asks the server what its log holds (ms, default 2000): the bound on split-mesh convergence. */
  pollMs?: number
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
  /** `covered` changed. */
  covered: (covered: boolean) => void
}

/** A peer's change this device holds and has not yet seen the server confirm. */
interface PendingPeer {
  key: string
  update: Uint8Array
  tag: Uint8Array
  /** Structs only (no deletes): the server holds it once its known state vector covers it. */
  structsOnly: boolean
  /** Acks that did not list it. */
  misses: number
  uploading: boolean
}

/** Tags of changes this device holds, kept to recognise log entries (cleared past this many: the next query then catches up). */
const MAX_HAVE_TAGS = 50_000

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
  /** The current link mode. */
  mode: LogLinkModeName
  /** The server's log holds every change this device got from peers, as far as its last answer showed. */
  covered = true
  /** Peers' changes this link appended because the server lacked them (backup mode; for tests and the bench). */
  uploads = 0
  /** Catch-ups from the cursor after the server's tags showed entries this device did not recognise. */
  pulls = 0

  #o: PrivateLogOptions
  #known: StateVector = new Map()
  #dirty = false
  #appendId = 0
  #inflight = new Map<number, { nonce: number; update: Uint8Array; peer?: string; tag?: string }>()
  /** Seqs after the cursor this device applied or had acknowledged. */
  #seen = new Set<number>()
  /** Coverage tags (`tagKey`) of changes this device holds: its own and its peers'. */
  #have = new Map<string, StateVector>()
  #pending = new Map<string, PendingPeer>()
  /** Tags (`tagKey`) of changes the log is known to hold: listed by the server, acknowledged, or decrypted live. */
  #logged = new Set<string>()
  /** The highest seq whose tag this device has looked at (queries ask for entries after it). */
  #examined = 0
  /** Seqs after the cursor whose tags this device did not hold when listed (tag key, answers since). */
  #unknown = new Map<number, { key: string; misses: number }>()
  #queryNonce = 0
  #asked = -1
  #pulling = false
  #queryTimer: ReturnType<typeof setTimeout> | null = null
  #poll: ReturnType<typeof setInterval> | null = null
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
    this.mode = opts.mode ?? 'relay'
    this.#poll = setInterval(() => this.#query(), opts.pollMs ?? 2000)
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
    // The link mode rides on the URL so the server never relays to a backup-only socket.
    const url = `${this.#o.url}/${encodeURIComponent(this.#o.docId)}?link=${this.mode}${this.#o.token ? `&token=${encodeURIComponent(this.#o.token)}` : ''}`
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
    // A failed socket always closes next; onclose handles it (without a handler, Node's `ws` throws the error).
    ws.onerror = () => {}
    ws.onclose = (ev: CloseEvent) => {
      if (this.ws !== ws) return
      this.ws = null
      const wasSynced = this.synced
      this.synced = false
      if (this.#inflight.size) this.#dirty = true
      for (const sent of this.#inflight.values()) {
        const p = sent.peer ? this.#pending.get(sent.peer) : undefined
        if (p) p.uploading = false
      }
      this.#inflight.clear()
      this.#asked = -1
      this.#pulling = false
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
    // Live entries and pulls (not the first catch-up, which may be a long history): remember what the log holds.
    if (this.synced) for (const plain of plains) if (plain) void coverageTag(this.#o.keys.tag, plain).then((t) => t && this.#log(tagKey(t)), () => {})
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
          const fresh = f.entries.filter((e) => e.seq > this.cursor && !this.#seen.has(e.seq))
          await this.#applyAll(fresh)
          for (const e of fresh) {
            if (e.snapshot) {
              this.sinceSnapshot = 0
              this.cursor = Math.max(this.cursor, e.seq)
            } else {
              this.sinceSnapshot++
              this.#seen.add(e.seq)
            }
          }
          this.#advance()
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
        // Everything up to lastSeq was just sent.
        this.cursor = Math.max(this.cursor, f.lastSeq)
        this.#advance()
        this.#unknown.clear()
        this.#examined = this.cursor
        this.sinceSnapshot = f.count
        const first = !this.synced
        this.#pulling = false
        // A catch-up on a live connection (a pull) uploads nothing new: own changes went at once and peers' are pending.
        const behind = this.#dirty || (first && aheadOf(this.#o.doc, this.#known))
        if (behind) this.#append(Y.encodeStateAsUpdate(this.#o.doc, encodeSv(this.#known)), true)
        if (!first) {
          this.#saveMeta()
          if (this.#pending.size) this.#schedule(0)
          return
        }
        this.synced = true
        this.emit('synced', [true])
        // Nothing to send: the server already holds everything this client has.
        if (!behind) this.emit('ack', [this.#o.nonce()])
        this.#sendAwareness([this.#o.doc.clientID])
        if (this.#pending.size) this.#query()
        this.#saveMeta()
        this.#maybeCompact()
        return
      }
      case LogMessage.appended: {
        const sent = this.#inflight.get(f.nonce)
        if (!sent) return
        this.#inflight.delete(f.nonce)
        coverUpdate(this.#known, sent.update)
        if (f.seq > this.cursor) this.#seen.add(f.seq)
        this.#advance()
        this.sinceSnapshot++
        if (sent.peer) {
          this.#pending.delete(sent.peer)
          this.#setCovered()
        }
        if (sent.tag) this.#log(sent.tag)
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
      case LogMessage.stateAck:
        this.#onStateAck(f)
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

  /**
   * Seals `update` and appends it (in order with every other append) with its
   * coverage tag. `catchUp`: the reconnect diff (no tag), which clears `dirty`
   * once acked. `peer`: the pending peer change this upload is for.
   */
  #append(update: Uint8Array, catchUp = false, peer?: PendingPeer): void {
    const nonce = this.#o.nonce()
    const ws = this.ws
    if (!catchUp) this.#dirty = this.#dirty || !this.synced
    this.#out = this.#out.then(async () => {
      const [data, tag] = await Promise.all([seal(this.#o.keys.content, update), catchUp ? null : peer ? peer.tag : this.#tagOf(update)])
      if (this.ws !== ws || !ws || ws.readyState !== 1) {
        this.#dirty = true
        if (peer) peer.uploading = false
        return
      }
      const id = ++this.#appendId
      this.#inflight.set(id, { nonce, update, ...(peer ? { peer: peer.key } : {}), ...(tag ? { tag: tagKey(tag) } : {}) })
      ws.send(encodeClientFrame({ type: LogMessage.append, nonce: id, proof: this.#o.keys.writeProof, data, ...(tag ? { tag } : {}) }))
    })
  }

  /** The coverage tag of `update` (null: covers nothing, or tags unavailable), remembered as held. */
  async #tagOf(update: Uint8Array): Promise<Uint8Array | null> {
    let tag: Uint8Array | null = null
    try {
      tag = await coverageTag(this.#o.keys.tag, update)
    } catch {
      return null // an update Yjs cannot parse again: it goes untagged (others then catch up)
    }
    if (tag) {
      if (this.#have.size >= MAX_HAVE_TAGS) this.#have.clear()
      this.#have.set(tagKey(tag), Y.parseUpdateMeta(update).to)
    }
    return tag
  }

  #onUpdate = (update: Uint8Array, origin: unknown) => {
    if (origin === this || this.#destroyed || this.#o.skipOrigin?.(origin)) return
    const peer = this.#o.isPeerOrigin?.(origin) === true
    if (!this.synced) {
      this.#dirty = true
      this.#saveMeta()
      if (peer) void this.#tagOf(update)
    } else if (peer && this.mode === 'backup') void this.#peerChange(update)
    else this.#append(update)
  }

  /** A peer's change while backup-only: held until the server is seen to have it (or uploaded when it still lacks it). */
  async #peerChange(update: Uint8Array): Promise<void> {
    const tag = await this.#tagOf(update)
    if (this.#destroyed) return
    if (!tag) {
      if (Y.parseUpdateMeta(update).to.size > 0) this.#append(update) // cannot be tagged: upload it
      return
    }
    const key = tagKey(tag)
    // Already in the log (its entry was listed, or reached this device from the server first).
    if (this.#logged.has(key) || (Y.decodeUpdate(update).ds.clients.size === 0 && !aheadOfUpdate(update, this.#known))) return
    if (!this.#pending.has(key)) this.#pending.set(key, { key, update, tag, structsOnly: Y.decodeUpdate(update).ds.clients.size === 0, misses: 0, uploading: false })
    this.#setCovered()
    this.#schedule(this.#o.reconcileMs ?? 500)
  }

  /** Asks the server for its log's tags after `reconcileMs` of quiet (one query per quiet spell). */
  #schedule(ms: number): void {
    if (this.#queryTimer !== null) clearTimeout(this.#queryTimer)
    this.#queryTimer = setTimeout(() => {
      this.#queryTimer = null
      this.#query()
    }, ms)
  }

  /** Sends a `stateQuery` for entries after the cursor (the answer replaces any outstanding one). */
  #query(): void {
    const ws = this.ws
    if (this.#destroyed || !this.synced || !ws || ws.readyState !== 1 || this.#pulling) return
    this.#asked = ++this.#queryNonce
    ws.send(encodeClientFrame({ type: LogMessage.stateQuery, nonce: this.#asked, cursor: Math.max(this.cursor, this.#examined) }))
  }

  /**
   * The server's tags of the entries after what this device examined: moves
   * the cursor past entries it holds, fetches those it does not recognise
   * (another group of a split mesh, an untagged upload, a gap), confirms
   * pending peer changes or uploads those still missing.
   */
  #onStateAck(f: Extract<ServerLogFrame, { type: typeof LogMessage.stateAck }>): void {
    if (f.nonce !== this.#asked) return
    this.#asked = -1
    if (!f.complete) return this.#pull()
    const listed = new Map<number, string>()
    for (const t of f.tags) {
      const key = tagKey(t.tag)
      listed.set(t.seq, key)
      if (key) this.#log(key)
    }
    // Mark the entries this device holds as seen (the cursor moves over them); an entry it does not
    // recognise may be a peer's change still on its way over WebRTC: catch up only if it is still
    // unknown at the next answer (fetch it). Each entry's tag is listed about once (queries ask after `examined`).
    const from = Math.max(this.cursor, this.#examined)
    let passed = 0
    for (let seq = from + 1; seq <= f.lastSeq; seq++) {
      if (this.#seen.has(seq)) continue
      const key = listed.get(seq) ?? ''
      if (key && this.#have.has(key)) {
        this.#recognised(key)
        this.#seen.add(seq)
        passed++
      } else this.#unknown.set(seq, { key, misses: 0 })
    }
    this.#examined = Math.max(this.#examined, f.lastSeq)
    // Untagged entries (reconnect diffs) are fetched at once; tagged ones when still unknown at the next answer.
    const stale: number[] = []
    for (const [seq, u] of this.#unknown) {
      if (seq <= this.cursor || this.#seen.has(seq)) this.#unknown.delete(seq)
      else if (u.key && this.#have.has(u.key)) {
        this.#recognised(u.key)
        this.#unknown.delete(seq)
        this.#seen.add(seq)
        passed++
      } else if (!u.key || u.misses++ >= 1) stale.push(seq)
    }
    if (passed > 0) {
      this.sinceSnapshot += passed
      this.#advance()
      this.#saveMeta()
      this.#maybeCompact()
    }
    if (stale.length) this.#fetch(stale)
    // Peers' changes: held by the log (listed, or covered by what it is known to hold), or uploaded
    // when still missing two answers later (their authors had time to append them).
    for (const [key, p] of this.#pending) {
      if (p.uploading) continue
      if (this.#logged.has(key) || (p.structsOnly && !aheadOfUpdate(p.update, this.#known))) {
        coverUpdate(this.#known, p.update)
        this.#pending.delete(key)
      } else if (p.misses++ >= 2) {
        p.uploading = true
        this.uploads++
        this.#append(p.update, false, p)
      }
    }
    this.#setCovered()
    if (this.#unknown.size || this.#pending.size) this.#schedule(this.#o.reconcileMs ?? 500)
  }

  /** A log entry turned out to be a change this device holds: the log holds its structs. */
  #recognised(key: string): void {
    for (const [client, clock] of this.#have.get(key) ?? []) if ((this.#known.get(client) ?? 0) < clock) this.#known.set(client, clock)
  }

  #log(key: string): void {
    if (this.#logged.size >= MAX_HAVE_TAGS) this.#logged.clear()
    this.#logged.add(key)
  }

  /** Asks for the entries with these seqs (ascending), one `fetch` per run of consecutive ones. */
  #fetch(seqs: number[]): void {
    const ws = this.ws
    if (!ws || ws.readyState !== 1) return
    this.pulls++
    for (const u of seqs) this.#unknown.get(u)!.misses = 0
    let from = seqs[0]!
    for (let i = 1; i <= seqs.length; i++) {
      if (i < seqs.length && seqs[i] === seqs[i - 1]! + 1) continue
      ws.send(encodeClientFrame({ type: LogMessage.fetch, from, to: seqs[i - 1]! }))
      if (i < seqs.length) from = seqs[i]!
    }
  }

  /** Catches up from the cursor on the open socket (entries, then `caughtUp`). */
  #pull(): void {
    const ws = this.ws
    if (this.#pulling || !ws || ws.readyState !== 1) return
    this.#pulling = true
    this.pulls++
    ws.send(encodeClientFrame({ type: LogMessage.subscribe, cursor: this.cursor }))
  }

  /** Moves the cursor over the seqs seen right after it. */
  #advance(): void {
    while (this.#seen.delete(this.cursor + 1)) this.cursor++
    for (const seq of this.#seen) if (seq <= this.cursor) this.#seen.delete(seq)
  }

  #setCovered(): void {
    const covered = this.#pending.size === 0
    if (covered === this.covered) return
    this.covered = covered
    this.emit('covered', [covered])
  }

  /** Switches the link mode (relay: the server forwards everything to and from this socket; backup: nothing live). */
  setMode(mode: LogLinkModeName): void {
    if (this.#destroyed || mode === this.mode) return
    this.mode = mode
    const ws = this.ws
    if (!ws || ws.readyState !== 1) return
    ws.send(encodeClientFrame({ type: LogMessage.linkMode, mode: mode === 'relay' ? LogLinkMode.relay : LogLinkMode.backup }))
    // Now relayed: catch up on what was not forwarded while backup-only.
    if (mode === 'relay' && this.synced) this.#pull()
  }

  #onAwareness = ({ added, updated, removed }: { added: number[]; updated: number[]; removed: number[] }, origin: unknown) => {
    if (origin === this) return
    const ids = [...added, ...updated, ...removed]
    // Backup-only: only this device speaks for itself; peers send their own.
    if (this.mode === 'backup') {
      if (ids.includes(this.#o.doc.clientID)) this.#sendAwareness([this.#o.doc.clientID])
      return
    }
    this.#sendAwareness(ids)
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
    if (this.#queryTimer !== null) clearTimeout(this.#queryTimer)
    if (this.#poll !== null) clearInterval(this.#poll)
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

/** True when `update` has structs beyond `known`. */
function aheadOfUpdate(update: Uint8Array, known: StateVector): boolean {
  for (const [client, clock] of Y.parseUpdateMeta(update).to) if ((known.get(client) ?? 0) < clock) return true
  return false
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
