/**
 * What the harness (`harness.ts`) and a peer process (`peer.ts`) say to each
 * other over the fork IPC channel.
 */

/** Passed to a peer in the `MURMUR_PEER` environment variable. */
export interface PeerConfig {
  /** Server port; signaling at /signal, backup at /sync. */
  port: number
  /** Signaling on this port instead (another instance of a cluster). */
  signalPort?: number
  /** y-webrtc room name and /sync document id. */
  room: string
  /** Yjs client id (derived from the seed). */
  clientID: number
  /** y-websocket reconnect backoff cap. */
  maxBackoffTime: number
  /** Append-only update log standing in for IndexedDB; loaded on start. */
  persistPath: string
  /** Initial link state: WebRTC on, backup on, signaling peer ids to refuse. */
  rtc: boolean
  srv: boolean
  blocked: string[]
  /** The /sync link: a stock y-websocket client, murmur's hybrid link (`BackupLink`) backup-only or relaying, or a relaying link of a peer that cannot use WebRTC at all (`nortc`: its WebRTC never turns on). */
  link: 'stock' | 'backup' | 'relay' | 'nortc'
}

/** One change inside an edit transaction. `at` in [0,1) picks the position. */
export type SubEdit = { kind: 'insert'; at: number; text: string } | { kind: 'delete'; at: number; len: number }

export type PeerCommand = { id: number } & (
  | { type: 'edit'; edits: SubEdit[] }
  | { type: 'burst'; edits: SubEdit[] }
  | { type: 'rtc'; on: boolean }
  | { type: 'srv'; on: boolean }
  | { type: 'block'; peerIds: string[]; on: boolean; announce?: boolean }
  | { type: 'state' }
)

/** A replica as the peer sees it. */
export interface PeerState {
  text: string
  /** `Y.encodeStateVector`, base64. */
  sv: string
  pendingStructs: boolean
  pendingDs: boolean
  /** Open WebRTC data channels. */
  rtcConnected: number
  rtcPeers: string[]
  /** Document updates this replica received over WebRTC since it started (not counting the log replay). */
  rtcUpdates: number
  /** Sync messages with document updates received over WebRTC, whichever path delivered first. */
  rtcUpdateMessages: number
  /** Document updates that came from the server (relayed live or pulled by catch-up). */
  wsUpdates: number
  /** Peer changes a hybrid link uploaded because the server lacked them. */
  linkUploads: number
  wsConnected: boolean
  wsSynced: boolean
  /** False once y-websocket gave up reconnecting (or we disconnected it). */
  wsShouldConnect: boolean
  /** How often each close code ended the backup connection ('local' = we closed it). */
  closeCodes: Record<string, number>
  /** Closes after which stock y-websocket stops reconnecting (4400–4499). */
  terminalCloses: { code: number; reason: string }[]
  /** Exceptions library code threw inside WebSocket event handlers (caught, as a browser would). */
  clientErrors: number
  /** The first few distinct ones (message and top frames). */
  clientErrorSamples: string[]
}

export interface PeerReply {
  id: number
  ok: boolean
  error?: string
  ready?: boolean
  peerId?: string
  applied?: number
  state?: PeerState
}
