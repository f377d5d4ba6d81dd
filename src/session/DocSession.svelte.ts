/**
 * `DocSession`: one open document as Svelte 5 runes state. It owns a
 * `SessionCore` (the Y.Doc, its providers and awareness) and mirrors the
 * core's facts into `$state` fields from the core's change event — no
 * `$effect` copies. Components read fields; they hold no sync logic.
 */
import type * as Y from 'yjs'
import type { Awareness } from 'y-protocols/awareness'
import { SessionCore, type SessionFacts, type SessionOptions } from './core.ts'
import type { PeerInfo, UserIdentity } from './presence.ts'
import type { ConfigSource } from './config.ts'
import type { FirstSync } from './first-sync.ts'
import { serverState, shouldWarnBeforeUnload, type LocalState, type ServerLink, type ServerState, type SignalingState } from './status.ts'

/** A reactive document session. Call `destroy()` when the document is closed. */
export class DocSession {
  /** The framework-free core (providers, tracker). */
  readonly core: SessionCore
  /** The document id. */
  readonly docId: string
  /** The link key of a private (end-to-end encrypted) document, or null for a plain one. */
  readonly linkKey: string | null

  /** This device's copy: loading | saving | saved | unavailable. */
  local = $state<LocalState>('loading')
  /** IndexedDB has loaded; the editor can be shown. */
  loaded = $state(false)
  /** First line of the text. */
  title = $state('')
  /** Direct WebRTC connections to peers still present (agrees with the peer list). */
  peers = $state(0)
  /** Other tabs of this browser with this document open. */
  browserPeers = $state(0)
  /** Signaling reachability. */
  signaling = $state<SignalingState>('none')
  /** Backup link: off | connecting | synced | offline. */
  server = $state<ServerLink>('off')
  /** Why the server is unusable, when known. */
  serverDetail = $state<string | null>(null)
  /** Everything local is durable on the server. */
  backedUp = $state(false)
  /** Local changes never confirmed durable. */
  unbackedChanges = $state(0)
  /** Time of the last full backup (ms), or null. */
  lastBackupAt = $state<number | null>(null)
  /** When the oldest edit the server has not confirmed was made (ms), or null. */
  unbackedSince = $state<number | null>(null)
  /** Whether the document has reached this device: done | waiting | empty. */
  firstSync = $state<FirstSync>('waiting')
  /** Remote participants. */
  peerList = $state.raw<PeerInfo[]>([])
  /** Where the server configuration came from. */
  configSource = $state<ConfigSource | 'pending'>('pending')
  /** The server requires access tokens. */
  auth = $state(false)
  /** The link is read-only: the editor does not accept typing. */
  readOnly = $state(false)

  /** What the status bar shows for the server (`data-state`). */
  readonly serverState: ServerState = $derived(serverState(this.server, this.backedUp))
  /** Leaving now would leave local changes on this device only. */
  readonly warnOnLeave: boolean = $derived(shouldWarnBeforeUnload({ unbacked: this.unbackedChanges, peers: this.peers, backedUp: this.backedUp }))

  #off: () => void

  constructor(docId: string, opts: SessionOptions) {
    this.docId = docId
    this.linkKey = opts.linkKey ?? null
    this.core = new SessionCore(docId, opts)
    this.#off = this.core.onChange((f) => this.#pull(f))
    this.#pull(this.core.facts)
  }

  #pull(f: SessionFacts) {
    this.local = f.local
    this.loaded = f.loaded
    this.title = f.title
    this.peers = f.peers
    this.browserPeers = f.browserPeers
    this.signaling = f.signaling
    this.server = f.link
    this.serverDetail = f.serverDetail
    this.backedUp = f.backedUp
    this.unbackedChanges = f.unbackedChanges
    this.lastBackupAt = f.lastBackupAt
    this.unbackedSince = f.unbackedSince
    this.firstSync = f.firstSync
    if (this.peerList !== f.peerList) this.peerList = f.peerList
    this.configSource = f.configSource
    this.auth = f.auth
    this.readOnly = f.readOnly
  }

  /** The shared Y.Doc. */
  get doc(): Y.Doc {
    return this.core.doc
  }

  /** The document text. */
  get text(): Y.Text {
    return this.core.text
  }

  /** Presence shared by all providers. */
  get awareness(): Awareness {
    return this.core.awareness
  }

  /** The y-webrtc provider (null until the config is known, or when disabled). */
  get webrtc() {
    return this.core.webrtc
  }

  /** The y-websocket backup provider (null when backup is off). */
  get websocket() {
    return this.core.websocket
  }

  /** The IndexedDB persistence. */
  get idb() {
    return this.core.idb
  }

  /** Publishes a new name/colour. */
  setUser(identity: UserIdentity): void {
    this.core.setUser(identity)
  }

  /** Ends the "not on this device yet" state: the user writes without waiting. */
  startWriting(): void {
    this.core.startWriting()
  }

  /** Closes every provider and listener. */
  destroy(): Promise<void> {
    this.#off()
    return this.core.destroy()
  }
}
