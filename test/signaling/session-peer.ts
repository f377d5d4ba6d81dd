/**
 * One murmur client (`SessionCore`: fake IndexedDB, real WebRTC through
 * @roamhq/wrtc, real /signal and /sync) in its own process, for tests that
 * need the real client's mesh behaviour (y-webrtc allows one provider per room
 * per process).
 *
 *   node --import tsx test/signaling/session-peer.ts <serverUrl> <docId> <token|-> <text>
 *
 * Loads `/config.json` with the token as the app does, inserts `text` once
 * loaded, then prints one JSON line `{peers, signaling, link, backedUp, text,
 * mode, vias, rtcBytesIn, uploads}` whenever those change. Each stdin line
 * `type <n> <chars> [<ms>]` types `<chars>` at the end `<n>` times, one
 * keystroke (transaction) per event-loop turn or every `<ms>`; `delete <n>`
 * deletes the first `n` characters; `ping <tag>` types `[tag]` and notes
 * when; `refuse <peerId>` never pairs with that y-webrtc peer (drops its
 * signaling, closes a connection to it); `block <peerId>` lets its
 * announces through but drops its offers and answers, as if ICE always
 * failed between the two. `uploads`: peers' changes the
 * backup link uploaded because the server lacked them; `marks`: for each
 * `[tag]` this peer typed or received, the wall-clock time (ms) it did.
 * `peerId`, `pending`: this peer's y-webrtc id and its connections still
 * pairing. Env: `MURMUR_PEER_WEBRTC=0` starts without WebRTC (the link
 * relays), `MURMUR_PEER_LINK=relay|backup` forces the link mode,
 * `MURMUR_PEER_KEY=<link key>` opens the document as a private one (`/log`;
 * `pulls`: its catch-ups), `MURMUR_PEER_MAX_CONNS=<n>` lowers y-webrtc's
 * connection cap.
 * Exits on SIGTERM or when stdin closes.
 */
import 'fake-indexeddb/auto'
import { createRequire } from 'node:module'
import { createInterface } from 'node:readline'
import { WebSocket } from 'ws'
import { SessionCore } from '../../src/session/core.ts'
import { loadConfig } from '../../src/session/config.ts'
import { memoryStorage } from '../../src/session/storage.ts'

// An exception a library throws inside an event handler (y-webrtc meeting an answer for a
// connection it already closed, say) is one a browser reports and survives: so do we.
const LIBRARY_FRAME = /node_modules\/(y-webrtc|simple-peer|lib0|@roamhq\/wrtc|y-protocols|y-websocket)\//
process.on('uncaughtException', (err) => {
  if (LIBRARY_FRAME.test(String(err?.stack))) return console.error('uncaught in a library event handler (a browser would report it and continue):', err)
  console.error(err)
  process.exit(1)
})

// Node 20 has no global WebSocket; y-webrtc's signaling (lib0) needs one.
;(globalThis as any).WebSocket = WebSocket
const wrtc = createRequire(import.meta.url)('@roamhq/wrtc')

const [serverUrl, docId, rawToken, text] = process.argv.slice(2)
const token = rawToken === '-' ? null : rawToken
const session = new SessionCore(docId, {
  config: loadConfig({ base: serverUrl, fetch, storage: memoryStorage(), token }),
  token,
  identity: { name: `peer ${process.pid}`, color: '#2b8a3e', colorLight: '#2b8a3e33' },
  peerOpts: { wrtc },
  WebSocketPolyfill: WebSocket,
  pollMs: 100,
  webrtc: process.env.MURMUR_PEER_WEBRTC !== '0',
  ...(process.env.MURMUR_PEER_MAX_CONNS ? { maxConns: Number(process.env.MURMUR_PEER_MAX_CONNS) } : {}),
  link: { ...(process.env.MURMUR_PEER_LINK === 'relay' || process.env.MURMUR_PEER_LINK === 'backup' ? { force: process.env.MURMUR_PEER_LINK } : {}), reconcileMs: 200, pollMs: 1000 },
  // A private document (its /log link instead of /sync) when a link key is given.
  linkKey: process.env.MURMUR_PEER_KEY || null,
})
await session.loaded
session.text.insert(session.text.length, text)

// Bytes received over WebRTC data channels (every connection's simple-peer 'data' events).
let rtcBytesIn = 0
const counted = new WeakSet<object>()
setInterval(() => {
  for (const conn of session.webrtc?.room?.webrtcConns.values() ?? []) {
    const peer = conn.peer as unknown as { on(e: 'data', f: (d: Uint8Array) => void): void }
    if (counted.has(peer)) continue
    counted.add(peer)
    peer.on('data', (d) => (rtcBytesIn += d.byteLength))
  }
}, 10).unref()

// Keystroke-to-remote latency: when each `[tag]` was typed here or first seen here (one clock for every process).
const wallNow = () => performance.timeOrigin + performance.now()
const marks: Record<string, number> = {}
session.doc.on('update', () => {
  for (const m of session.text.toString().matchAll(/\[([^\]]+)\]/g)) marks[m[1]] ??= wallNow()
})

// Refused peers: their signaling is dropped and a connection to them closed, so the pair never forms.
const refused = new Set<string>()
const blocked = new Set<string>()
const patched = new WeakSet<object>()
/** Drops signaling from refused peers (all of it) and blocked ones (their WebRTC offers and answers: ICE that always fails). */
function filterSignaling() {
  for (const conn of (session.webrtc?.signalingConns ?? []) as unknown as { emit(n: string, a: unknown[]): void }[]) {
    if (patched.has(conn)) continue
    patched.add(conn)
    const emit = conn.emit.bind(conn)
    conn.emit = (name, args) => {
      const m = args[0] as { type?: string; data?: { from?: string; type?: string } } | undefined
      const from = m?.data?.from ?? ''
      if (name === 'message' && m?.type === 'publish' && (refused.has(from) || (blocked.has(from) && m.data?.type === 'signal'))) return
      emit(name, args)
    }
  }
}
function refuse(peerId: string, set: Set<string>) {
  set.add(peerId)
  filterSignaling()
  session.webrtc?.room?.webrtcConns.get(peerId)?.destroy()
}

let last = ''
const report = () => {
  const f = session.facts
  const vias = f.peerList.map((p) => p.via).sort()
  const room = session.webrtc?.room
  const pending = room ? [...room.webrtcConns.values()].filter((c) => !c.connected && !c.closed).length : 0
  const line = JSON.stringify({ peers: f.peers, signaling: f.signaling, link: f.link, backedUp: f.backedUp, readOnly: f.readOnly, text: session.text.toString(), mode: (session.link ?? session.privateLog)?.mode ?? null, vias, rtcBytesIn, uploads: (session.link ?? session.privateLog)?.uploads ?? 0, pulls: session.privateLog?.pulls ?? 0, peerId: room?.peerId ?? null, pending, marks })
  if (line !== last) process.stdout.write(`${(last = line)}\n`)
}
session.onChange(report)
session.doc.on('update', report)
report()

const exit = async () => {
  await session.destroy()
  setTimeout(() => process.exit(0), 50)
}
process.on('SIGTERM', () => void exit())
process.stdin.on('end', () => void exit())
createInterface({ input: process.stdin }).on('line', async (line) => {
  const [cmd, n, chars = '', pace = '0'] = line.split(' ')
  if (cmd === 'ping') {
    marks[n] = wallNow()
    session.text.insert(session.text.length, `[${n}]`)
    return
  }
  if (cmd === 'refuse') return refuse(n, refused)
  if (cmd === 'block') return refuse(n, blocked)
  for (let i = 0; i < Number(n); i++) {
    if (cmd === 'type') session.text.insert(session.text.length, chars)
    else if (cmd === 'delete') session.text.delete(0, 1)
    await new Promise((r) => (Number(pace) > 0 ? setTimeout(r, Number(pace)) : setImmediate(r)))
  }
})
// The link mode changes without a facts change: report it on the poll too.
setInterval(report, 100).unref()
