/**
 * Message types of the backup sync channel (`/sync/<docId>`).
 *
 * 0–3 are the stock y-websocket types. 100/101 are murmur's durability
 * extension: a client that wants to know what the server holds durably sends
 * `[DURABLE_QUERY, nonce]`; once every message the server received on that
 * socket before the query is committed to storage, the server answers
 * `[DURABLE_ACK, nonce]`. Stock clients never send the query, so they never
 * receive a type they do not know. 102–105 are the hybrid data path
 * (`hybrid.ts`, docs/protocol.md): link mode and state query/ack, again only
 * answered to clients that use them.
 */
export const MessageType = {
  sync: 0,
  awareness: 1,
  auth: 2,
  queryAwareness: 3,
  durableQuery: 100,
  durableAck: 101,
  /** Client → server: `[102, mode, directPeers, relayedPeers]`, the hybrid link mode (see hybrid.ts). */
  linkMode: 102,
  /** Client → server: `[103, nonce, svDigest?]`, "tell me your committed state once everything I sent before is committed". */
  stateQuery: 103,
  /** Server → client: `[104, nonce, stateVector, deleteSetDigest]`, the answer to a state query without `svDigest`. */
  stateAck: 104,
  /** Server → client: `[105, nonce, same, changes, deleteSetDigest]`, the compact answer to a state query with `svDigest`. */
  stateDelta: 105,
} as const

/**
 * Message types murmur adds to the WebRTC mesh's data channels, next to
 * y-webrtc's own (0 sync, 1 awareness, 3 query awareness, 4 peer id). A
 * `MeshPort` (`session/mesh-port.ts`) takes them off the channel before
 * y-webrtc sees them. Each is one byte on the wire (below 128).
 */
export const MeshMessage = {
  /** The version history (`history/mesh-sync.ts`): `[110, 0, stateVector]` or `[110, 1, last, bytes]`. */
  history: 110,
  /** One part of a y-webrtc message too big for one data channel message (`session/mesh-parts.ts`): `[111, total, offset, bytes]`. */
  part: 111,
} as const

/**
 * WebSocket close codes the server uses. Every bad input closes only the
 * socket that sent it, with one of these codes and a short reason.
 *
 * They follow y-websocket's convention: 4400–4499 are permanent (the client
 * must not reconnect: reconnecting cannot fix it), 4500–4599 are transient
 * (reconnect with backoff; a fresh sync usually resolves it).
 */
export const CloseCode = {
  /** Server shutting down (standard). */
  goingAway: 1001,
  /** Frame above the configured size cap (standard; sent by ws itself). */
  tooBig: 1009,
  /** The client does not read: too much is waiting to be sent to it (standard "try again later"). */
  slowConsumer: 1013,
  /** A frame that is not valid for the protocol: bad JSON, wrong field types, undecodable binary. */
  badMessage: 4400,
  /** Missing, malformed, expired or wrong-document access token. */
  unauthorized: 4401,
  /** A write to a private document's log whose write capability is missing or wrong; nothing was stored. */
  forbidden: 4403,
  /** Unknown path or invalid document id. */
  notFound: 4404,
  /** Updates whose dependencies never arrived (pending queue overflow or timeout); a reconnect resyncs. */
  missingDependencies: 4509,
  /** A Yjs update that failed to apply; the document was left unchanged. */
  badUpdate: 4422,
  /** Too many topics/rooms on one socket or too many sockets from one address. */
  tooMany: 4429,
  /** The document reached the server's per-document size quota (`--max-document-bytes`); nothing stored is lost, later changes stay on the devices. */
  documentTooLarge: 4413,
  /** The server is at its loaded-documents cap (`--max-loaded-documents`), every one in use; retry later. */
  busy: 4503,
  /** The server's storage is at its quota (`--max-storage-bytes`); retry later. */
  storageFull: 4507,
  /** Message rate above the configured flood limit; reconnect after backing off. */
  flood: 4529,
  /** Storage failed; the client should reconnect later. */
  storageError: 4500,
} as const

/** Name of a close code, for logs and docs. */
export type CloseCodeName = keyof typeof CloseCode
