/**
 * Backup sync at `/sync/<docId>`: the y-websocket protocol (sync step 1/2 and
 * update, awareness, query-awareness) plus murmur's durability extension
 * (`durableQuery` → `durableAck` once everything received before it is
 * committed). Stock `y-websocket` clients work unchanged; the server also
 * relays updates and awareness between the clients of one document. What
 * one event-loop turn sends to a socket (relays, acks) leaves in one write
 * (`turn-batch.ts`).
 *
 * Every frame is untrusted. Close codes (see `CloseCode`):
 * - 4400 badMessage: undecodable frame, unknown message type, bad awareness
 *   JSON or an awareness state above `maxAwarenessStateBytes`
 * - 4401 unauthorized: missing/invalid token when `--auth-secret` is set
 * - 4404 notFound: path is not `/sync/<valid docId>`
 * - 4509 missingDependencies: more than `maxPendingUpdates` updates (or
 *   `maxFrameBytes` bytes) waiting for dependencies, or one waited longer
 *   than `pendingTimeoutMs`
 * - 4429 tooMany: awareness for more than `maxAwarenessClients` client ids
 * - 4422 badUpdate: a malformed Yjs update (the document is left unchanged)
 * - 4529 flood: more than `maxSyncMessagesPerSecond`
 * - 1009: frame above `maxFrameBytes` (sent by ws)
 * - 1013 slowConsumer: more than twice `maxFrameBytes` waiting to be sent to a
 *   socket that does not read (reconnect later)
 * - 1012: the room was reset after another client's update failed to integrate; reconnect
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
import { isValidDocId } from '../src/protocol/ids.ts'
import { CloseCode, MessageType } from '../src/protocol/messages.ts'
import { AuthError, verifyToken, type Grant } from './auth.ts'
import type { ServerContext } from './context.ts'
import { closeAtExpiry, closeWith, keepAlive, tokenBucket, wsErrorCloseCode, type Endpoint } from './endpoint.ts'
import { turnBatch, type Corkable, type TurnBatch } from './turn-batch.ts'
import { checkUpdate, MalformedUpdateError, stateVectorOf } from './updates.ts'
import type { Room, RoomMember, Rooms } from './rooms.ts'

const SYNC_STEP1 = 0
const SYNC_STEP2 = 1
const SYNC_UPDATE = 2
const ENDPOINT = 'sync'

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

/** One client socket on one document. */
class SyncConnection implements RoomMember {
  room: Room | null = null
  readonly awarenessClients = new Set<number>()
  private pending: Uint8Array[] = []
  private pendingBytes = 0
  private ackWaiting: number[] = []
  private deniedSent = false
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
  ) {
    this.bucket = tokenBucket(ctx.config.maxSyncMessagesPerSecond)
  }

  send(data: Uint8Array): void {
    if (this.ws.readyState !== this.ws.OPEN) return
    // A client that stops reading must not make the server buffer without bound.
    if (this.ws.bufferedAmount > 2 * this.ctx.config.maxFrameBytes) {
      closeWith(this.ctx, ENDPOINT, this.ws, CloseCode.slowConsumer, 'client does not read what it asked for')
      return
    }
    this.batch.cork(this.socket)
    this.batch.sent(1, data.byteLength)
    this.ws.send(data)
  }

  onUpdate(update: Uint8Array): void {
    this.send(syncFrame(SYNC_UPDATE, update))
  }

  onAwareness(update: Uint8Array): void {
    this.send(frame(MessageType.awareness, (enc) => encoding.writeVarUint8Array(enc, update)))
  }

  /** Greets the client once the room is loaded: our step 1 and the current awareness. */
  start(room: Room): void {
    this.room = room
    this.send(frame(MessageType.sync, (enc) => {
      encoding.writeVarUint(enc, SYNC_STEP1)
      encoding.writeVarUint8Array(enc, Y.encodeStateVector(room.doc))
    }))
    const states = [...room.awareness.getStates().keys()]
    if (states.length) this.onAwareness(encodeAwarenessUpdate(room.awareness, states))
  }

  /** Handles one frame; throws `ProtocolError` to close the socket. */
  handle(data: Uint8Array): void {
    const room = this.room!
    if (!this.bucket.take()) throw new ProtocolError(CloseCode.flood, 'message rate above limit')
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
        const payload = read(() => decoding.readVarUint8Array(decoder), 'sync payload')
        if (subtype === SYNC_STEP1) {
          try {
            Y.decodeStateVector(payload) // validates before encodeStateAsUpdate trusts it
          } catch {
            throw new ProtocolError(CloseCode.badMessage, 'undecodable state vector')
          }
          this.send(syncFrame(SYNC_STEP2, Y.encodeStateAsUpdate(room.doc, payload)))
        } else if (subtype === SYNC_STEP2 || subtype === SYNC_UPDATE) {
          this.receiveUpdate(payload)
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
        const states = [...room.awareness.getStates().keys()]
        if (states.length) this.onAwareness(encodeAwarenessUpdate(room.awareness, states))
        break
      }
      case MessageType.durableQuery: {
        const nonce = read(() => decoding.readVarUint(decoder), 'durable query nonce')
        if (this.pending.length > 0) this.ackWaiting.push(nonce)
        else void room.flushed().then(() => this.sendAck(nonce))
        break
      }
      default:
        throw new ProtocolError(CloseCode.badMessage, `unknown message type ${type}`)
    }
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

  private receiveUpdate(update: Uint8Array): void {
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
    let status: ReturnType<typeof checkUpdate>
    try {
      status = checkUpdate(update, stateVectorOf(room.doc))
    } catch (err) {
      if (err instanceof MalformedUpdateError) throw new ProtocolError(CloseCode.badUpdate, err.message)
      throw err
    }
    if (status === 'missing') {
      this.pending.push(update)
      this.pendingBytes += update.byteLength
      if (this.pending.length > this.ctx.config.maxPendingUpdates || this.pendingBytes > this.ctx.config.maxFrameBytes) {
        throw new ProtocolError(CloseCode.missingDependencies, 'too many updates waiting for missing dependencies')
      }
      this.armPendingTimer()
      return
    }
    if (status === 'ready') this.integrate(update)
  }

  private integrate(update: Uint8Array): void {
    const room = this.room!
    if (!room.apply(update, this)) throw new ProtocolError(CloseCode.badUpdate, 'update failed to integrate')
    // Anything this socket (or another) was waiting on may be ready now.
    for (const m of room.members) if (m instanceof SyncConnection && m.pending.length) m.retryPending()
  }

  /** Integrates every held update whose dependencies have arrived. */
  retryPending(): void {
    const room = this.room!
    let progressed = true
    while (progressed && this.pending.length) {
      progressed = false
      for (let i = 0; i < this.pending.length; i++) {
        const status = checkUpdate(this.pending[i], stateVectorOf(room.doc))
        if (status === 'missing') continue
        const [update] = this.pending.splice(i, 1)
        this.pendingBytes -= update.byteLength
        if (status === 'ready' && !room.apply(update, this)) {
          closeWith(this.ctx, ENDPOINT, this.ws, CloseCode.badUpdate, 'held update failed to integrate')
          return
        }
        progressed = true
        break
      }
    }
    if (this.pending.length === 0) {
      if (this.pendingTimer) clearTimeout(this.pendingTimer)
      this.pendingTimer = null
      const nonces = this.ackWaiting
      this.ackWaiting = []
      if (nonces.length) void room.flushed().then(() => nonces.forEach((n) => this.sendAck(n)))
    }
  }

  private armPendingTimer(): void {
    if (this.pendingTimer) return
    this.pendingTimer = setTimeout(() => {
      this.pendingTimer = null
      if (this.pending.length) closeWith(this.ctx, ENDPOINT, this.ws, CloseCode.missingDependencies, 'updates waited too long for missing dependencies')
    }, this.ctx.config.pendingTimeoutMs)
    this.pendingTimer.unref()
  }

  private receiveAwareness(update: Uint8Array): void {
    const room = this.room!
    const { maxAwarenessClients, maxAwarenessStateBytes } = this.ctx.config
    // Learn which awareness clients this socket speaks for (removed when it
    // closes), and bound what one socket can make the room hold.
    let clients: number[]
    try {
      const dec = decoding.createDecoder(update)
      const n = decoding.readVarUint(dec)
      clients = []
      for (let i = 0; i < n && i <= maxAwarenessClients; i++) {
        clients.push(decoding.readVarUint(dec))
        decoding.readVarUint(dec)
        const state = decoding.readVarString(dec)
        if (state.length > maxAwarenessStateBytes) throw new ProtocolError(CloseCode.badMessage, 'awareness state too large')
        JSON.parse(state)
      }
    } catch (err) {
      if (err instanceof ProtocolError) throw err
      throw new ProtocolError(CloseCode.badMessage, 'undecodable awareness update')
    }
    for (const c of clients) this.awarenessClients.add(c)
    if (this.awarenessClients.size > maxAwarenessClients) throw new ProtocolError(CloseCode.tooMany, 'awareness for too many clients')
    applyAwarenessUpdate(room.awareness, update, this)
  }

  dispose(): void {
    if (this.pendingTimer) clearTimeout(this.pendingTimer)
    this.pending = []
    this.pendingBytes = 0
  }
}

/**
 * Creates the `/sync/<docId>` endpoint over the given rooms. Upgrades for an
 * invalid id are refused with 4404 after the handshake (so browsers see a
 * code, not a bare network error).
 */
export function createSync(ctx: ServerContext, rooms: Rooms): Endpoint {
  const wss = new WebSocketServer({ noServer: true, maxPayload: ctx.config.maxFrameBytes, perMessageDeflate: false })
  const stopKeepAlive = keepAlive(wss, ctx.config.keepAliveMs)
  const connections = new Set<SyncConnection>()
  const batch = turnBatch({
    messagesIn: ctx.metrics.messages.labels(ENDPOINT, 'in'),
    messagesOut: ctx.metrics.messages.labels(ENDPOINT, 'out'),
    bytesIn: ctx.metrics.bytes.labels(ENDPOINT, 'in'),
    bytesOut: ctx.metrics.bytes.labels(ENDPOINT, 'out'),
  })

  function onConnection(ws: WebSocket, socket: Duplex, docId: string, grant: Grant | null): void {
    ctx.metrics.connections.inc({ endpoint: ENDPOINT })
    const conn = new SyncConnection(ctx, ws, docId, grant, socket, batch)
    connections.add(conn)
    // Frames that arrive while the document loads (a client sends step 1 at once), capped in bytes.
    const early: Uint8Array[] = []
    let earlyBytes = 0
    let closed = false

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
      if (conn.room) process(data)
      else if (early.length < 64 && (earlyBytes += data.byteLength) <= ctx.config.maxFrameBytes) early.push(data)
      else closeWith(ctx, ENDPOINT, ws, CloseCode.flood, 'too much data before the document loaded')
    })
    ws.on('error', (err: Error & { code?: string }) => {
      // ws has already closed the socket itself (bad framing, oversized frame): count it like our own closes.
      const code = wsErrorCloseCode(err)
      ctx.metrics.closes.inc({ endpoint: ENDPOINT, code: String(code) })
      ctx.log.warn({ endpoint: ENDPOINT, code, detail: err.message }, 'closing socket')
    })
    ws.on('close', () => {
      closed = true
      connections.delete(conn)
      ctx.metrics.connections.dec({ endpoint: ENDPOINT })
      conn.dispose()
      if (conn.room) rooms.leave(conn.room, conn, conn.awarenessClients)
    })

    rooms.open(docId, conn).then(
      (room) => {
        if (closed) return rooms.leave(room, conn, [])
        conn.start(room)
        for (const data of early.splice(0)) process(data)
      },
      (err) => {
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
    handleUpgrade(req: IncomingMessage, socket: Duplex, head: Buffer, url: URL) {
      let docId = ''
      try {
        docId = decodeURIComponent(url.pathname.slice('/sync/'.length))
      } catch {
        // malformed percent-encoding: not a valid id either
      }
      let refusal: [number, string] | null = null
      let grant: Grant | null = null
      if (!isValidDocId(docId)) refusal = [CloseCode.notFound, 'invalid document id']
      else if (ctx.config.authSecret) {
        try {
          grant = verifyToken(ctx.config.authSecret, url.searchParams.get('token'), docId)
        } catch (err) {
          refusal = [CloseCode.unauthorized, err instanceof AuthError ? err.message : 'bad token']
        }
      }
      wss.handleUpgrade(req, socket, head, (ws) => {
        if (refusal) return closeWith(ctx, ENDPOINT, ws, refusal[0], refusal[1])
        closeAtExpiry(ctx, ENDPOINT, ws, grant)
        onConnection(ws, socket, docId, grant)
      })
    },
    async close() {
      stopKeepAlive()
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
