/**
 * Private documents at `/log/<docId>`: an append-only log of encrypted
 * entries (protocol in `src/protocol/log.ts`). The server never decodes an
 * entry: it checks the write capability (SHA-256 of the proof, kept from the
 * first write), stores, acknowledges after commit, and relays entries and
 * encrypted awareness to the document's other sockets — only where the
 * sender or the receiver is in relay mode (the hybrid data path, as on
 * `/sync`; see docs/protocol.md). It keeps each open document's recent
 * entries' coverage tags in memory to answer `stateQuery`. With `--redis`,
 * appends, compactions and awareness reach the document's sockets on other
 * instances (`fanout/`). Nothing is logged but ids, sizes and codes.
 *
 * Close codes (see `CloseCode`):
 * - 4400 badMessage: undecodable frame, a proof that is not 32 bytes, an
 *   empty entry, an awareness blob above `maxLogAwarenessBytes`, a snapshot
 *   past the last seq, a tag above 32 bytes, an unknown link mode
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
 * Worst valid costs: a `stateQuery` filters at most 4,096 kept tags (≤ 32
 * bytes each, so ≤ 128 KiB per open document) and answers with at most
 * 1,024; a `fetch` or `subscribe` reads at most the document's stored bytes
 * (`maxDocumentBytes`) in 1 MiB frames, under the send-buffer cap.
 * Bytes are budgeted as on `/sync` (`syncBytesPerSecond` per socket,
 * `syncBytesPerSecondPerIp` per address), and a socket is not read while one
 * of its frames waits for its budget, its commit or the end of a server-wide
 * overload (`load-guard.ts`).
 */
import type { IncomingMessage } from 'node:http'
import type { Duplex } from 'node:stream'
import { createHash } from 'node:crypto'
import { WebSocketServer, type WebSocket, type RawData } from 'ws'
import * as encoding from 'lib0/encoding'
import * as decoding from 'lib0/decoding'
import { roomDocId } from '../src/protocol/ids.ts'
import { CloseCode } from '../src/protocol/messages.ts'
import { decodeClientFrame, encodeServerFrame, LogFrameError, LogLinkMode, LogMessage, WRITE_PROOF_BYTES, type ClientLogFrame, type LogEntry, type TaggedSeq } from '../src/protocol/log.ts'
import { localFanout, type Fanout, type FanoutSubscription } from './fanout/fanout.ts'
import { AuthError, verifyToken, type Grant } from './auth.ts'
import type { ServerContext } from './context.ts'
import { addressBudgets, byteBudget, closeAtExpiry, closeWith, keepAlive, tokenBucket, wsErrorCloseCode, type Endpoint } from './endpoint.ts'
import { LogStoreError, type LogStore } from './store/log-store.ts'

const ENDPOINT = 'log'
/** Largest catch-up frame: entries are batched up to this many bytes (a bigger single entry goes alone). */
const CATCH_UP_FRAME_BYTES = 1024 * 1024
/** Coverage tags kept per open document (older ones are forgotten: a client that far behind catches up instead). */
const MAX_TAGS = 4096
/** Most tags one `stateAck` lists (more: `complete` 0, the client catches up). */
const MAX_TAGS_PER_ACK = 1024
const EMPTY = new Uint8Array(0)
/** Kinds of fan-out messages on `log:<docId>`. */
const FANOUT_ENTRY = 0
const FANOUT_AWARENESS = 1
const FANOUT_COMPACTED = 2

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
  /** Relay mode (the default; stock behaviour): gets and gives everything live. False: backup-only. */
  relay: boolean
}

/** An open document: its sockets and what the server knows of its recent entries. */
interface LogRoom {
  conns: Set<LogConn>
  /** Tags of entries with seq > `tagsFrom`, in seq order (missing seqs: appended where this instance did not hear it). */
  tags: (TaggedSeq & { by: LogConn | null })[]
  /** Tags are kept for seqs after this one (-1 until the document's last seq was read). */
  tagsFrom: number
  /** The last seq this instance knows of. */
  lastSeq: number
  /** Resolves once `tagsFrom` is known. */
  ready: Promise<void>
  sub: FanoutSubscription
}

/**
 * The `/log/<docId>` endpoint over `store`. `usedBytes` is the database's
 * size for `--max-storage-bytes` (read at most once a second).
 */
export function createLog(ctx: ServerContext, store: LogStore, usedBytes?: () => Promise<number>, fanout: Fanout = localFanout): Endpoint {
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
  const rooms = new Map<string, LogRoom>()
  /** Stored bytes of each document with sockets, read once from storage, then kept up to date (for `--max-document-bytes`). */
  const docBytes = new Map<string, Promise<number>>()
  const perAddress = addressBudgets(config.syncBytesPerSecondPerIp, 4 * config.maxUpdateBytes)

  const bytesIn = ctx.metrics.bytes.labels({ endpoint: ENDPOINT, direction: 'in' })
  const bytesOut = ctx.metrics.bytes.labels({ endpoint: ENDPOINT, direction: 'out' })
  const send = (c: LogConn, frame: Uint8Array) => {
    if (c.ws.readyState !== c.ws.OPEN) return
    if (c.ws.bufferedAmount > config.maxSendBufferBytes) return closeWith(ctx, ENDPOINT, c.ws, CloseCode.slowConsumer, 'not reading')
    bytesOut.inc(frame.byteLength)
    c.ws.send(frame)
  }
  /**
   * Sends `frame` to the document's other subscribed sockets (held back during
   * their catch-up): only those in relay mode unless the sender relays or
   * `all` (compaction notices). `from` null: another instance, relaying `fromRelay`.
   */
  const relay = (docId: string, from: LogConn | null, fromRelay: boolean, frame: Uint8Array, all = false): number => {
    let n = 0
    for (const c of rooms.get(docId)?.conns ?? []) {
      if (c === from || !c.subscribed || !(all || fromRelay || c.relay)) continue
      n++
      if (c.held) c.held.push(frame)
      else send(c, frame)
    }
    return n
  }
  /** Records an entry's tag (in seq order; entries the document's tags already pass are ignored). */
  const remember = (room: LogRoom, seq: number, tag: Uint8Array, by: LogConn | null) => {
    room.lastSeq = Math.max(room.lastSeq, seq)
    if (seq <= room.tagsFrom && room.tagsFrom >= 0) return
    let i = room.tags.length
    while (i > 0 && room.tags[i - 1]!.seq > seq) i--
    if (i > 0 && room.tags[i - 1]!.seq === seq) return
    room.tags.splice(i, 0, { seq, tag, by })
    if (room.tags.length > MAX_TAGS) room.tagsFrom = room.tags.splice(0, room.tags.length - MAX_TAGS).at(-1)!.seq
  }
  const publish = (docId: string, kind: number, fromRelay: boolean, write: (e: encoding.Encoder) => void) => {
    if (!fanout.shared) return
    const e = encoding.createEncoder()
    encoding.writeVarUint(e, kind)
    encoding.writeVarUint(e, fromRelay ? 1 : 0)
    write(e)
    fanout.publish(`log:${docId}`, encoding.toUint8Array(e))
  }
  /** A message another instance published about `docId`: relay it to this instance's sockets. */
  const onRemote = (docId: string, payload: Buffer) => {
    const room = rooms.get(docId)
    if (!room) return
    const d = decoding.createDecoder(payload)
    const kind = decoding.readVarUint(d)
    const fromRelay = decoding.readVarUint(d) === 1
    if (kind === FANOUT_ENTRY) {
      const seq = decoding.readVarUint(d)
      const data = decoding.readVarUint8Array(d)
      remember(room, seq, decoding.readVarUint8Array(d), null)
      relayed(relay(docId, null, fromRelay, encodeServerFrame({ type: LogMessage.entries, entries: [{ seq, snapshot: false, data }] })), data.byteLength)
    } else if (kind === FANOUT_AWARENESS) {
      const data = decoding.readVarUint8Array(d)
      relay(docId, null, fromRelay, encodeServerFrame({ type: LogMessage.awareness, data }))
    } else if (kind === FANOUT_COMPACTED) {
      docBytes.delete(docId)
      relay(docId, null, true, encodeServerFrame({ type: LogMessage.compacted, upToSeq: decoding.readVarUint(d) }), true)
    }
  }
  /** Starts (again) keeping tags from the document's current last seq. */
  const resetTags = (docId: string, room: LogRoom) => {
    room.ready = store.read(docId, Number.MAX_SAFE_INTEGER).then(
      (r) => {
        room.lastSeq = Math.max(room.lastSeq, r.lastSeq)
        room.tagsFrom = r.lastSeq
        room.tags = room.tags.filter((t) => t.seq > r.lastSeq)
      },
      () => {
        room.tagsFrom = Number.MAX_SAFE_INTEGER // unknown: every query is answered incomplete
      },
    )
  }
  const openRoom = (docId: string): LogRoom => {
    let room = rooms.get(docId)
    if (room) return room
    const created: LogRoom = { conns: new Set(), tags: [], tagsFrom: -1, lastSeq: 0, ready: Promise.resolve(), sub: { close() {} } }
    rooms.set(docId, (room = created))
    created.sub = fanout.subscribe(`log:${docId}`, {
      message: (payload) => {
        try {
          onRemote(docId, payload)
        } catch (err) {
          ctx.log.warn({ docId, err: err instanceof Error ? err.message : String(err) }, 'log: bad fan-out message')
        }
      },
      // Entries appended elsewhere may have been missed: tags start again from the stored last seq
      // (clients behind it catch up from storage on their next query).
      resync: () => resetTags(docId, created),
    })
    resetTags(docId, created)
    return created
  }
  const relayed = (sockets: number, bytes: number) => {
    if (sockets > 0) ctx.metrics.logEntryBytes.inc({ kind: 'relayed' }, sockets * bytes)
  }
  const proofHash = (proof: Uint8Array) => {
    if (proof.byteLength !== WRITE_PROOF_BYTES) throw new ProtocolError(CloseCode.badMessage, 'write proof must be 32 bytes')
    return new Uint8Array(createHash('sha256').update(proof).digest())
  }

  /** Sends `entries` in frames of up to `CATCH_UP_FRAME_BYTES` (a bigger single entry goes alone). */
  function sendEntries(c: LogConn, entries: LogEntry[]): void {
    let batch: LogEntry[] = []
    let bytes = 0
    const flushBatch = () => {
      if (batch.length) send(c, encodeServerFrame({ type: LogMessage.entries, entries: batch }))
      batch = []
      bytes = 0
    }
    for (const e of entries) {
      if (bytes + e.data.byteLength > CATCH_UP_FRAME_BYTES) flushBatch()
      batch.push(e)
      bytes += e.data.byteLength
    }
    flushBatch()
  }

  async function catchUp(c: LogConn, cursor: number): Promise<void> {
    c.subscribed = true
    c.held = []
    const read = await store.read(c.docId, cursor)
    const room = rooms.get(c.docId)
    if (room) room.lastSeq = Math.max(room.lastSeq, read.lastSeq)
    sendEntries(c, read.entries)
    send(c, encodeServerFrame({ type: LogMessage.caughtUp, lastSeq: read.lastSeq, count: read.sinceSnapshot }))
    // Relays of entries committed after the read; ones the read already carried are dropped by seq on the client.
    const held = c.held
    c.held = null
    for (const f of held) send(c, f)
  }

  async function handle(c: LogConn, f: ClientLogFrame, grant: Grant | null): Promise<void> {
    if (f.type === LogMessage.subscribe) return catchUp(c, f.cursor)
    const room = rooms.get(c.docId)!
    if (f.type === LogMessage.awareness) {
      if (f.data.byteLength > config.maxLogAwarenessBytes) throw new ProtocolError(CloseCode.badMessage, 'awareness blob too large')
      const n = relay(c.docId, c, c.relay, encodeServerFrame(f))
      if (n > 0) ctx.metrics.logEntryBytes.inc({ kind: 'awareness' }, n * f.data.byteLength)
      publish(c.docId, FANOUT_AWARENESS, c.relay, (e) => encoding.writeVarUint8Array(e, f.data))
      return
    }
    if (f.type === LogMessage.linkMode) {
      c.relay = f.mode === LogLinkMode.relay
      return
    }
    if (f.type === LogMessage.fetch) {
      // Bounded like a catch-up: a document's log is at most --max-document-bytes, sent in 1 MiB frames.
      if (f.to < f.from || f.from < 1) throw new ProtocolError(CloseCode.badMessage, 'bad fetch range')
      const read = await store.read(c.docId, f.from - 1)
      sendEntries(c, read.entries.filter((e) => e.seq <= f.to))
      return
    }
    if (f.type === LogMessage.stateQuery) {
      await room.ready
      const complete = room.tagsFrom >= 0 && f.cursor >= room.tagsFrom
      // Not the socket's own appends: it had their acks before this answer.
      let tags = complete ? room.tags.filter((t) => t.seq > f.cursor && t.by !== c).map(({ seq, tag }) => ({ seq, tag })) : []
      const fits = tags.length <= MAX_TAGS_PER_ACK
      if (!fits) tags = []
      send(c, encodeServerFrame({ type: LogMessage.stateAck, nonce: f.nonce, lastSeq: room.lastSeq, complete: complete && fits, tags }))
      return
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
      const tag = f.tag ?? EMPTY
      docBytes.set(c.docId, (docBytes.get(c.docId) ?? store.bytes(c.docId)).then((b) => b + n))
      ctx.metrics.logEntryBytes.inc({ kind: 'appended' }, n)
      remember(room, seq, tag, c)
      send(c, encodeServerFrame({ type: LogMessage.appended, nonce: f.nonce, seq }))
      relayed(relay(c.docId, c, c.relay, encodeServerFrame({ type: LogMessage.entries, entries: [{ seq, snapshot: false, data: f.data }] })), n)
      publish(c.docId, FANOUT_ENTRY, c.relay, (e) => {
        encoding.writeVarUint(e, seq)
        encoding.writeVarUint8Array(e, f.data)
        encoding.writeVarUint8Array(e, tag)
      })
      return
    }
    if (f.data.byteLength > config.maxDocumentBytes) throw new ProtocolError(CloseCode.documentTooLarge, 'snapshot above --max-document-bytes')
    const applied = await store.replace(c.docId, hash, f.upToSeq, f.data)
    if (applied) docBytes.set(c.docId, store.bytes(c.docId))
    ctx.log.info({ docId: c.docId, upToSeq: f.upToSeq, bytes: f.data.byteLength, applied }, 'log: snapshot')
    send(c, encodeServerFrame({ type: LogMessage.snapshotDone, nonce: f.nonce, upToSeq: f.upToSeq, applied }))
    if (applied) {
      relay(c.docId, c, true, encodeServerFrame({ type: LogMessage.compacted, upToSeq: f.upToSeq }), true)
      publish(c.docId, FANOUT_COMPACTED, true, (e) => encoding.writeVarUint(e, f.upToSeq))
    }
  }

  function onConnection(ws: WebSocket, docId: string, grant: Grant | null, ip: string, relayMode: boolean): void {
    const c: LogConn = { ws, docId, held: null, subscribed: false, relay: relayMode }
    const room = openRoom(docId)
    room.conns.add(c)
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
      bytesIn.inc(bytes.byteLength)
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
      room.conns.delete(c)
      if (room.conns.size === 0 && rooms.get(docId) === room) {
        rooms.delete(docId)
        room.sub.close()
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
      const link = url.searchParams.get('link')
      const tokenDoc = roomDocId(docId)
      if (tokenDoc === null) refusal = [CloseCode.notFound, 'invalid document id']
      else if (link !== null && link !== 'relay' && link !== 'backup') refusal = [CloseCode.badMessage, 'unknown link mode']
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
        onConnection(ws, docId, grant, ip, link !== 'backup')
      })
    },
    async close() {
      stopKeepAlive()
      clearInterval(watchStorage)
      for (const room of rooms.values()) {
        room.sub.close()
        for (const c of room.conns) c.ws.close(CloseCode.goingAway, 'server shutting down')
      }
      wss.close()
    },
  }
}

function toBytes(raw: RawData): Uint8Array {
  if (Array.isArray(raw)) return new Uint8Array(Buffer.concat(raw))
  if (raw instanceof ArrayBuffer) return new Uint8Array(raw)
  return new Uint8Array(raw.buffer, raw.byteOffset, raw.byteLength)
}
