/**
 * One replica of the convergence harness, in its own process (y-webrtc allows
 * one provider per room per process, and separate processes share no
 * BroadcastChannel): a Y.Doc with Y.Text 'text', a stock `WebrtcProvider`
 * over real WebRTC (`@roamhq/wrtc`, host candidates only) and a stock
 * y-websocket `WebsocketProvider` to the murmur server's `/sync`.
 *
 * Started by `harness.ts` with `child_process.fork`; configured through the
 * `MURMUR_PEER` environment variable (JSON `PeerConfig`) and driven over the
 * IPC channel with `Command`s, each answered by `{ id, ok, ... }`.
 * Exits when the IPC channel closes.
 */
import { appendFileSync, existsSync, readFileSync } from 'node:fs'
import { WebSocket } from 'ws'
import { yieldToHigherPeers } from '../../src/session/glare.ts'
import type { PeerCommand, PeerConfig, PeerReply, PeerState, SubEdit } from './protocol.ts'

/**
 * Errors thrown by library code inside WebSocket event handlers. A browser
 * reports such an exception and carries on with the next event; in Node it
 * would escape into `ws`'s receiver and kill the process. Peers behave like
 * the browser here, and count what they caught so the harness can report it.
 */
const clientErrors: string[] = []
let clientErrorCount = 0

/** `ws` with browser semantics for exceptions in `on<event>` handlers. */
class BrowserLikeWebSocket extends WebSocket {}
for (const event of ['message', 'open', 'close', 'error']) {
  const attr = Object.getOwnPropertyDescriptor(WebSocket.prototype, `on${event}`)!
  Object.defineProperty(BrowserLikeWebSocket.prototype, `on${event}`, {
    configurable: true,
    enumerable: true,
    get() {
      return attr.get!.call(this)
    },
    set(handler: unknown) {
      const wrapped =
        typeof handler === 'function'
          ? function (this: unknown, ev: unknown) {
              try {
                return handler.call(this, ev)
              } catch (err) {
                reportClientError(`a WebSocket on${event} handler`, err)
              }
            }
          : handler
      attr.set!.call(this, wrapped)
    },
  })
}

function reportClientError(where: string, err: unknown): void {
  clientErrorCount++
  const line = String((err as Error)?.stack ?? err).split('\n').slice(0, 3).join(' | ')
  if (clientErrors.length < 5 && !clientErrors.includes(line)) clientErrors.push(line)
  console.error(`uncaught in ${where} (a browser would report it and continue):`, err)
}

// The same for exceptions thrown from library callbacks that @roamhq/wrtc
// dispatches on process.nextTick (RTCPeerConnection events): a browser reports
// an exception in an event listener and goes on. Anything thrown elsewhere
// (the harness's own code) still kills the peer.
const LIBRARY_FRAME = /node_modules\/(y-webrtc|simple-peer|lib0|@roamhq\/wrtc|y-protocols|y-websocket)\//
process.on('uncaughtException', (err) => {
  if (LIBRARY_FRAME.test(String(err?.stack))) return reportClientError('a library event listener', err)
  console.error(err)
  process.exit(1)
})

// Node 20 has no global WebSocket; y-webrtc's signaling (lib0/websocket) needs one.
;(globalThis as any).WebSocket = BrowserLikeWebSocket
const wrtc = (await import('@roamhq/wrtc')).default
const Y = await import('yjs')
const { WebrtcProvider } = await import('y-webrtc')
const { WebsocketProvider } = await import('y-websocket')
const { BackupLink } = await import('../../src/session/backup-link.ts')

const config: PeerConfig = JSON.parse(process.env.MURMUR_PEER ?? '{}')
const doc = new Y.Doc()
// Deterministic client ids (derived from the seed) make concurrent-insert
// ordering, which Yjs breaks by client id, part of what a seed reproduces.
doc.clientID = config.clientID
const text = doc.getText('text')

// Local persistence, as y-indexeddb gives the browser client: every update is
// appended to a file before anything else happens, and a restarted peer (a
// crashed or reloaded tab) loads it before connecting to anyone.
const PERSISTENCE = Symbol('persistence')
if (existsSync(config.persistPath)) {
  const log = readFileSync(config.persistPath)
  Y.transact(
    doc,
    () => {
      // [u32 length][update]…; a torn last record (crash mid-append) is ignored.
      for (let at = 0; at + 4 <= log.length; ) {
        const len = log.readUInt32LE(at)
        if (at + 4 + len > log.length) break
        Y.applyUpdate(doc, log.subarray(at + 4, at + 4 + len), PERSISTENCE)
        at += 4 + len
      }
    },
    PERSISTENCE,
  )
}
doc.on('update', (update: Uint8Array, origin: unknown) => {
  if (origin === PERSISTENCE) return
  const header = Buffer.alloc(4)
  header.writeUInt32LE(update.length)
  appendFileSync(config.persistPath, Buffer.concat([header, update]))
})

const rtc = new WebrtcProvider(config.room, doc, {
  signaling: [`ws://127.0.0.1:${config.signalPort ?? config.port}/signal`],
  // Never a public STUN/TURN server: host candidates only.
  peerOpts: { wrtc, config: { iceServers: [] } },
  filterBcConns: true,
})
// The browser client's glare rule: only the higher peer id offers.
rtc.on('peers', ({ added }: { added: string[] }) => rtc.room && yieldToHigherPeers(rtc.room as any, added))
const ws = new WebsocketProvider(`ws://127.0.0.1:${config.port}/sync`, config.room, doc, {
  WebSocketPolyfill: BrowserLikeWebSocket as unknown as typeof globalThis.WebSocket,
  disableBc: true,
  maxBackoffTime: config.maxBackoffTime,
  connect: config.srv,
  params: config.link === 'stock' ? {} : { link: config.link === 'backup' ? 'backup' : 'relay' },
})
// murmur's hybrid link: backup-only peers exchange nothing live through the server and
// reconcile by state queries (a short poll, so split meshes converge well inside the harness's 30 s).
const link =
  config.link === 'stock'
    ? null
    : new BackupLink(ws, rtc.awareness, { mode: config.link === 'backup' ? 'backup' : 'relay', isPeerOrigin: (origin) => origin === rtc.room, reconcileMs: 200, pollMs: 1000 })
if (link) {
  ws.on('sync', (synced: boolean) => synced && link.synced())
  ws.on('connection-close', () => link.closed())
}
// A peer that cannot use WebRTC never joins the mesh: the server relays to and from it.
const noRtc = config.link === 'nortc'
if (!config.rtc || noRtc) rtc.disconnect()
/** Document updates that arrived over a WebRTC data channel (y-webrtc applies them with its room as origin). */
let rtcUpdates = 0
let wsUpdates = 0
doc.on('update', (_u: Uint8Array, origin: unknown) => {
  if (origin !== null && typeof origin === 'object' && 'webrtcConns' in origin) rtcUpdates++
  if (origin === ws) wsUpdates++
})
/** Sync messages carrying document updates that arrived over a data channel, also when the server's relay had already brought them. */
let rtcUpdateMessages = 0
const counted = new WeakSet<object>()
rtc.on('peers', () => {
  for (const conn of rtc.room?.webrtcConns.values() ?? []) {
    const peer = conn.peer as { on(e: 'data', f: (d: Uint8Array) => void): void }
    if (counted.has(peer)) continue
    counted.add(peer)
    // [messageSync = 0, step 2 = 1 | update = 2, length, update]; an empty update is 5 bytes in all
    peer.on('data', (d) => d[0] === 0 && (d[1] === 1 || d[1] === 2) && d.byteLength > 5 && rtcUpdateMessages++)
  }
})

/** Close codes the server sent us, and the closes stock y-websocket treats as final. */
const closeCodes: Record<string, number> = {}
const terminalCloses: { code: number; reason: string }[] = []
ws.on('connection-close', (event: any) => {
  const code = String(event?.code ?? 'local')
  closeCodes[code] = (closeCodes[code] ?? 0) + 1
})
ws.on('closed', (event: { code: number; reason: string }) => terminalCloses.push(event))

const MARKER = /⟨[^⟩]*⟩/g

/** [start, end) of every marker in `s`. */
function markerRanges(s: string): [number, number][] {
  return [...s.matchAll(MARKER)].map((m) => [m.index!, m.index! + m[0].length])
}

/**
 * Applies one sub-edit. Inserts go only between markers' characters' outside
 * (never inside a marker); deletes remove only filler characters, so every
 * marker stays whole. `at` in [0,1) picks the position among the allowed ones.
 * Returns false when there was nothing to delete.
 */
function applySubEdit(e: SubEdit): boolean {
  const s = text.toString()
  const ranges = markerRanges(s)
  if (e.kind === 'insert') {
    // Allowed insert positions: 0..length, minus positions strictly inside a marker.
    const allowed: number[] = []
    let r = 0
    for (let i = 0; i <= s.length; i++) {
      while (r < ranges.length && ranges[r][1] <= i) r++
      if (r < ranges.length && ranges[r][0] < i && i < ranges[r][1]) continue
      allowed.push(i)
    }
    const pos = allowed[Math.min(allowed.length - 1, Math.floor(e.at * allowed.length))]
    text.insert(pos, e.text)
    return true
  }
  const filler = new Uint8Array(s.length + 1)
  filler.fill(1, 0, s.length)
  for (const [a, b] of ranges) filler.fill(0, a, b)
  const candidates: number[] = []
  for (let i = 0; i < s.length; i++) if (filler[i]) candidates.push(i)
  if (candidates.length === 0) return false
  const start = candidates[Math.min(candidates.length - 1, Math.floor(e.at * candidates.length))]
  let len = 0
  while (len < e.len && filler[start + len]) len++
  text.delete(start, len)
  return true
}

function b64(u: Uint8Array): string {
  return Buffer.from(u).toString('base64')
}

function state(): PeerState {
  const room = rtc.room
  const conns = room ? [...room.webrtcConns.values()] : []
  return {
    text: text.toString(),
    sv: b64(Y.encodeStateVector(doc)),
    pendingStructs: doc.store.pendingStructs !== null,
    pendingDs: doc.store.pendingDs !== null,
    rtcConnected: conns.filter((c: any) => c.connected).length,
    rtcPeers: conns.map((c: any) => c.remotePeerId),
    rtcUpdates,
    rtcUpdateMessages,
    wsUpdates,
    linkUploads: link?.uploads ?? 0,
    wsConnected: ws.wsconnected,
    wsSynced: ws.synced,
    wsShouldConnect: ws.shouldConnect,
    closeCodes,
    terminalCloses,
    clientErrors: clientErrorCount,
    clientErrorSamples: clientErrors,
  }
}

/** Re-announces ourselves on the signaling server so unblocked peers reconnect. */
function announce(): void {
  const room = rtc.room
  if (!room || !rtc.connected) return
  for (const conn of rtc.signalingConns as any[]) {
    if (conn.connected) conn.send({ type: 'publish', topic: room.name, data: { type: 'announce', from: room.peerId } })
  }
}

async function handle(cmd: PeerCommand): Promise<Omit<PeerReply, 'id'>> {
  switch (cmd.type) {
    case 'edit': {
      let applied = 0
      doc.transact(() => {
        for (const e of cmd.edits) if (applySubEdit(e)) applied++
      })
      return { ok: true, applied }
    }
    case 'burst': {
      let applied = 0
      for (const e of cmd.edits) doc.transact(() => void (applySubEdit(e) && applied++))
      return { ok: true, applied }
    }
    case 'rtc':
      if (cmd.on && !rtc.connected && !noRtc) rtc.connect()
      else if (!cmd.on && rtc.connected) rtc.disconnect()
      return { ok: true }
    case 'srv':
      if (cmd.on) ws.connect()
      else ws.disconnect()
      return { ok: true }
    case 'block': {
      // y-webrtc ignores signaling messages from ids in `room.bcConns` (it uses
      // that set for peers reachable over BroadcastChannel, which separate
      // processes never are): putting a peer there stops new connections to
      // it; destroying the live one cuts the existing link.
      const room = rtc.room!
      for (const id of cmd.peerIds) {
        if (cmd.on) {
          room.bcConns.add(id)
          room.webrtcConns.get(id)?.destroy()
        } else {
          room.bcConns.delete(id)
        }
      }
      if (!cmd.on && cmd.announce) announce()
      return { ok: true }
    }
    case 'state':
      return { ok: true, state: state() }
  }
}

process.on('message', (cmd: PeerCommand) => {
  handle(cmd).then(
    (reply) => process.send!({ id: cmd.id, ...reply }),
    (err: Error) => process.send!({ id: cmd.id, ok: false, error: err.stack ?? String(err) }),
  )
})
process.on('disconnect', () => process.exit(0))
// Start in the link state the harness's model says (a restarted peer rejoins a partition).
while (!rtc.room) await new Promise((r) => setTimeout(r, 5))
for (const id of config.blocked) rtc.room.bcConns.add(id)
process.send!({ id: 0, ok: true, ready: true, peerId: rtc.room.peerId })
