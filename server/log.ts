/**
 * Private documents at `/log/<docId>`: an append-only log of encrypted
 * entries (protocol in `src/protocol/log.ts`). The server never decodes an
 * entry: it checks the write capability (SHA-256 of the proof, kept from the
 * first write), stores, acknowledges after commit, and relays entries and
 * encrypted awareness to the document's other sockets. Nothing is logged
 * but ids, sizes and codes.
 *
 * Close codes (see `CloseCode`):
 * - 4400 badMessage: undecodable frame, a proof that is not 32 bytes, an
 *   empty entry, an awareness blob above `maxLogAwarenessBytes`, a snapshot
 *   past the last seq
 * - 4401 unauthorized: missing/invalid token with `--auth-secret`, or a write
 *   with a read-only token
 * - 4403 forbidden: a write whose proof does not match the document's (nothing stored)
 * - 4404 notFound: path is not `/log/<valid docId>` (or `/log/<valid docId>.history`,
 *   the document's version history, a log of its own granted by the document's token)
 * - 4413 documentTooLarge: an append that would take the log past
 *   `maxDocumentBytes`, or a snapshot above it (nothing stored)
 * - 4507 storageFull: a write while the database is above `maxStorageBytes`
 * - 4529 flood: more than `maxSyncMessagesPerSecond`
 * - 4500 storageError: storage failed
 * - 1009: a frame above `maxFrameBytes` (sent by ws)
 * - 1013 slowConsumer: more than `maxSendBufferBytes` waiting to be sent
 * Bytes are budgeted as on `/sync` (`syncBytesPerSecond` per socket,
 * `syncBytesPerSecondPerIp` per address), and a socket is not read while one
 * of its frames waits for its budget, its commit or the end of a server-wide
 * overload (`load-guard.ts`).
 */
import type { IncomingMessage } from 'node:http'
import type { Duplex } from 'node:stream'
import { createHash } from 'node:crypto'
import { WebSocketServer, type WebSocket, type RawData } from 'ws'
import { roomDocId } from '../src/protocol/ids.ts'
import { CloseCode } from '../src/protocol/messages.ts'
import { decodeClientFrame, encodeServerFrame, LogFrameError, LogMessage, WRITE_PROOF_BYTES, type ClientLogFrame, type LogEntry } from '../src/protocol/log.ts'
import { AuthError, verifyToken, type Grant } from './auth.ts'
import type { ServerContext } from './context.ts'
import { addressBudgets, byteBudget, closeAtExpiry, closeWith, keepAlive, tokenBucket, wsErrorCloseCode, type Endpoint } from './endpoint.ts'
import { LogStoreError, type LogStore } from './store/log-store.ts'

const ENDPOINT = 'log'
/** Largest catch-up frame: entries are batched up to this many bytes (a bigger single entry goes alone). */
const CATCH_UP_FRAME_BYTES = 1024 * 1024

class ProtocolError extends Error {
  constructor(
    readonly code: number,
    message: string,
  ) {
    super(message)
  }
}

interface LogConn {
  ws: WebSocket
  docId: string
  /** Relays held back until this socket's catch-up is sent (null: live). */
  held: Uint8Array[] | null
  subscribed: boolean
}

/**
 * The `/log/<docId>` endpoint over `store`. `usedBytes` is the database's
 * size for `--max-storage-bytes` (read at most once a second).
 */
export function createLog(ctx: ServerContext, store: LogStore, usedBytes?: () => Promise<number>): Endpoint {
  const { config } = ctx
  const storage = { full: false }
  const watchStorage = setInterval(() => {
    if (config.maxStorageBytes > 0 && usedBytes) {
      usedBytes().then(
        (used) => (storage.full = used > config.maxStorageBytes),
        () => {},
      )
    }
  }, 1000)
  watchStorage.unref()
  const wss = new WebSocketServer({ noServer: true, maxPayload: config.maxFrameBytes, perMessageDeflate: false })
  const stopKeepAlive = keepAlive(wss, config.keepAliveMs)
  const rooms = new Map<string, Set<LogConn>>()
  /** Stored bytes of each document with sockets, read once from storage, then kept up to date (for `--max-document-bytes`). */
  const docBytes = new Map<string, Promise<number>>()
  const perAddress = addressBudgets(config.syncBytesPerSecondPerIp, 4 * config.maxUpdateBytes)

  const send = (c: LogConn, frame: Uint8Array) => {
    if (c.ws.readyState !== c.ws.OPEN) return
    if (c.ws.bufferedAmount > config.maxSendBufferBytes) return closeWith(ctx, ENDPOINT, c.ws, CloseCode.slowConsumer, 'not reading')
    c.ws.send(frame)
  }
  /** Sends `frame` to every other subscribed socket of the document (held back during their catch-up). */
  const relay = (from: LogConn, frame: Uint8Array) => {
    for (const c of rooms.get(from.docId) ?? []) {
      if (c === from || !c.subscribed) continue
      if (c.held) c.held.push(frame)
      else send(c, frame)
    }
  }
  const proofHash = (proof: Uint8Array) => {
    if (proof.byteLength !== WRITE_PROOF_BYTES) throw new ProtocolError(CloseCode.badMessage, 'write proof must be 32 bytes')
    return new Uint8Array(createHash('sha256').update(proof).digest())
  }

  async function catchUp(c: LogConn, cursor: number): Promise<void> {
    c.subscribed = true
    c.held = []
    const read = await store.read(c.docId, cursor)
    let batch: LogEntry[] = []
    let bytes = 0
    const flushBatch = () => {
      if (batch.length) send(c, encodeServerFrame({ type: LogMessage.entries, entries: batch }))
      batch = []
      bytes = 0
    }
    for (const e of read.entries) {
      if (bytes + e.data.byteLength > CATCH_UP_FRAME_BYTES) flushBatch()
      batch.push(e)
      bytes += e.data.byteLength
    }
    flushBatch()
    send(c, encodeServerFrame({ type: LogMessage.caughtUp, lastSeq: read.lastSeq, count: read.sinceSnapshot }))
    // Relays of entries committed after the read; ones the read already carried are dropped by seq on the client.
    const held = c.held
    c.held = null
    for (const f of held) send(c, f)
  }

  async function handle(c: LogConn, f: ClientLogFrame, grant: Grant | null): Promise<void> {
    if (f.type === LogMessage.subscribe) return catchUp(c, f.cursor)
    if (f.type === LogMessage.awareness) {
      if (f.data.byteLength > config.maxLogAwarenessBytes) throw new ProtocolError(CloseCode.badMessage, 'awareness blob too large')
      return relay(c, encodeServerFrame(f))
    }
    if (grant && grant.mode !== 'rw') throw new ProtocolError(CloseCode.unauthorized, 'read-only token cannot write')
    if (storage.full) throw new ProtocolError(CloseCode.storageFull, 'server storage above --max-storage-bytes')
    const hash = proofHash(f.proof)
    if (f.data.byteLength === 0) throw new ProtocolError(CloseCode.badMessage, 'empty entry')
    const stored = await (docBytes.get(c.docId) ?? docBytes.set(c.docId, store.bytes(c.docId)).get(c.docId)!)
    if (f.type === LogMessage.append && stored + f.data.byteLength > config.maxDocumentBytes) {
      throw new ProtocolError(CloseCode.documentTooLarge, `log would pass --max-document-bytes (${config.maxDocumentBytes})`)
    }
    if (f.type === LogMessage.append) {
      const seq = await store.append(c.docId, hash, [f.data])
      const n = f.data.byteLength
      docBytes.set(c.docId, (docBytes.get(c.docId) ?? store.bytes(c.docId)).then((b) => b + n))
      send(c, encodeServerFrame({ type: LogMessage.appended, nonce: f.nonce, seq }))
      relay(c, encodeServerFrame({ type: LogMessage.entries, entries: [{ seq, snapshot: false, data: f.data }] }))
      return
    }
    if (f.data.byteLength > config.maxDocumentBytes) throw new ProtocolError(CloseCode.documentTooLarge, 'snapshot above --max-document-bytes')
    const applied = await store.replace(c.docId, hash, f.upToSeq, f.data)
    if (applied) docBytes.set(c.docId, store.bytes(c.docId))
    ctx.log.info({ docId: c.docId, upToSeq: f.upToSeq, bytes: f.data.byteLength, applied }, 'log: snapshot')
    send(c, encodeServerFrame({ type: LogMessage.snapshotDone, nonce: f.nonce, upToSeq: f.upToSeq, applied }))
    if (applied) relay(c, encodeServerFrame({ type: LogMessage.compacted, upToSeq: f.upToSeq }))
  }

  function onConnection(ws: WebSocket, docId: string, grant: Grant | null, ip: string): void {
    const c: LogConn = { ws, docId, held: null, subscribed: false }
    let room = rooms.get(docId)
    if (!room) rooms.set(docId, (room = new Set()))
    room.add(c)
    const flood = tokenBucket(config.maxSyncMessagesPerSecond)
    // As on /sync: bytes are budgeted per socket and per address, and only
    // the frame being handled and what one read brought are held: while a
    // frame waits for its budget or its commit, the socket is not read.
    const budget = byteBudget(config.syncBytesPerSecond, config.maxUpdateBytes)
    const addressBudget = perAddress.acquire(ip)
    let queued = 0
    // Frames of one socket are handled one after another, in order.
    let chain = Promise.resolve()
    ws.on('error', (err) => closeWith(ctx, ENDPOINT, ws, wsErrorCloseCode(err), err.message))
    ws.on('message', (raw: RawData, isBinary: boolean) => {
      if (!flood.take()) return closeWith(ctx, ENDPOINT, ws, CloseCode.flood, 'message rate')
      const bytes = toBytes(raw)
      queued++
      ws.pause()
      chain = chain.then(async () => {
        // Server-wide overload (load-guard.ts): read nothing more until it recovers.
        const guard = ctx.loadGuard
        if (guard?.overloaded) await new Promise<void>((r) => guard.whenRecovered(r))
        const wait = Math.max(budget.delay(), addressBudget.delay())
        if (wait > 0) await new Promise((r) => setTimeout(r, wait))
        budget.spend(bytes.byteLength)
        addressBudget.spend(bytes.byteLength)
        if (ws.readyState !== ws.OPEN) return
        try {
          if (!isBinary) throw new ProtocolError(CloseCode.badMessage, 'text frame')
          await handle(c, decodeClientFrame(bytes), grant)
        } catch (err) {
          if (err instanceof ProtocolError) closeWith(ctx, ENDPOINT, ws, err.code, err.message)
          else if (err instanceof LogFrameError) closeWith(ctx, ENDPOINT, ws, CloseCode.badMessage, err.message)
          else if (err instanceof LogStoreError && err.code === 'forbidden') closeWith(ctx, ENDPOINT, ws, CloseCode.forbidden, 'wrong write capability')
          else if (err instanceof LogStoreError && err.code === 'invalid-argument') closeWith(ctx, ENDPOINT, ws, CloseCode.badMessage, err.message)
          else {
            ctx.log.error({ docId, err: err instanceof Error ? err.message : String(err) }, 'log: storage failed')
            closeWith(ctx, ENDPOINT, ws, CloseCode.storageError, 'storage failed')
          }
        } finally {
          if (--queued === 0 && ws.readyState === ws.OPEN) ws.resume()
        }
      })
    })
    ws.on('close', () => {
      perAddress.release(ip)
      room.delete(c)
      if (room.size === 0) {
        rooms.delete(docId)
        docBytes.delete(docId)
      }
    })
  }

  return {
    handleUpgrade(req: IncomingMessage, socket: Duplex, head: Buffer, url: URL, ip: string) {
      let docId = ''
      try {
        docId = decodeURIComponent(url.pathname.slice('/log/'.length))
      } catch {
        // not a valid id either
      }
      let refusal: [number, string] | null = null
      let grant: Grant | null = null
      const tokenDoc = roomDocId(docId)
      if (tokenDoc === null) refusal = [CloseCode.notFound, 'invalid document id']
      else if (config.authSecret) {
        try {
          grant = verifyToken(config.authSecret, url.searchParams.get('token'), tokenDoc)
        } catch (err) {
          refusal = [CloseCode.unauthorized, err instanceof AuthError ? err.message : 'bad token']
        }
      }
      wss.handleUpgrade(req, socket, head, (ws) => {
        if (refusal) return closeWith(ctx, ENDPOINT, ws, refusal[0], refusal[1])
        closeAtExpiry(ctx, ENDPOINT, ws, grant)
        onConnection(ws, docId, grant, ip)
      })
    },
    async close() {
      stopKeepAlive()
      clearInterval(watchStorage)
      for (const room of rooms.values()) for (const c of room) c.ws.close(CloseCode.goingAway, 'server shutting down')
      wss.close()
    },
  }
}

function toBytes(raw: RawData): Uint8Array {
  if (Array.isArray(raw)) return new Uint8Array(Buffer.concat(raw))
  if (raw instanceof ArrayBuffer) return new Uint8Array(raw)
  return new Uint8Array(raw.buffer, raw.byteOffset, raw.byteLength)
}
