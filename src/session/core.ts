/**
 * The framework-free heart of a document session: one Y.Doc for one docId,
 * its IndexedDB copy, its WebRTC mesh, its backup connection, awareness, and
 * the raw facts the status bar derives from. `DocSession.svelte.ts` wraps it
 * in runes; unit tests drive it directly in Node.
 *
 * Order matters: IndexedDB is loaded first so an offline reload shows the
 * text at once; only then are network providers created, the backup link
 * first (on a first visit the text comes from it) and then WebRTC, whose
 * code (y-webrtc, simple-peer) is loaded only at that point.
 */
import * as Y from 'yjs'
import { Awareness, removeAwarenessStates } from 'y-protocols/awareness'
import { IndexeddbPersistence } from 'y-indexeddb'
import type { WebrtcProvider } from 'y-webrtc'
import { WebsocketProvider } from 'y-websocket'
import * as encoding from 'lib0/encoding'
import * as decoding from 'lib0/decoding'
import { CloseCode, MeshMessage, MessageType } from '../protocol/messages.ts'
import { encodeDurableQuery, readDurableNonce } from '../protocol/durable.ts'
import { resolveConfig, untilReachable, type ConfigSource, type LoadedConfig, type ResolvedConfig } from './config.ts'
import { BackupLink, type LinkModeName } from './backup-link.ts'
import { DurabilityTracker } from './durability.ts'
import { LinkPolicy, type PeerView } from './link-policy.ts'
import { initialFirstSync, nextFirstSync, type FirstSync, type FirstSyncEvent } from './first-sync.ts'
import { yieldToHigherPeers } from './glare.ts'
import { dropStalled, forwardOnlyWhenNeeded, ignoreOwnBroadcasts, MESH_PEERS_FIELD, neighborsIncomplete, reannounce, releaseBroadcastChannel, requestAwareness } from './mesh.ts'
import { MeshPort } from './mesh-port.ts'
import { MeshReach } from './mesh-reach.ts'
import { SignalWatch } from './signal-watch.ts'
import { classifyPeers, samePeers, sanitizeRemoteState, type PeerInfo, type UserIdentity } from './presence.ts'
import { setRecentTitle, touchRecent } from './recent.ts'
import type { LocalState, ServerLink, SignalingState } from './status.ts'
import type { KeyValueStorage } from './storage.ts'
import { firstLine } from './title.ts'
import { deriveDocKeys, type DocKeys } from '../private/crypto.ts'
import { PrivateLogLink, type LogMeta } from '../private/log-link.ts'

/** Options of a `SessionCore`. Everything environment-specific is injectable for tests. */
export interface SessionOptions {
  /** The server configuration, or a promise of it (the session waits for it after loading IndexedDB). Null: no server at all. */
  config: LoadedConfig | Promise<LoadedConfig> | null
  /** Asks the server for its configuration again; used with backoff (`configRetryDelay`) while `config` says the server was unreachable and nothing is cached. */
  reloadConfig?: () => Promise<LoadedConfig>
  /** This device just created the id (New document): there is nothing to wait for (see `first-sync.ts`). */
  createdHere?: boolean
  /** Access token from the URL fragment, passed to /signal and /sync. */
  token?: string | null
  /** Link key of a private document (`#key=`): the backup goes to the encrypted `/log` and signaling is encrypted with a key derived from it. */
  linkKey?: string | null
  /** Entries in a private document's log before this client compacts it (default 500). */
  compactAfter?: number
  /** Name and colour published in awareness. */
  identity: UserIdentity
  /** Where the recent-documents list lives; null/undefined: not recorded. */
  recent?: KeyValueStorage | null
  /** Create the y-webrtc provider (default true). */
  webrtc?: boolean
  /** Extra simple-peer options (e.g. `{ wrtc }` in Node). `config.iceServers` is always set from the server config. */
  peerOpts?: Record<string, unknown>
  /** WebSocket implementation for y-websocket (browsers have one; Node tests pass `ws`). */
  WebSocketPolyfill?: unknown
  /** Clock, for tests. */
  now?: () => number
  /** How often peer/signaling state is re-read as a safety net for missed events (ms, default 1000). */
  pollMs?: number
  /** Quiet time before the title is recomputed after edits (ms, default 400). */
  titleDebounceMs?: number
  /** y-webrtc's cap on connections it starts (default: its own, 20–34); a lower one makes a partial mesh (tests). */
  maxConns?: number
  /** Hybrid data path tuning (`backup-link.ts`, `link-policy.ts`); `force: 'relay'` keeps the link in relay mode (bench, tests). */
  link?: { force?: LinkModeName; reconcileMs?: number; pollMs?: number; pairTimeoutMs?: number }
}

/** Raw facts about a session; `status.ts` turns them into words. */
export interface SessionFacts {
  /** This device's copy. */
  local: LocalState
  /** IndexedDB finished loading (or failed): the editor may be shown. */
  loaded: boolean
  /** First line of the text. */
  title: string
  /** Direct WebRTC connections to peers still present in awareness (a peer that left stops counting when its chip goes, not when ICE times out). */
  peers: number
  /** Other tabs of this browser with the same document. */
  browserPeers: number
  /** Signaling reachability. */
  signaling: SignalingState
  /** Backup connection state. */
  link: ServerLink
  /** Why the backup server is unusable, when known (e.g. "access denied"). */
  serverDetail: string | null
  /** Server confirmed every local change durable on the current connection. */
  backedUp: boolean
  /** Local changes never confirmed durable. */
  unbackedChanges: number
  /** Local changes made in this session. */
  localChanges: number
  /** Time of the last full backup (ms since epoch), or null; remembered on this device across reloads. */
  lastBackupAt: number | null
  /** When the oldest local change the server has not confirmed was made (ms since epoch), or null. */
  unbackedSince: number | null
  /** Whether the document has reached this device yet (see `first-sync.ts`). */
  firstSync: FirstSync
  /** Remote participants. */
  peerList: PeerInfo[]
  /** Where the server config came from; `pending` until known. */
  configSource: ConfigSource | 'pending'
  /** The server requires tokens. */
  auth: boolean
  /** The access token is read-only: the editor must not accept typing. */
  readOnly: boolean
}

/** How often a session re-announces itself while some peer is reached only through the server (ms). */
const REANNOUNCE_MS = 10_000
/** A WebRTC connection still pairing after this long is closed and tried afresh (ms; `dropStalled`). */
const STALL_MS = 8_000
/** Awareness field in which a peer says its backup link relays (absent: backup-only). */
const RELAYING_FIELD = 'relaying'
/** A peer's awareness is recent enough to act on for this long (ms): it renews it every 15 s. */
const FRESH_STATE_MS = 20_000

/** Names for the close codes a user may need to understand. */
const CLOSE_DETAIL: Record<number, string> = {
  [CloseCode.unauthorized]: 'access denied — open the link that includes the access token',
  [CloseCode.forbidden]: 'this link\'s key cannot write to the private document — ask for the full link',
  [CloseCode.notFound]: 'unknown document path',
  [CloseCode.tooMany]: 'too many connections',
  [CloseCode.flood]: 'too many messages',
  [CloseCode.storageError]: 'server storage error',
}

const initialFacts = (title: string): SessionFacts => ({
  local: 'loading',
  loaded: false,
  title,
  peers: 0,
  browserPeers: 0,
  signaling: 'none',
  link: 'off',
  serverDetail: null,
  backedUp: false,
  unbackedChanges: 0,
  localChanges: 0,
  lastBackupAt: null,
  unbackedSince: null,
  firstSync: 'waiting',
  peerList: [],
  configSource: 'pending',
  auth: false,
  readOnly: false,
})

/**
 * One open document. Create it, await `loaded`, render `text`, read `facts`
 * (subscribe with `onChange`), and call `destroy()` when leaving: it closes
 * every provider, timer and listener it created.
 */
export class SessionCore {
  /** The document id (also the IndexedDB database name and the y-webrtc room). */
  readonly docId: string
  /** The shared document. */
  readonly doc: Y.Doc
  /** The document text (`doc.getText('text')`). */
  readonly text: Y.Text
  /** Presence shared by every provider. */
  readonly awareness: Awareness
  /** Durability bookkeeping for the backup server. */
  readonly tracker = new DurabilityTracker()
  /** IndexedDB persistence (created first). */
  idb: IndexeddbPersistence | null = null
  /** y-webrtc provider, once the config is known. */
  webrtc: WebrtcProvider | null = null
  /** y-websocket backup provider, when the server offers backup. */
  websocket: WebsocketProvider | null = null
  /** The hybrid upload/forwarding policy of `websocket`. */
  link: BackupLink | null = null
  /** The encrypted log link of a private document, when the server offers backup. */
  privateLog: PrivateLogLink | null = null
  /** The version history's side channel on the WebRTC mesh (`history/mesh-sync.ts` attaches to it). */
  readonly historyMesh = new MeshPort(MeshMessage.history)
  /** Resolves when IndexedDB has loaded (or is known to be unavailable). */
  readonly loaded: Promise<void>
  /** Resolves when every provider this session will have has been created. */
  readonly ready: Promise<void>

  #opts: SessionOptions
  #now: () => number
  #facts: SessionFacts
  #listeners = new Set<(facts: SessionFacts) => void>()
  #destroyed = false
  #poll: ReturnType<typeof setInterval> | null = null
  #titleTimer: ReturnType<typeof setTimeout> | null = null
  #serverSeen = new Set<number>()
  #queryScheduled = false
  #writeSeq = 0
  #checkingStore = false
  #emitScheduled = false
  #inRecent = false
  #stop = new AbortController()
  #policy: LinkPolicy
  /** Which peers' awareness comes over the mesh (for the policy: who is reached). */
  #reach = new MeshReach()
  /** Peers heard on signaling (for the policy: who is in the room). */
  #signals: SignalWatch | null = null
  #announcedAt = 0
  #syncUrl: string | null = null
  /** Companion documents' private logs (`backupCompanion`): they follow this document's link mode. */
  #companionLogs = new Set<PrivateLogLink>()
  #resolveLoaded!: () => void
  #resolveDestroyed!: (v: false) => void
  #whenDestroyed = new Promise<false>((resolve) => (this.#resolveDestroyed = resolve))

  constructor(docId: string, opts: SessionOptions) {
    this.docId = docId
    this.#opts = opts
    this.#now = opts.now ?? Date.now
    this.doc = new Y.Doc()
    this.text = this.doc.getText('text')
    this.awareness = new Awareness(this.doc)
    this.awareness.setLocalStateField('user', { ...opts.identity })
    this.#facts = initialFacts('')
    this.#policy = new LinkPolicy({ pairTimeoutMs: opts.link?.pairTimeoutMs })
    this.doc.on('update', this.#onUpdate)
    this.awareness.on('change', this.#onAwarenessChange)
    this.awareness.on('update', this.#onAwarenessUpdate)
    this.loaded = new Promise((resolve) => (this.#resolveLoaded = resolve))
    this.ready = this.#open().catch((err) => {
      console.error('[murmur] opening the document failed', err)
    })
  }

  /** The current facts (a new object after every change). */
  get facts(): Readonly<SessionFacts> {
    return this.#facts
  }

  /** True after `destroy()`. */
  get destroyed(): boolean {
    return this.#destroyed
  }

  /** Calls `fn` after facts change (batched to one call per microtask). Returns the unsubscribe function. */
  onChange(fn: (facts: SessionFacts) => void): () => void {
    this.#listeners.add(fn)
    return () => this.#listeners.delete(fn)
  }

  /** Publishes a new name/colour to every peer. */
  setUser(identity: UserIdentity): void {
    if (this.#destroyed) return
    this.awareness.setLocalStateField('user', { ...identity })
  }

  /** The user chose to write before the document reached this device (ends the `waiting`/`empty` state). */
  startWriting(): void {
    this.#firstSync({ type: 'start' })
  }

  async #open(): Promise<void> {
    // 1. This device first.
    const idb = new IndexeddbPersistence(this.docId, this.doc)
    this.idb = idb
    const opened = (idb as unknown as { _db: Promise<IDBDatabase> })._db
    const ok = await Promise.race([idb.whenSynced.then(() => true), opened.then(() => this.#whenDestroyed, () => false), this.#whenDestroyed])
    if (this.#destroyed) return
    if (ok) this.#restoreLastBackup(await idb.get('lastBackupAt').catch(() => undefined))
    if (this.#destroyed) return
    this.#set({ local: ok ? 'saved' : 'unavailable', loaded: true, title: firstLine(this.text), firstSync: initialFirstSync(this.#hasContent(), this.#opts.createdHere === true) })
    this.#resolveLoaded()
    if (this.#hasContent()) this.#recordRecent()

    // 2. What the server offers (may come from the cache, or be nothing). Let the
    // text paint first: starting providers encodes the whole document once.
    const loaded = await this.#untilReachable(await this.#opts.config)
    await afterPaint()
    if (this.#destroyed) return
    const resolved = resolveConfig(loaded ?? { source: 'none', config: null, base: '' }, this.#opts.token ?? null)
    this.#set({ configSource: loaded?.source ?? 'none', auth: resolved.auth, readOnly: resolved.readOnly })

    // A private document's keys (WebCrypto: needs a secure context, i.e. https or localhost).
    let keys: DocKeys | null = null
    if (this.#opts.linkKey) {
      try {
        keys = await deriveDocKeys(this.#opts.linkKey, this.docId)
      } catch (err) {
        console.error('[murmur] cannot derive the keys of this private document (WebCrypto needs https or localhost)', err)
        this.#set({ serverDetail: 'encryption unavailable on this page (needs https)' })
        return
      }
      if (this.#destroyed) return
    }

    // 3. Backup server: on a first visit the text comes from there.
    const mode = this.#opts.link?.force ?? (this.#meshPossible(resolved) ? 'backup' : 'relay')
    this.#syncUrl = resolved.syncUrl
    if (resolved.syncUrl) this.#guard('backup', () => (keys ? this.#openPrivate(resolved.syncUrl!, keys, mode) : this.#openBackup(resolved.syncUrl!, mode)))
    // 4. Peers: explicit signaling and ICE servers, never the libraries' public defaults.
    // A read-only link never joins the mesh (the server refuses it): live updates come through /sync.
    if (resolved.readOnly) this.#set({ signaling: 'read-only' })
    else if (this.#opts.webrtc !== false) {
      let Provider: typeof WebrtcProvider
      try {
        Provider = (await import('y-webrtc')).WebrtcProvider
      } catch (err) {
        console.error('[murmur] could not load the WebRTC code', err)
        return
      }
      if (this.#destroyed) return
      this.#guard('WebRTC', () => this.#openWebrtc(Provider, keys ? { ...resolved, roomSecret: keys.signalingPassword } : resolved))
    }
  }

  /**
   * While the server is unreachable and no earlier copy of its settings is
   * cached, asks again with backoff; meanwhile the status says the server is
   * unreachable (not "backup off").
   */
  async #untilReachable(loaded: LoadedConfig | null): Promise<LoadedConfig | null> {
    const reload = this.#opts.reloadConfig
    if (!reload) return loaded
    let retried = false
    const result = await untilReachable(loaded, reload, {
      signal: this.#stop.signal,
      onRetry: () => {
        retried = true
        this.#set({ configSource: 'none', link: 'offline', signaling: 'unreachable', serverDetail: null })
      },
    })
    if (retried) this.#set({ link: 'off', signaling: 'none' }) // the providers report their own states from here
    return result
  }

  /** Runs one provider's setup; a failing provider is logged and the others still start. */
  #guard(what: string, fn: () => void) {
    try {
      fn()
    } catch (err) {
      console.error(`[murmur] ${what} provider failed to start`, err)
    }
  }

  #canRtc(): boolean {
    return this.#opts.peerOpts?.wrtc !== undefined || typeof (globalThis as { RTCPeerConnection?: unknown }).RTCPeerConnection === 'function'
  }

  /** Whether this session will try to reach peers directly (the backup link then starts backup-only). */
  #meshPossible(resolved: ResolvedConfig): boolean {
    return this.#opts.link?.force !== 'relay' && !resolved.readOnly && this.#opts.webrtc !== false && this.#canRtc() && resolved.signaling.length > 0
  }

  #openWebrtc(Provider: typeof WebrtcProvider, resolved: ResolvedConfig) {
    // Without WebRTC (disabled or unsupported browser) announcing ourselves would only make
    // peers try connections we cannot accept; tabs of this browser still sync over BroadcastChannel.
    const canRtc = this.#canRtc()
    const signaling = canRtc ? resolved.signaling : []
    const webrtc = new Provider(this.docId, this.doc, {
      signaling,
      awareness: this.awareness,
      filterBcConns: true,
      // With auth, only read-write holders know the room secret: signaling is encrypted with it,
      // so peers without it can neither read the room's offers nor be connected to.
      ...(resolved.roomSecret ? { password: resolved.roomSecret } : {}),
      peerOpts: { ...this.#opts.peerOpts, config: { iceServers: resolved.iceServers } },
      ...(this.#opts.maxConns ? { maxConns: this.#opts.maxConns } : {}),
    })
    this.webrtc = webrtc
    this.#signals = new SignalWatch(webrtc, (peerId) => this.#policy.heard(peerId, this.#now()))
    webrtc.on('status', this.#onWebrtcStatus)
    webrtc.on('peers', this.#onPeers)
    webrtc.on('synced', this.#onRtcSynced)
    this.#poll = setInterval(this.#refreshPeers, this.#opts.pollMs ?? 1000)
    this.#set({ signaling: !canRtc ? 'no-webrtc' : signaling.length ? 'connecting' : 'none' })
  }

  #openBackup(syncUrl: string, mode: LinkModeName) {
    const ws = new WebsocketProvider(syncUrl, this.docId, this.doc, {
      awareness: this.awareness,
      // The link mode rides on the URL so the server's greeting already follows it (docs/protocol.md).
      params: { ...(this.#opts.token ? { token: this.#opts.token } : {}), link: mode },
      disableBc: true, // y-webrtc already syncs tabs of this browser
      ...(this.#opts.WebSocketPolyfill ? { WebSocketPolyfill: this.#opts.WebSocketPolyfill as typeof WebSocket } : {}),
    })
    this.websocket = ws
    this.link = new BackupLink(ws, this.awareness, {
      mode,
      isPeerOrigin: (origin) => origin !== ws && this.#isProviderOrigin(origin),
      reconcileMs: this.#opts.link?.reconcileMs,
      pollMs: this.#opts.link?.pollMs,
      onChange: () => this.#syncTracker(),
    })
    ws.messageHandlers[MessageType.durableAck] = (_encoder: encoding.Encoder, decoder: decoding.Decoder) => {
      const nonce = readDurableNonce(decoder)
      if (ws === this.websocket && this.tracker.ack(nonce, this.#now())) this.#syncTracker()
    }
    ws.on('status', this.#onWsStatus)
    ws.on('sync', this.#onWsSync)
    ws.on('connection-close', this.#onWsClose)
    ws.on('closed', this.#onWsClosed)
    this.#set({ link: 'connecting' })
  }

  #openPrivate(syncUrl: string, keys: DocKeys, mode: LinkModeName) {
    const idb = this.idb
    const link: PrivateLogLink = new PrivateLogLink({
      url: syncUrl.replace(/\/sync$/, '') + '/log',
      docId: this.docId,
      doc: this.doc,
      awareness: this.awareness,
      keys,
      token: this.#opts.token ?? null,
      nonce: () => this.tracker.localChanges,
      skipOrigin: (origin) => origin === idb,
      // The hybrid data path on ciphertext (docs/protocol.md): backup-only while peers are direct.
      mode,
      isPeerOrigin: (origin): boolean => origin !== this.privateLog && this.#isProviderOrigin(origin),
      reconcileMs: this.#opts.link?.reconcileMs,
      pollMs: this.#opts.link?.pollMs,
      meta: idb?.db ? (idb as unknown as LogMeta) : null,
      ...(this.#opts.compactAfter ? { compactAfter: this.#opts.compactAfter } : {}),
      ...(this.#opts.WebSocketPolyfill ? { WebSocketPolyfill: this.#opts.WebSocketPolyfill } : {}),
    })
    this.privateLog = link
    link.on('status', ({ status }) => status === 'connected' && this.#onWsStatus({ status }))
    link.on('synced', (synced) => this.#onWsSync(synced))
    link.on('ack', (nonce) => this.tracker.ack(nonce, this.#now()) && this.#syncTracker())
    link.on('connection-close', (e) => this.#onWsClose(e))
    link.on('covered', () => this.#syncTracker())
    link.on('closed', ({ code }) => this.#set({ link: 'offline', serverDetail: CLOSE_DETAIL[code] ?? `closed by server (${code})` }))
    this.#set({ link: 'connecting' })
  }

  /**
   * Backs up a companion document of this one (its version history,
   * `<docId>.history`) the way this document is backed up: a private
   * document's companion through an encrypted `/log/<companionId>` of its
   * own (keys derived from the same link key, salted with the companion's
   * id), any other through `/sync/<companionId>` with this document's token;
   * both upload what came from peers (`isPeerOrigin`) only if the server lacks
   * it, in this document's link mode. Resolves null when there is no backup
   * server. Call after `ready`.
   */
  async backupCompanion(
    companionId: string,
    doc: Y.Doc,
    opts: { isPeerOrigin: (origin: unknown) => boolean; meta?: LogMeta | null; skipOrigin?: (origin: unknown) => boolean; compactAfter?: number },
  ): Promise<CompanionBackup | null> {
    const syncUrl = this.#syncUrl
    if (this.#destroyed || !syncUrl) return null
    if (this.#opts.linkKey) {
      if (!this.privateLog) return null
      const keys = await deriveDocKeys(this.#opts.linkKey, companionId)
      if (this.#destroyed) return null
      const awareness = quietAwareness(doc)
      const link = new PrivateLogLink({
        url: syncUrl.replace(/\/sync$/, '') + '/log',
        docId: companionId,
        doc,
        awareness,
        keys,
        token: this.#opts.token ?? null,
        nonce: () => 0,
        skipOrigin: opts.skipOrigin,
        mode: this.privateLog.mode,
        isPeerOrigin: opts.isPeerOrigin,
        reconcileMs: this.#opts.link?.reconcileMs,
        pollMs: 10_000,
        meta: opts.meta ?? null,
        ...(opts.compactAfter ? { compactAfter: opts.compactAfter } : {}),
        ...(this.#opts.WebSocketPolyfill ? { WebSocketPolyfill: this.#opts.WebSocketPolyfill } : {}),
      })
      this.#companionLogs.add(link)
      return {
        origin: link,
        private: link,
        sync: null,
        link: null,
        destroy: () => {
          this.#companionLogs.delete(link)
          link.destroy()
          awareness.destroy()
        },
      }
    }
    const main = this.link
    const ws = new WebsocketProvider(syncUrl, companionId, doc, {
      awareness: quietAwareness(doc),
      params: { ...(this.#opts.token ? { token: this.#opts.token } : {}), link: main?.mode ?? 'relay' },
      disableBc: true,
      ...(this.#opts.WebSocketPolyfill ? { WebSocketPolyfill: this.#opts.WebSocketPolyfill as typeof WebSocket } : {}),
    })
    const link = new BackupLink(ws, ws.awareness, { mode: main?.mode ?? 'relay', isPeerOrigin: opts.isPeerOrigin, pollMs: 10_000 })
    ws.on('sync', (synced: boolean) => synced && link.synced())
    ws.on('connection-close', () => link.closed())
    const unfollow = main?.follow(link) ?? (() => {})
    return {
      origin: ws,
      private: null,
      sync: ws,
      link,
      destroy: () => {
        unfollow()
        link.destroy()
        ws.destroy()
        ws.awareness.destroy()
      },
    }
  }

  // ---- Y.Doc --------------------------------------------------------------

  #isProviderOrigin(origin: unknown): boolean {
    return origin !== null && origin !== undefined && (origin === this.idb || origin === this.websocket || origin === this.privateLog || (this.webrtc !== null && origin === this.webrtc.room))
  }

  #onUpdate = (_update: Uint8Array, origin: unknown) => {
    const local = !this.#isProviderOrigin(origin)
    if (local) {
      this.tracker.localChange(this.#now())
      this.#scheduleQuery()
      this.#syncTracker()
    }
    if (this.#facts.loaded && this.#hasContent()) {
      if (this.#facts.firstSync !== 'done') this.#firstSync({ type: local ? 'edit' : 'content' })
      if (!this.#inRecent) this.#recordRecent()
    }
    if (origin !== this.idb) this.#trackStore()
    this.#scheduleTitle()
  }

  /**
   * y-indexeddb writes each update in its own readwrite transaction without
   * exposing a promise. A readonly transaction on the same store created
   * afterwards cannot start before those writes finish, so its `complete`
   * event means "everything so far is on disk".
   */
  #trackStore() {
    if (!this.idb?.db) return
    this.#writeSeq++
    if (this.#facts.local === 'saved') this.#set({ local: 'saving' })
    if (!this.#checkingStore) {
      this.#checkingStore = true
      queueMicrotask(this.#checkStored)
    }
  }

  #checkStored = () => {
    const db = this.idb?.db
    if (!db || this.#destroyed) return
    const seq = this.#writeSeq
    let tx: IDBTransaction
    try {
      tx = db.transaction(['updates'], 'readonly')
    } catch {
      this.#checkingStore = false
      return
    }
    tx.oncomplete = () => {
      if (this.#destroyed) return
      if (seq === this.#writeSeq) {
        this.#checkingStore = false
        this.#set({ local: 'saved' })
      } else this.#checkStored()
    }
    tx.onabort = () => {
      this.#checkingStore = false
    }
  }

  #scheduleTitle() {
    if (this.#titleTimer !== null) clearTimeout(this.#titleTimer)
    this.#titleTimer = setTimeout(() => {
      this.#titleTimer = null
      if (this.#destroyed) return
      const title = firstLine(this.text)
      if (title !== this.#facts.title) {
        this.#set({ title })
        this.#updateRecentTitle()
      }
    }, this.#opts.titleDebounceMs ?? 400)
  }

  #updateRecentTitle() {
    if (this.#opts.recent) setRecentTitle(this.#opts.recent, this.docId, this.#facts.title)
  }

  /** Something was ever written under this id (cheap: the store's client count). */
  #hasContent(): boolean {
    return this.doc.store.clients.size > 0
  }

  /** Lists the document among this device's recent ones: only once it has content, so a mistyped link never appears there. */
  #recordRecent() {
    this.#inRecent = true
    if (!this.#opts.recent) return
    touchRecent(this.#opts.recent, this.docId, this.#now())
    this.#updateRecentTitle()
  }

  #firstSync(event: FirstSyncEvent) {
    if (!this.#facts.loaded) return
    const next = nextFirstSync(this.#facts.firstSync, event)
    // The title is shown with the text that just arrived, not after the edit debounce.
    if (next !== this.#facts.firstSync) this.#set({ firstSync: next, title: firstLine(this.text) })
  }

  #onRtcSynced = ({ synced }: { synced: boolean }) => {
    if (synced) this.#firstSync({ type: 'answered', empty: !this.#hasContent() })
    this.#refreshPeers()
  }

  // ---- Awareness ----------------------------------------------------------

  /** Whether an awareness change came from the server (the backup link or the private log). */
  #fromServer = (origin: unknown): boolean => origin !== null && (origin === this.websocket || origin === this.privateLog)

  #onAwarenessChange = ({ added, updated }: { added: number[]; updated: number[] }, origin: unknown) => {
    // y-protocols emits 'change' before 'update': note states from the server before the refresh below.
    if (this.#fromServer(origin)) for (const id of [...added, ...updated]) this.#serverSeen.add(id)
    const states = this.awareness.getStates()
    for (const id of [...added, ...updated]) {
      if (id !== this.doc.clientID) sanitizeRemoteState(states.get(id) as Record<string, unknown> | undefined)
    }
    this.#refreshPeers()
  }

  #onAwarenessUpdate = ({ added, updated, removed }: { added: number[]; updated: number[]; removed: number[] }, origin: unknown) => {
    if (!this.#fromServer(origin)) return
    for (const id of added) this.#serverSeen.add(id)
    for (const id of updated) this.#serverSeen.add(id)
    for (const id of removed) this.#serverSeen.delete(id)
    // The server drops the states of a socket that closed. A peer still linked directly (only its
    // socket went) says it is here again when asked; one that left does not answer.
    if (removed.length && this.webrtc?.room) requestAwareness(this.webrtc.room)
    this.#refreshPeers()
  }

  // ---- WebRTC -------------------------------------------------------------

  #onWebrtcStatus = () => {
    const room = this.webrtc?.room
    if (room && !this.#destroyed) {
      ignoreOwnBroadcasts(room)
      forwardOnlyWhenNeeded(room, this.meshIncomplete, this.#fromServer, (clientId) => this.#reach.reaches(clientId, this.#now()), (ids) => {
        for (const id of ids) this.#reach.passedOn(id, this.awareness.meta.get(id)?.clock ?? 0)
      })
      if (this.awareness.getLocalState()?.peerId !== room.peerId) this.awareness.setLocalStateField('peerId', room.peerId)
    }
    this.#refreshPeers()
  }

  /**
   * Whether peers may miss what reached us unless we pass it on: someone
   * known only second-hand, y-webrtc at its connection cap, or a linked peer
   * that reaches fewer peers than we know of (`neighborsIncomplete`, worked
   * out when peers change).
   */
  meshIncomplete = (): boolean => {
    const webrtc = this.webrtc
    if (!webrtc?.room) return true
    return webrtc.room.webrtcConns.size >= webrtc.maxConns || this.#neighborsMissing || this.#facts.peerList.some((p) => p.via === 'relay')
  }
  #neighborsMissing = false

  #onPeers = ({ added, removed }: { added: string[]; removed: string[] }) => {
    const room = this.webrtc?.room
    if (room) {
      yieldToHigherPeers(room, added)
    }
    if (removed.length) this.#forgetPeers(removed)
    for (const id of added) {
      const conn = room?.webrtcConns.get(id)
      if (conn) this.historyMesh.adopt(id, conn)
      const peer = conn?.peer as { once?: (ev: string, fn: () => void) => void } | undefined
      peer?.once?.('connect', () => {
        // Only connections that connect carry awareness; one this device yielded (glare) never does.
        if (conn) this.#reach.observe(conn.peer as unknown as Parameters<MeshReach['observe']>[0])
        this.#refreshPeers()
      })
    }
    this.#refreshPeers()
  }

  /**
   * A peer whose direct connection closed without saying goodbye (a closed
   * browser) would stay in the list until awareness times out (30 s): with a
   * backup-only link the server no longer relays its removal. Its state goes
   * when its last route goes (not seen through the server, not another tab);
   * if it is still reachable, its next awareness update brings it back.
   */
  #forgetPeers(peerIds: string[]) {
    const gone = new Set(peerIds)
    const bc: ReadonlySet<string> = this.webrtc?.room?.bcConns ?? new Set()
    const ids: number[] = []
    for (const [clientId, state] of this.awareness.getStates()) {
      const peerId = (state as { peerId?: unknown }).peerId
      if (clientId !== this.doc.clientID && typeof peerId === 'string' && gone.has(peerId) && !bc.has(peerId) && !this.#serverSeen.has(clientId)) ids.push(clientId)
    }
    if (ids.length) removeAwarenessStates(this.awareness, ids, 'peer left')
  }

  #refreshPeers = () => {
    if (this.#destroyed) return
    const webrtc = this.webrtc
    const room = webrtc?.room ?? null
    const direct = new Set<string>()
    if (room) for (const [id, conn] of room.webrtcConns) if (conn.connected && !conn.closed) direct.add(id)
    const browser: ReadonlySet<string> = room ? room.bcConns : new Set()
    const conns = (webrtc?.signalingConns ?? []) as { connected: boolean; unsuccessfulReconnects: number }[]
    const signaling: SignalingState =
      this.#facts.signaling === 'no-webrtc' || this.#facts.signaling === 'read-only' || (!webrtc && this.#facts.signaling === 'unreachable')
        ? this.#facts.signaling
        : !webrtc || webrtc.signalingUrls.length === 0
          ? 'none'
          : conns.some((c) => c.connected)
            ? 'connected'
            : conns.length > 0 && conns.every((c) => c.unsuccessfulReconnects > 0)
              ? 'unreachable'
              : 'connecting'
    // A peer whose awareness also comes over the mesh is reached through a peer, not only via the
    // server (a relaying link gets every state from the server, and keeps them after it stops).
    const now = this.#now()
    const server = new Set<number>()
    for (const id of this.#serverSeen) if (!this.#reach.reaches(id, now)) server.add(id)
    const peerList = classifyPeers(this.awareness.getStates() as Map<number, Record<string, unknown>>, this.doc.clientID, { direct, browser, server })
    // Count what the peer list shows as direct: a peer that left is dropped from awareness at
    // once, while its RTCPeerConnection only notices after ICE consent times out (~20 s).
    const peers = peerList.reduce((n, p) => n + (p.via === 'direct' ? 1 : 0), 0)
    const inMesh = peers + browser.size
    if (room) {
      dropStalled(room, now, STALL_MS)
      this.#signals?.watch()
      // Tell linked peers how much of the mesh we reach, and learn whether one of them misses a part.
      if (this.awareness.getLocalState() && this.awareness.getLocalState()?.[MESH_PEERS_FIELD] !== inMesh) this.awareness.setLocalStateField(MESH_PEERS_FIELD, inMesh)
      const known = peerList.reduce((n, p) => n + (p.via === 'server' ? 0 : 1), 0)
      this.#neighborsMissing = neighborsIncomplete(this.awareness.getStates() as Map<number, Record<string, unknown>>, direct, known)
    }
    // Relay on demand: the link relays while some peer of the room is not reached through the mesh.
    const mode = this.#opts.link?.force ?? this.#policy.decide(signaling, room?.webrtcConns ?? null, now, this.#peerViews(direct, browser, now), room ? { peerId: room.peerId, meshPeers: inMesh } : undefined)
    // Say whether this link relays: the other side of an unreached pair then need not (`link-policy.ts`).
    const local = this.awareness.getLocalState()
    if (local && (local[RELAYING_FIELD] === true) !== (mode === 'relay')) this.awareness.setLocalStateField(RELAYING_FIELD, mode === 'relay' ? true : undefined)
    const viaServer = peerList.reduce((n, p) => n + (p.via === 'server' ? 1 : 0), 0)
    this.link?.setMode(mode, peers, viaServer)
    this.privateLog?.setMode(mode)
    for (const companion of this.#companionLogs) companion.setMode(mode)
    // Someone we only reach through the server: ask the mesh to try pairing again now and then.
    if (viaServer > 0 && webrtc && signaling === 'connected' && now - this.#announcedAt > REANNOUNCE_MS) {
      this.#announcedAt = now
      reannounce(webrtc)
    }
    const f = this.#facts
    if (f.peers !== peers || f.browserPeers !== browser.size || f.signaling !== signaling || !samePeers(f.peerList, peerList)) {
      this.#set({ peers, browserPeers: browser.size, signaling, peerList: samePeers(f.peerList, peerList) ? f.peerList : peerList })
    }
  }

  /** The policy's view of each peer present in awareness with a y-webrtc id: reached through the mesh, and what its recent state says. */
  #peerViews(direct: ReadonlySet<string>, browser: ReadonlySet<string>, now: number): Map<string, PeerView> {
    const views = new Map<string, PeerView>()
    for (const [clientId, state] of this.awareness.getStates()) {
      const peerId = (state as { peerId?: unknown }).peerId
      if (clientId === this.doc.clientID || typeof peerId !== 'string') continue
      const updated = this.awareness.meta.get(clientId)?.lastUpdated ?? 0
      const renewed = Date.now() - updated < FRESH_STATE_MS
      // A state kept fresh that never came from the server came over the mesh (y-webrtc's dump on
      // connecting counts here, so a newly paired room does not wait a renewal for single-entry
      // messages). One the server sent needs `mesh-reach.ts` to show the mesh carries it too.
      const reached = direct.has(peerId) || browser.has(peerId) || this.#reach.reaches(clientId, now) || (renewed && !this.#serverSeen.has(clientId))
      const meshPeers = (state as Record<string, unknown>)[MESH_PEERS_FIELD]
      const fresh = renewed && typeof meshPeers === 'number'
      views.set(peerId, { reached, says: fresh ? { meshPeers: meshPeers as number, relaying: (state as Record<string, unknown>)[RELAYING_FIELD] === true } : null })
    }
    return views
  }

  // ---- Backup -------------------------------------------------------------

  #onWsStatus = ({ status }: { status: 'connected' | 'disconnected' | 'connecting' }) => {
    if (status === 'connected') {
      this.tracker.connectionOpened()
      this.#set({ link: 'connecting', serverDetail: null })
      this.#syncTracker()
    }
  }

  #onWsSync = (synced: boolean) => {
    if (!synced) return
    this.tracker.synced()
    this.link?.synced()
    // Reaching the server proves the cached settings still hold: drop the "using last known settings" note.
    this.#set({ link: 'synced', ...(this.#facts.configSource === 'cache' ? { configSource: 'server' as const } : {}) })
    this.#firstSync({ type: 'answered', empty: !this.#hasContent() })
    this.#syncTracker()
    this.#scheduleQuery()
  }

  #onWsClose = (event: { code: number } | null) => {
    if (this.#destroyed) return
    const hadStates = this.#serverSeen.size > 0
    this.tracker.connectionClosed()
    this.link?.closed()
    this.#serverSeen.clear()
    // A transient close (e.g. 4500 storage error) is retried, but the user still learns why it went.
    const detail = event ? CLOSE_DETAIL[event.code] : undefined
    this.#set({ link: 'offline', ...(detail ? { serverDetail: detail } : {}) })
    this.#syncTracker()
    // y-websocket drops every remote awareness state on close, including peers we reach directly.
    if (hadStates && this.webrtc?.room) requestAwareness(this.webrtc.room)
    this.#refreshPeers()
  }

  #onWsClosed = ({ code }: { code: number; reason: string }) => {
    this.#set({ link: 'offline', serverDetail: CLOSE_DETAIL[code] ?? `closed by server (${code})` })
  }

  /** Sends `[durableQuery, localChanges]` once per microtask, after y-websocket has sent the updates themselves. */
  #scheduleQuery() {
    if (this.#queryScheduled) return
    this.#queryScheduled = true
    queueMicrotask(() => {
      this.#queryScheduled = false
      const ws = this.websocket
      const socket = ws?.ws
      if (this.#destroyed || !ws || !ws.synced || !socket || socket.readyState !== 1) return
      try {
        socket.send(encodeDurableQuery(this.tracker.localChanges))
      } catch {
        // the close handler takes over
      }
    })
  }

  #syncTracker() {
    const t = this.tracker
    const f = this.#facts
    if (f.lastBackupAt !== t.lastBackupAt && t.lastBackupAt !== null) {
      // Kept beside the document on this device, so the status still knows it after a reload.
      this.idb?.set('lastBackupAt', t.lastBackupAt).catch(() => {})
    }
    // Backed up means all of it: this device's edits acked, and the server's state covers what came from peers.
    const backedUp = t.backedUp && (this.link === null || this.link.covered) && (this.privateLog === null || this.privateLog.covered)
    if (f.backedUp !== backedUp || f.unbackedChanges !== t.unbacked || f.localChanges !== t.localChanges || f.lastBackupAt !== t.lastBackupAt || f.unbackedSince !== t.unbackedSince) {
      this.#set({ backedUp, unbackedChanges: t.unbacked, localChanges: t.localChanges, lastBackupAt: t.lastBackupAt, unbackedSince: t.unbackedSince })
    }
  }

  #restoreLastBackup(at: unknown) {
    if (typeof at !== 'number') return
    this.tracker.restoreLastBackup(at)
    this.#set({ lastBackupAt: this.tracker.lastBackupAt })
  }

  // ---- plumbing -----------------------------------------------------------

  #set(patch: Partial<SessionFacts>) {
    if (this.#destroyed) return
    let changed = false
    for (const k in patch) {
      if ((this.#facts as unknown as Record<string, unknown>)[k] !== (patch as Record<string, unknown>)[k]) {
        changed = true
        break
      }
    }
    if (!changed) return
    this.#facts = { ...this.#facts, ...patch }
    if (!this.#emitScheduled) {
      this.#emitScheduled = true
      queueMicrotask(() => {
        this.#emitScheduled = false
        if (this.#destroyed) return
        for (const fn of this.#listeners) {
          try {
            fn(this.#facts)
          } catch (err) {
            console.error('[murmur] session listener failed', err)
          }
        }
      })
    }
  }

  /**
   * Closes every provider, timer and listener. Our awareness state is
   * cleared first so peers see us leave. Resolves once IndexedDB is closed
   * (pending writes complete first).
   */
  async destroy(): Promise<void> {
    if (this.#destroyed) return
    // Final title for the recent list before going away.
    if (this.#titleTimer !== null && this.#facts.loaded) {
      const title = firstLine(this.text)
      if (title !== this.#facts.title) {
        this.#facts = { ...this.#facts, title }
        this.#updateRecentTitle()
      }
    }
    this.#destroyed = true
    this.#resolveLoaded()
    this.#resolveDestroyed(false)
    if (this.#titleTimer !== null) clearTimeout(this.#titleTimer)
    this.#stop.abort()
    if (this.#poll !== null) clearInterval(this.#poll)
    this.#signals?.stop()
    this.#listeners.clear()
    this.awareness.setLocalState(null)
    this.doc.off('update', this.#onUpdate)
    this.awareness.off('change', this.#onAwarenessChange)
    this.awareness.off('update', this.#onAwarenessUpdate)
    const webrtc = this.webrtc
    if (webrtc) {
      webrtc.off('status', this.#onWebrtcStatus)
      webrtc.off('peers', this.#onPeers)
      webrtc.off('synced', this.#onRtcSynced)
      // y-webrtc's destroy() leaves the shared signaling sockets running; disconnect() releases them.
      webrtc.disconnect()
      webrtc.destroy()
      releaseBroadcastChannel(this.docId)
    }
    this.link?.destroy()
    this.privateLog?.destroy()
    const ws = this.websocket
    if (ws) {
      ws.off('status', this.#onWsStatus)
      ws.off('sync', this.#onWsSync)
      ws.off('connection-close', this.#onWsClose)
      ws.off('closed', this.#onWsClosed)
      ws.destroy()
    }
    this.awareness.destroy()
    const idb = this.idb
    try {
      if (idb) await idb.destroy()
    } catch {
      // database never opened
    }
    this.doc.destroy()
  }
}

/** The backup of a companion document (`SessionCore.backupCompanion`). */
export interface CompanionBackup {
  /** The origin of the updates it applies (the provider). */
  readonly origin: object
  /** The encrypted log link (private documents), else null. */
  readonly private: PrivateLogLink | null
  /** The y-websocket provider (other documents), else null. */
  readonly sync: WebsocketProvider | null
  /** Its upload policy (with `sync`), else null. */
  readonly link: BackupLink | null
  /** Closes it. */
  destroy(): void
}

/** An awareness that publishes nothing (a companion document has no presence of its own). */
function quietAwareness(doc: Y.Doc): Awareness {
  const awareness = new Awareness(doc)
  awareness.setLocalState(null)
  return awareness
}

/** Resolves after the browser had a chance to render (next frame, or 100 ms in background tabs; a macrotask in Node). */
function afterPaint(): Promise<void> {
  return new Promise((resolve) => {
    const done = () => setTimeout(resolve, 0)
    if (typeof requestAnimationFrame !== 'function') return done()
    const timer = setTimeout(done, 100)
    requestAnimationFrame(() => {
      clearTimeout(timer)
      done()
    })
  })
}
