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
 * deletes the first `n` characters. `uploads`: peers' changes the backup link
 * uploaded because the server lacked them. Env:
 * `MURMUR_PEER_WEBRTC=0` starts without WebRTC (the link relays),
 * `MURMUR_PEER_LINK=relay|backup` forces the link mode, `MURMUR_PEER_KEY=<link key>`
 * opens the document as a private one (`/log`; `pulls`: its catch-ups).
 * Exits on SIGTERM or when stdin closes.
 */
import 'fake-indexeddb/auto'
import { createRequire } from 'node:module'
import { createInterface } from 'node:readline'
import { WebSocket } from 'ws'
import { SessionCore } from '../../src/session/core.ts'
import { loadConfig } from '../../src/session/config.ts'
import { memoryStorage } from '../../src/session/storage.ts'

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

let last = ''
const report = () => {
  const f = session.facts
  const vias = f.peerList.map((p) => p.via).sort()
  const line = JSON.stringify({ peers: f.peers, signaling: f.signaling, link: f.link, backedUp: f.backedUp, readOnly: f.readOnly, text: session.text.toString(), mode: (session.link ?? session.privateLog)?.mode ?? null, vias, rtcBytesIn, uploads: (session.link ?? session.privateLog)?.uploads ?? 0, pulls: session.privateLog?.pulls ?? 0 })
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
  for (let i = 0; i < Number(n); i++) {
    if (cmd === 'type') session.text.insert(session.text.length, chars)
    else if (cmd === 'delete') session.text.delete(0, 1)
    await new Promise((r) => (Number(pace) > 0 ? setTimeout(r, Number(pace)) : setImmediate(r)))
  }
})
// The link mode changes without a facts change: report it on the poll too.
setInterval(report, 100).unref()
