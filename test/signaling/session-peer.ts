/**
 * One murmur client (`SessionCore`: fake IndexedDB, real WebRTC through
 * @roamhq/wrtc, real /signal and /sync) in its own process, for tests that
 * need the real client's mesh behaviour (y-webrtc allows one provider per room
 * per process).
 *
 *   node --import tsx test/signaling/session-peer.ts <serverUrl> <docId> <token|-> <text>
 *
 * Loads `/config.json` with the token as the app does, inserts `text` once
 * loaded, then prints one JSON line `{peers, signaling, link, backedUp, text}`
 * whenever those change. Exits on SIGTERM or when stdin closes.
 */
import 'fake-indexeddb/auto'
import { createRequire } from 'node:module'
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
})
await session.loaded
session.text.insert(session.text.length, text)

let last = ''
const report = () => {
  const f = session.facts
  const line = JSON.stringify({ peers: f.peers, signaling: f.signaling, link: f.link, backedUp: f.backedUp, readOnly: f.readOnly, text: session.text.toString() })
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
process.stdin.resume()
