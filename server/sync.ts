/**
 * Backup sync at `/sync/<docId>`: the y-websocket protocol (sync step 1/2 and
 * update, awareness, query-awareness) plus murmur's durability extension
 * (`durableQuery` → `durableAck` once everything received before it is
 * committed). Stock `y-websocket` clients work unchanged; the server also
 * relays updates and awareness between the clients of one document.
 *
 * Hybrid data path (docs/protocol.md, `src/protocol/hybrid.ts`): a murmur
 * client says which link it wants, by the URL parameter `link=backup|relay`
 * and later by `[linkMode=102, mode, direct, relayed]`. A socket that never
 * says is a stock client and counts as relay. An update or awareness change
 * from X goes to Y only when X or Y is in relay mode: backup-only sockets
 * exchange nothing live with each other (their peers reach them directly).
 * A read-only token cannot join the mesh, so its socket is never backup-only.
 * `[stateQuery=103, nonce]` is answered, once everything received before it
 * is committed, with `[stateAck=104, nonce, stateVector, deleteSetDigest]`
 * of the committed document, so a client knows what the server lacks; a
 * query that carries the client's state-vector digest gets the compact
 * `[stateDelta=105, …]` instead (only what changed since the last one). What
 * one event-loop turn sends to a socket (relays, acks) leaves in one write
 * (`turn-batch.ts`).
 *
 * Every frame is untrusted. Close codes (see `CloseCode`):
 * - 4400 badMessage: undecodable frame, unknown message type, bad awareness
 *   JSON, an awareness state above `maxAwarenessStateBytes` (UTF-8 bytes), or
 *   a state vector above `maxStateVectorBytes`
 * - 4401 unauthorized: missing/invalid token when `--auth-secret` is set
 * - 4404 notFound: path is not `/sync/<valid docId>` (or `/sync/<valid docId>.history`, its history companion)
 * - 4413 documentTooLarge: the update would take the document's stored bytes
 *   past `maxDocumentBytes`, or its structs past `maxDocumentStructs`
 *   (nothing is stored; what was stored stays)
 * - 4422 badUpdate: a malformed Yjs update (the document is left unchanged)
 * - 4429 tooMany: an awareness update with more than `maxAwarenessClients`
 *   entries, a socket speaking for more ids than that, or a document holding
 *   more than `maxRoomAwarenessBytes` of awareness states
 * - 4503 busy: `maxLoadedDocuments` are loaded and every one is in use
 * - 4507 storageFull: the database is above `maxStorageBytes`
 * - 4509 missingDependencies: more than `maxPendingUpdates` updates or
 *   `maxHeldBytesPerSocket` bytes waiting for dependencies (or
 *   `maxHeldBytesTotal` on the whole server), or one waited longer than
 *   `pendingTimeoutMs`
 * - 4529 flood: more than `maxSyncMessagesPerSecond`
 * - 4500 storageError: the document could not be loaded
 * - 1009: a frame above `maxFrameBytes` (sent by ws), or above `maxUpdateBytes`
 *   unless it is the client's first sync step 2
 * - 1013 slowConsumer: more than `maxSendBufferBytes` (plus the first sync
 *   the client asked for) waiting to be sent to a socket that does not read
 * - 1012: the room was reset after another client's update failed to integrate; reconnect
 * While the whole server is overloaded (`load-guard.ts`) no socket is read.
 * Bytes are budgeted too (`syncBytesPerSecond` per socket, `syncBytesPerSecondPerIp`
 * per address): over budget a socket is not read until the budget refills.
 * A read-only token's writes are dropped and answered once with a y-protocols
 * auth "permission denied" message; the socket stays open and keeps receiving.
 */
import type { IncomingMessage } from 'node:http'
import type { Duplex } from 'node:stream'
import { WebSocketServer, type WebSocket, type RawData } from 'ws'
import * as Y from 'yjs'
import * as encoding from 'lib0/encoding'
import * as decoding from 'lib0/decoding'
import { applyAwarenessUpdate, encodeAwarenessUpdate } from 'y-protocols/awareness'
import { AwarenessError, encodeAwarenessEntries, parseAwarenessUpdate, type AwarenessEntry } from './awareness.ts'
import { roomDocId } from '../src/protocol/ids.ts'
import { isHistoryRoom, pruneHistoryDoc } from './history.ts'
import { CloseCode, MessageType } from '../src/protocol/messages.ts'
import { LinkMode, deleteSetDigest, encodeStateAck, encodeStateDelta, readStateQuery, stateVectorChanges, stateVectorDigest, type StateQuery, type StateVector } from '../src/protocol/hybrid.ts'
import { AuthError, verifyToken, type Grant } from './auth.ts'
import type { ServerContext } from './context.ts'
import { addressBudgets, byteBudget, closeAtExpiry, closeWith, keepAlive, tokenBucket, wsErrorCloseCode, type Endpoint } from './endpoint.ts'
import { turnBatch, type Corkable, type TurnBatch } from './turn-batch.ts'
import { analyzeUpdate, MalformedUpdateError, stateVectorOf, statusOf, structCount, unmet, type UpdateNeeds } from './updates.ts'
import { RoomsFullError, type Room, type RoomMember, type Rooms } from './rooms.ts'
import type { Store } from './store/store.ts'

const SYNC_STEP1 = 0
const SYNC_STEP2 = 1
const SYNC_UPDATE = 2
const ENDPOINT = 'sync'
/** Bytes of one socket's frames handled per event-loop turn before it yields to the others. */
const TURN_BYTES = 256 * 1024

/** Thrown inside message handling to close the socket with a code. */
class ProtocolError extends Error {
  constructor(
    readonly code: number,
    message: string,
  ) {
    super(message)
  }
}

function frame(type: number, write: (enc: encoding.Encoder) => void): Uint8Array {
  const enc = encoding.createEncoder()
  encoding.writeVarUint(enc, type)
  write(enc)
  return encoding.toUint8Array(enc)
}

/** Encodes a sync-protocol message carrying `update` (`subtype` step 2 or update). */
function syncFrame(subtype: number, update: Uint8Array): Uint8Array {
  return frame(MessageType.sync, (enc) => {
    encoding.writeVarUint(enc, subtype)
    encoding.writeVarUint8Array(enc, update)
  })
}

/** An update held until the document has what it needs (decoded once, on arrival). */
interface HeldUpdate {
  update: Uint8Array
  needs: UpdateNeeds
  /** Index of the first need not yet known to be met. */
  next: number
}

/** Bytes held for missing dependencies by every socket of this server (bounded by `maxHeldBytesTotal`). */
interface HeldTotal {
  bytes: number
}

/** How a socket takes part in live forwarding: `stock` never negotiated (relay). */
export type SyncLinkMode = 'stock' | 'relay' | 'backup'

/** The link mode asked for by the URL parameter `link` (absent: a stock client). */
function initialMode(value: string | null): SyncLinkMode {
  return value === 'backup' ? 'backup' : value === 'relay' ? 'relay' : 'stock'
}

/** Whether anything live goes from a socket in mode `from` to one in mode `to`. */
function forwards(from: SyncLinkMode, to: SyncLinkMode): boolean {
  return from !== 'backup' || to !== 'backup'
}

/** The link mode of a room member: other members (none today) count as relay. */
function modeOf(member: unknown): SyncLinkMode {
  return member instanceof SyncConnection ? member.mode : 'relay'
}

/** The committed state of a room at one moment: immutable, shared by every state query until the document changes. */
interface RoomState {
  changes: number
  /** Encoded state vector (for `stateAck`). */
  stateVector: Uint8Array
  /** The same as a map (for `stateDelta`); never mutated, so sockets may keep it as what they last sent. */
  sv: StateVector
  svDigest: number
  digest: number
}

const roomStates = new WeakMap<Room, RoomState>()

function roomState(room: Room): RoomState {
  let s = roomStates.get(room)
  if (!s || s.changes !== room.changes) {
    const stateVector = Y.encodeStateVector(room.doc)
    s = { changes: room.changes, stateVector, sv: Y.decodeStateVector(stateVector), svDigest: stateVectorDigest(stateVector), digest: deleteSetDigest(room.doc) }
    roomStates.set(room, s)
  }
  return s
}

/** One client socket on one document. */
class SyncConnection implements RoomMember {
  room: Room | null = null
  /** The socket closed and left its room (its awareness states are being removed). */
  left = false
  /** Peers this client last reported as direct / via the server (`linkMode` message). */
  reported = { direct: 0, relayed: 0 }
  /** Updates waiting for missing dependencies, in arrival order. */
  held: HeldUpdate[] = []
  private heldBytes = 0
  /** The highest durable query waiting for held updates (acks mean "everything before", so one is enough). */
  private ackWaiting: number | null = null
  /** The latest state query waiting for held updates (a client acts only on the answer to its latest query), so a client that keeps asking while it holds an update costs no memory. */
  private stateWaiting: StateQuery | null = null
  /** The state vector this socket's client last learned from a `stateDelta` (both sides track it; a new socket starts empty). */
  private svSent: StateVector = new Map()
  private deniedSent = false
  /** Bytes of the first sync sent to this client, allowed on top of `maxSendBufferBytes` until they drain. */
  private firstSyncBytes = 0
  /** The client has sent its first sync (step 2): later frames are capped at `maxUpdateBytes`. */
  private firstSyncReceived = false
  private ackToSend: number | null = null
  private readonly bucket
  private pendingTimer: NodeJS.Timeout | null = null

  constructor(
    private readonly ctx: ServerContext,
    readonly ws: WebSocket,
    readonly docId: string,
    readonly grant: Grant | null,
    /** The TCP socket under `ws`, corked by `batch` so a turn's frames leave in one write. */
    private readonly socket: Corkable,
    private readonly batch: TurnBatch,
    private readonly heldTotal: HeldTotal,
    private readonly storage: { full: boolean },
    /** Link mode (see the module doc); changed by `linkMode` messages. */
    public mode: SyncLinkMode = 'stock',
  ) {
    this.bucket = tokenBucket(ctx.config.maxSyncMessagesPerSecond)
  }

  send(data: Uint8Array): void {
    if (this.ws.readyState !== this.ws.OPEN) return
    // A client that stops reading must not make the server buffer without bound.
    // The first sync it asked for may be one big frame: that much more may wait.
    const buffered = this.ws.bufferedAmount
    if (buffered > this.ctx.config.maxSendBufferBytes + this.firstSyncBytes) {
      closeWith(this.ctx, ENDPOINT, this.ws, CloseCode.slowConsumer, 'client does not read what it asked for')
      return
    }
    if (buffered === 0) this.firstSyncBytes = 0
    this.batch.cork(this.socket)
    this.batch.sent(1, data.byteLength)
    this.ws.send(data)
  }

  onUpdate(update: Uint8Array, origin: unknown): void {
    if (!forwards(modeOf(origin), this.mode)) return
    const data = syncFrame(SYNC_UPDATE, update)
    this.ctx.metrics.updateBytes.inc({ kind: 'relayed' }, data.byteLength)
    this.send(data)
  }

  onAwareness(update: Uint8Array, origin: unknown): void {
    // A socket that closed takes its states with it: everyone hears that at once, backup-only
    // sockets too (a departed peer's WebRTC link only notices when ICE gives up, ~15 s later).
    const departure = origin instanceof SyncConnection && origin.left
    if (origin !== this && origin !== null && !departure && !forwards(modeOf(origin), this.mode)) return
    this.send(frame(MessageType.awareness, (enc) => encoding.writeVarUint8Array(enc, update)))
  }

  /** Awareness ids of the room this socket may see (everyone's, unless both sides are backup-only). */
  private visibleStates(room: Room): number[] {
    return [...room.awareness.getStates().keys()].filter((id) => forwards(modeOf(room.presence.ownerOf(id)), this.mode))
  }

  /** Greets the client once the room is loaded: our step 1 and the current awareness. */
  start(room: Room): void {
    this.room = room
    this.send(frame(MessageType.sync, (enc) => {
      encoding.writeVarUint(enc, SYNC_STEP1)
      encoding.writeVarUint8Array(enc, Y.encodeStateVector(room.doc))
    }))
    const states = this.visibleStates(room)
    if (states.length) this.onAwareness(encodeAwarenessUpdate(room.awareness, states), this)
  }

  /** Handles one frame; throws `ProtocolError` to close the socket. */
  handle(data: Uint8Array): void {
    const room = this.room!
    if (!this.bucket.take()) throw new ProtocolError(CloseCode.flood, 'message rate above limit')
    // Only a sync step 2 may be larger (the client's first sync): checked below.
    if (data.byteLength > this.ctx.config.maxUpdateBytes && data[0] !== MessageType.sync) throw new ProtocolError(CloseCode.tooBig, 'frame above --max-update-bytes')
    let decoder: decoding.Decoder
    let type: number
    try {
      decoder = decoding.createDecoder(data)
      type = decoding.readVarUint(decoder)
    } catch {
      throw new ProtocolError(CloseCode.badMessage, 'empty or undecodable frame')
    }
    const read = <T>(fn: () => T, what: string): T => {
      try {
        return fn()
      } catch {
        throw new ProtocolError(CloseCode.badMessage, `undecodable ${what}`)
      }
    }
    switch (type) {
      case MessageType.sync: {
        const subtype = read(() => decoding.readVarUint(decoder), 'sync subtype')
        // Only the client's first sync may use the large frame cap; everything else is small.
        const firstSync = subtype === SYNC_STEP2 && !this.firstSyncReceived
        if (subtype === SYNC_STEP2) this.firstSyncReceived = true
        if (!firstSync && data.byteLength > this.ctx.config.maxUpdateBytes) throw new ProtocolError(CloseCode.tooBig, 'frame above --max-update-bytes after the first sync')
        const payload = read(() => decoding.readVarUint8Array(decoder), 'sync payload')
        if (subtype === SYNC_STEP1) {
          if (payload.byteLength > this.ctx.config.maxStateVectorBytes) throw new ProtocolError(CloseCode.badMessage, 'state vector above --max-state-vector-bytes')
          try {
            Y.decodeStateVector(payload) // validates before encodeStateAsUpdate trusts it
          } catch {
            throw new ProtocolError(CloseCode.badMessage, 'undecodable state vector')
          }
          const reply = syncFrame(SYNC_STEP2, Y.encodeStateAsUpdate(room.doc, payload))
          this.firstSyncBytes = Math.max(this.firstSyncBytes, reply.byteLength)
          this.send(reply)
        } else if (subtype === SYNC_STEP2 || subtype === SYNC_UPDATE) {
          this.receiveUpdate(payload, subtype === SYNC_UPDATE)
        } else {
          throw new ProtocolError(CloseCode.badMessage, `unknown sync message ${subtype}`)
        }
        break
      }
      case MessageType.awareness: {
        const update = read(() => decoding.readVarUint8Array(decoder), 'awareness payload')
        this.receiveAwareness(update)
        break
      }
      case MessageType.auth:
        break
      case MessageType.queryAwareness: {
        const states = this.visibleStates(room)
        if (states.length) this.onAwareness(encodeAwarenessUpdate(room.awareness, states), this)
        break
      }
      case MessageType.linkMode: {
        const [mode, direct, relayed] = read(() => [decoding.readVarUint(decoder), decoding.readVarUint(decoder), decoding.readVarUint(decoder)], 'link mode')
        if (mode !== LinkMode.relay && mode !== LinkMode.backup) throw new ProtocolError(CloseCode.badMessage, `unknown link mode ${mode}`)
        const was = this.mode
        // A read-only link cannot join the mesh: it is always relayed.
        this.mode = mode === LinkMode.backup && this.grant?.mode !== 'r' ? 'backup' : 'relay'
        this.reported = { direct: Math.min(direct, 1000), relayed: Math.min(relayed, 1000) }
        // Now relayed: the states of backup-only sockets it was not told about.
        if (was === 'backup' && this.mode === 'relay') {
          const states = this.visibleStates(room)
          if (states.length) this.onAwareness(encodeAwarenessUpdate(room.awareness, states), this)
        }
        break
      }
      case MessageType.stateQuery: {
        const query = read(() => readStateQuery(decoder), 'state query')
        if (this.held.length > 0) this.stateWaiting = query
        else this.sendState(query)
        break
      }
      case MessageType.durableQuery: {
        const nonce = read(() => decoding.readVarUint(decoder), 'durable query nonce')
        if (this.held.length > 0) this.ackWaiting = Math.max(this.ackWaiting ?? 0, nonce)
        else void room.flushed().then(() => this.sendAck(nonce))
        break
      }
      default:
        throw new ProtocolError(CloseCode.badMessage, `unknown message type ${type}`)
    }
  }

  /**
   * Answers a state query: the state read now is committed once `flushed()`
   * resolves. A query with the client's state-vector digest gets the compact
   * answer: "same as yours", or what changed since the last one sent here
   * (worked out when sent, so both sides apply the changes in one order).
   */
  private sendState({ nonce, svDigest }: StateQuery): void {
    const room = this.room!
    const state = roomState(room)
    void room.flushed().then(() => {
      if (svDigest === null) return this.send(encodeStateAck(nonce, state.stateVector, state.digest))
      const same = svDigest === state.svDigest
      const changes = same ? [] : stateVectorChanges(this.svSent, state.sv)
      this.svSent = state.sv
      this.send(encodeStateDelta(nonce, same, changes, state.digest))
    })
  }

  /**
   * Acknowledges `nonce`. Acks mean "everything before", so the nonces that
   * one commit releases go out as a single ack of the highest.
   */
  private sendAck(nonce: number): void {
    if (this.ackToSend !== null) {
      this.ackToSend = Math.max(this.ackToSend, nonce)
      return
    }
    this.ackToSend = nonce
    queueMicrotask(() => {
      const n = this.ackToSend!
      this.ackToSend = null
      this.send(frame(MessageType.durableAck, (enc) => encoding.writeVarUint(enc, n)))
    })
  }

  /** `live`: an update message, not the client's sync step 2 (for `murmur_sync_redundant_uploads_total`). */
  private receiveUpdate(update: Uint8Array, live = false): void {
    if (this.grant?.mode === 'r') {
      if (!this.deniedSent) {
        this.deniedSent = true
        this.send(frame(MessageType.auth, (enc) => {
          encoding.writeVarUint(enc, 0) // y-protocols auth: permission denied
          encoding.writeVarString(enc, 'read-only access: changes are not accepted')
        }))
      }
      return
    }
    const room = this.room!
    let needs: UpdateNeeds
    try {
      needs = analyzeUpdate(update)
    } catch (err) {
      if (err instanceof MalformedUpdateError) throw new ProtocolError(CloseCode.badUpdate, err.message)
      throw err
    }
    const sv = stateVectorOf(room.doc)
    const status = statusOf(needs, sv)
    if (status === 'empty') {
      if (live) this.ctx.metrics.redundantUploads.inc({ mode: this.mode })
      return
    }
    // Quotas: refused before anything is stored; what is stored stays.
    if (room.storedBytes + this.heldBytes + update.byteLength > this.ctx.config.maxDocumentBytes) {
      throw new ProtocolError(CloseCode.documentTooLarge, `document would pass --max-document-bytes (${this.ctx.config.maxDocumentBytes})`)
    }
    // Memory follows structs, not bytes (an item takes ~100 bytes in memory, ~11 on the wire).
    if (structCount(room.doc) + needs.structs > this.ctx.config.maxDocumentStructs) {
      throw new ProtocolError(CloseCode.documentTooLarge, `document would pass --max-document-structs (${this.ctx.config.maxDocumentStructs})`)
    }
    if (this.storage.full) throw new ProtocolError(CloseCode.storageFull, 'server storage above --max-storage-bytes')
    if (status === 'missing') return this.hold({ update, needs, next: unmet(needs, sv) })
    this.integrate(update)
  }

  /** Keeps an update until what it needs arrives, within the per-socket and server-wide bounds. */
  private hold(entry: HeldUpdate): void {
    const { maxPendingUpdates, maxHeldBytesPerSocket, maxHeldBytesTotal } = this.ctx.config
    const bytes = entry.update.byteLength
    if (this.held.length >= maxPendingUpdates || this.heldBytes + bytes > maxHeldBytesPerSocket) {
      throw new ProtocolError(CloseCode.missingDependencies, 'too many updates waiting for missing dependencies')
    }
    if (this.heldTotal.bytes + bytes > maxHeldBytesTotal) throw new ProtocolError(CloseCode.missingDependencies, 'server holds too many updates waiting for dependencies')
    this.held.push(entry)
    this.heldBytes += bytes
    this.heldTotal.bytes += bytes
    this.ctx.metrics.heldBytes.set(this.heldTotal.bytes)
    this.armPendingTimer()
  }

  private integrate(update: Uint8Array): void {
    const room = this.room!
    if (!room.apply(update, this)) throw new ProtocolError(CloseCode.badUpdate, 'update failed to integrate')
    this.ctx.metrics.updateBytes.inc({ kind: 'uploaded' }, update.byteLength)
    // Anything this socket (or another) was waiting on may be ready now.
    retryHeld(room)
  }

  /**
   * Integrates the held updates whose needs `sv` meets (checked without
   * decoding them again); returns whether any was applied. A state vector
   * only grows, so each need is found met at most once.
   */
  applyReady(sv: ReadonlyMap<number, number>): boolean {
    const room = this.room!
    let applied = false
    for (let i = 0; i < this.held.length; i++) {
      const entry = this.held[i]
      entry.next = unmet(entry.needs, sv, entry.next)
      if (entry.next !== -1) continue
      this.held.splice(i--, 1)
      this.release(entry.update.byteLength)
      if (!room.apply(entry.update, this)) {
        closeWith(this.ctx, ENDPOINT, this.ws, CloseCode.badUpdate, 'held update failed to integrate')
        return applied
      }
      applied = true
    }
    if (this.held.length === 0) {
      if (this.pendingTimer) clearTimeout(this.pendingTimer)
      this.pendingTimer = null
      const nonce = this.ackWaiting
      const query = this.stateWaiting
      this.ackWaiting = this.stateWaiting = null
      if (nonce !== null) void room.flushed().then(() => this.sendAck(nonce))
      if (query) this.sendState(query)
    }
    return applied
  }

  private release(bytes: number): void {
    this.heldBytes -= bytes
    this.heldTotal.bytes -= bytes
    this.ctx.metrics.heldBytes.set(this.heldTotal.bytes)
  }

  private armPendingTimer(): void {
    if (this.pendingTimer) return
    this.pendingTimer = setTimeout(() => {
      this.pendingTimer = null
      if (this.held.length) closeWith(this.ctx, ENDPOINT, this.ws, CloseCode.missingDependencies, 'updates waited too long for missing dependencies')
    }, this.ctx.config.pendingTimeoutMs)
    this.pendingTimer.unref()
  }

  private receiveAwareness(update: Uint8Array): void {
    const room = this.room!
    const { maxAwarenessClients, maxAwarenessStateBytes, maxRoomAwarenessBytes } = this.ctx.config
    let accepted: AwarenessEntry[]
    try {
      const entries = parseAwarenessUpdate(update, maxAwarenessClients, maxAwarenessStateBytes)
      accepted = room.presence.claim(this, entries, maxAwarenessClients, maxRoomAwarenessBytes)
    } catch (err) {
      if (err instanceof AwarenessError) throw new ProtocolError(err.kind === 'tooMany' ? CloseCode.tooMany : CloseCode.badMessage, err.message)
      throw err
    }
    // Entries for ids another socket speaks for are dropped, not applied.
    if (accepted.length) applyAwarenessUpdate(room.awareness, encodeAwarenessEntries(accepted), this)
  }

  dispose(): void {
    if (this.pendingTimer) clearTimeout(this.pendingTimer)
    this.release(this.heldBytes)
    this.held = []
  }
}

/**
 * Applies every held update in `room` that has become ready, until none
 * does (one socket's update may be what another's was waiting for).
 */
function retryHeld(room: Room): void {
  let progressed = true
  while (progressed) {
    progressed = false
    let sv: Map<number, number> | null = null
    for (const m of room.members) {
      if (!(m instanceof SyncConnection) || m.held.length === 0) continue
      sv ??= stateVectorOf(room.doc)
      if (m.applyReady(sv)) {
        progressed = true
        sv = null
      }
    }
  }
}

/**
 * Creates the `/sync/<docId>` endpoint over the given rooms. Upgrades for an
 * invalid id are refused with 4404 after the handshake (so browsers see a
 * code, not a bare network error).
 */
export function createSync(ctx: ServerContext, rooms: Rooms, store: Store): Endpoint {
  const wss = new WebSocketServer({ noServer: true, maxPayload: ctx.config.maxFrameBytes, perMessageDeflate: false })
  const stopKeepAlive = keepAlive(wss, ctx.config.keepAliveMs)
  const connections = new Set<SyncConnection>()
  const heldTotal: HeldTotal = { bytes: 0 }
  // --max-storage-bytes: the store's size, read at most once a second.
  const storage = { full: false }
  const watchStorage = setInterval(() => {
    if (ctx.config.maxStorageBytes > 0) {
      store.usedBytes().then(
        (used) => (storage.full = used > ctx.config.maxStorageBytes),
        () => {},
      )
    }
  }, 1000)
  watchStorage.unref()
  const perAddress = addressBudgets(ctx.config.syncBytesPerSecondPerIp, 4 * ctx.config.maxUpdateBytes)
  // /metrics: sockets by link mode and the peers their clients report, read when scraped.
  ctx.metrics.onCollect(() => {
    const modes = { stock: 0, relay: 0, backup: 0 }
    const peers = { direct: 0, relayed: 0 }
    for (const c of connections) {
      modes[c.mode]++
      peers.direct += c.reported.direct
      peers.relayed += c.reported.relayed
    }
    for (const [mode, n] of Object.entries(modes)) ctx.metrics.syncClients.set({ mode }, n)
    for (const [via, n] of Object.entries(peers)) ctx.metrics.reportedPeers.set({ via }, n)
  })
  const batch = turnBatch({
    messagesIn: ctx.metrics.messages.labels(ENDPOINT, 'in'),
    messagesOut: ctx.metrics.messages.labels(ENDPOINT, 'out'),
    bytesIn: ctx.metrics.bytes.labels(ENDPOINT, 'in'),
    bytesOut: ctx.metrics.bytes.labels(ENDPOINT, 'out'),
  })

  function onConnection(ws: WebSocket, socket: Duplex, docId: string, grant: Grant | null, ip: string, mode: SyncLinkMode): void {
    ctx.metrics.connections.inc({ endpoint: ENDPOINT })
    const conn = new SyncConnection(ctx, ws, docId, grant, socket, batch, heldTotal, storage, mode)
    connections.add(conn)
    // Bytes, not only messages, are budgeted, per socket and per address: a
    // frame is handled only while both budgets are out of debt; meanwhile the
    // socket is not read (nothing is dropped; TCP pushes back on the sender).
    const budget = byteBudget(ctx.config.syncBytesPerSecond, ctx.config.maxUpdateBytes)
    const addressBudget = perAddress.acquire(ip)
    const inbox: Uint8Array[] = []
    let resumeTimer: NodeJS.Timeout | null = null
    // Per event-loop turn a socket's frames are handled up to TURN_BYTES; then it
    // yields until the next turn, so other sockets' frames run in between.
    let turnBytes = 0
    let turnScheduled = false
    let awaitingRecovery = false
    const pump = () => {
      while (inbox.length && !resumeTimer && !awaitingRecovery && ws.readyState === ws.OPEN) {
        if (ctx.loadGuard?.overloaded) {
          // Server-wide overload (load-guard.ts): read nothing more until it recovers.
          ws.pause()
          awaitingRecovery = true
          ctx.loadGuard.whenRecovered(() => {
            awaitingRecovery = false
            pump()
          })
          return
        }
        if (turnBytes >= TURN_BYTES) {
          ws.pause()
          return
        }
        const wait = Math.max(budget.delay(), addressBudget.delay())
        if (wait > 0) {
          ctx.metrics.throttled.inc({ endpoint: ENDPOINT })
          ws.pause()
          resumeTimer = setTimeout(() => {
            resumeTimer = null
            pump()
          }, wait)
          return
        }
        const data = inbox.shift()!
        budget.spend(data.byteLength)
        addressBudget.spend(data.byteLength)
        turnBytes += data.byteLength
        if (!turnScheduled) {
          turnScheduled = true
          setImmediate(() => {
            turnScheduled = false
            turnBytes = 0
            pump()
          })
        }
        deliver(data)
      }
      if (ws.isPaused && ws.readyState === ws.OPEN) ws.resume()
    }
    // Frames that arrive while the document loads (a client sends step 1 at once), capped in bytes.
    const early: Uint8Array[] = []
    let earlyBytes = 0
    let closed = false

    const deliver = (data: Uint8Array) => {
      if (conn.room) process(data)
      else if (early.length < 64 && (earlyBytes += data.byteLength) <= ctx.config.maxFrameBytes) early.push(data)
      else closeWith(ctx, ENDPOINT, ws, CloseCode.flood, 'too much data before the document loaded')
    }

    const process = (data: Uint8Array) => {
      try {
        conn.handle(data)
      } catch (err) {
        if (err instanceof ProtocolError) {
          closeWith(ctx, ENDPOINT, ws, err.code, err.message)
          if (err.code === CloseCode.badUpdate && conn.room?.broken) resetRoom(conn.room)
        } else {
          ctx.log.error({ err }, 'unexpected error handling sync message')
          closeWith(ctx, ENDPOINT, ws, CloseCode.badMessage, 'internal error')
        }
      }
    }

    ws.on('message', (raw: RawData, isBinary: boolean) => {
      const data = toBytes(raw)
      batch.received(data.byteLength)
      if (!isBinary) return closeWith(ctx, ENDPOINT, ws, CloseCode.badMessage, 'text frame on a binary protocol')
      if (ws.readyState !== ws.OPEN) return
      inbox.push(data)
      pump()
    })
    ws.on('error', (err: Error & { code?: string }) => {
      // ws has already closed the socket itself (bad framing, oversized frame): count it like our own closes.
      const code = wsErrorCloseCode(err)
      ctx.metrics.closes.inc({ endpoint: ENDPOINT, code: String(code) })
      ctx.log.warn({ endpoint: ENDPOINT, code, detail: err.message }, 'closing socket')
    })
    ws.on('close', () => {
      closed = true
      if (resumeTimer) clearTimeout(resumeTimer)
      perAddress.release(ip)
      connections.delete(conn)
      ctx.metrics.connections.dec({ endpoint: ENDPOINT })
      conn.dispose()
      conn.left = true
      if (conn.room) rooms.leave(conn.room, conn)
    })

    rooms.open(docId, conn).then(
      (room) => {
        if (closed) return rooms.leave(room, conn)
        conn.start(room)
        for (const data of early.splice(0)) process(data)
        if (isHistoryRoom(docId)) pruneHistoryDoc(room.doc)
      },
      (err) => {
        if (err instanceof RoomsFullError) return closeWith(ctx, ENDPOINT, ws, CloseCode.busy, err.message)
        ctx.metrics.storageErrors.inc()
        ctx.log.error({ doc: docId, err: (err as Error).message }, 'failed to load document')
        closeWith(ctx, ENDPOINT, ws, CloseCode.storageError, 'could not load document')
      },
    )
  }

  function resetRoom(room: Room): void {
    for (const m of [...room.members]) {
      if (m instanceof SyncConnection && m.ws.readyState === m.ws.OPEN) {
        ctx.metrics.closes.inc({ endpoint: ENDPOINT, code: '1012' })
        m.ws.close(1012, 'room reset')
      }
    }
    void rooms.reset(room)
  }

  return {
    handleUpgrade(req: IncomingMessage, socket: Duplex, head: Buffer, url: URL, ip: string) {
      let docId = ''
      try {
        docId = decodeURIComponent(url.pathname.slice('/sync/'.length))
      } catch {
        // malformed percent-encoding: not a valid id either
      }
      let refusal: [number, string] | null = null
      let grant: Grant | null = null
      // A document's history companion (`<docId>.history`) is a document of its own, granted by the document's token.
      const tokenDoc = roomDocId(docId)
      if (tokenDoc === null) refusal = [CloseCode.notFound, 'invalid document id']
      else if (ctx.config.authSecret) {
        try {
          grant = verifyToken(ctx.config.authSecret, url.searchParams.get('token'), tokenDoc)
        } catch (err) {
          refusal = [CloseCode.unauthorized, err instanceof AuthError ? err.message : 'bad token']
        }
      }
      wss.handleUpgrade(req, socket, head, (ws) => {
        if (refusal) return closeWith(ctx, ENDPOINT, ws, refusal[0], refusal[1])
        closeAtExpiry(ctx, ENDPOINT, ws, grant)
        const mode = initialMode(url.searchParams.get('link'))
        onConnection(ws, socket, docId, grant, ip, mode === 'backup' && grant?.mode === 'r' ? 'relay' : mode)
      })
    },
    async close() {
      stopKeepAlive()
      clearInterval(watchStorage)
      for (const c of connections) c.ws.close(CloseCode.goingAway, 'server shutting down')
      await rooms.closeAll()
      wss.close()
    },
  }
}

function toBytes(raw: RawData): Uint8Array {
  if (Array.isArray(raw)) return new Uint8Array(Buffer.concat(raw))
  if (raw instanceof ArrayBuffer) return new Uint8Array(raw)
  return new Uint8Array(raw.buffer, raw.byteOffset, raw.byteLength)
}
