/**
 * One murmur client (`SessionCore`: fake IndexedDB, real WebRTC through
 * @roamhq/wrtc, real /signal) in its own process, for tests of big updates
 * on the mesh. Reports are small whatever the document's size: one JSON line
 * `{peers, closes, length, hash, storms}` whenever they change (the text's
 * length and a hash of it, checked every 50 ms).
 *
 *   node --import tsx test/signaling/bulk-peer.ts <serverUrl> <docId> <initialChars> <seed>
 *
 * Starts with `initialChars` generated characters (seeded). Stdin lines:
 * `paste <chars> <seed>` inserts that many generated characters at the end
 * in one transaction; `storm <n> <seed>` makes `n` seeded edits, one per
 * event-loop turn: mostly keystrokes at random places, some deletions and
 * some pastes of up to 300 KB (`storms` counts finished storms).
 * `closes`: WebRTC connections that closed after connecting. Env `MURMUR_PEER_PARTS=0`: this
 * client sends y-webrtc's messages whole, as clients did before
 * `session/mesh-parts.ts` (it still reads parts).
 */
import 'fake-indexeddb/auto'
import { createRequire } from 'node:module'
import { createInterface } from 'node:readline'
import { WebSocket } from 'ws'
import { SessionCore } from '../../src/session/core.ts'
import { loadConfig } from '../../src/session/config.ts'
import { memoryStorage } from '../../src/session/storage.ts'

;(globalThis as any).WebSocket = WebSocket
const wrtc = createRequire(import.meta.url)('@roamhq/wrtc')

const [serverUrl, docId, initialChars, seed] = process.argv.slice(2)

/** A seeded generator of numbers in [0, 1) (mulberry32). */
function random(seed: number): () => number {
  let s = seed >>> 0
  return () => {
    s = (s + 0x6d2b79f5) >>> 0
    let t = Math.imul(s ^ (s >>> 15), 1 | s)
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296
  }
}

/** `chars` characters of lines that differ with `seed`. */
function generated(chars: number, seed: number): string {
  const lines: string[] = []
  let n = 0
  for (let i = 0; n < chars; i++) {
    const line = `${seed}:${i} the quick brown fox jumps over the lazy dog ${(i * 7919) % 1000}\n`
    lines.push(line)
    n += line.length
  }
  return lines.join('').slice(0, chars)
}

const session = new SessionCore(docId, {
  config: loadConfig({ base: serverUrl, fetch, storage: memoryStorage(), token: null }),
  token: null,
  identity: { name: `peer ${process.pid}`, color: '#2b8a3e', colorLight: '#2b8a3e33' },
  peerOpts: { wrtc },
  WebSocketPolyfill: WebSocket,
  pollMs: 100,
})
if (process.env.MURMUR_PEER_PARTS === '0') {
  // Undo the send hook mesh-parts puts on every connection the mesh adopts.
  const port = session.historyMesh
  const adopt = port.adopt.bind(port)
  port.adopt = (peerId, conn) => {
    const send = conn.peer.send
    adopt(peerId, conn)
    conn.peer.send = send
  }
}
await session.loaded
if (Number(initialChars) > 0) session.text.insert(0, generated(Number(initialChars), Number(seed)))

let closes = 0
let storms = 0
const watched = new WeakSet<object>()
setInterval(() => {
  for (const conn of session.webrtc?.room?.webrtcConns.values() ?? []) {
    const peer = conn.peer as unknown as { once(e: 'close' | 'connect', f: () => void): void; connected?: boolean }
    if (watched.has(peer)) continue
    watched.add(peer)
    // Only a connection that was up counts (one closed while still pairing is not what an oversized message does).
    let up = peer.connected === true
    peer.once('connect', () => (up = true))
    peer.once('close', () => {
      if (!up) return
      closes++
      report()
    })
  }
}, 10).unref()

function hash(s: string): number {
  let h = 0x811c9dc5
  for (let i = 0; i < s.length; i++) h = Math.imul(h ^ s.charCodeAt(i), 16777619)
  return h >>> 0
}

let last = ''
let dirty = true
let cached = { length: 0, hash: 0 }
function report() {
  if (dirty) {
    const text = session.text.toString()
    cached = { length: text.length, hash: hash(text) }
    dirty = false
  }
  const line = JSON.stringify({ peers: session.facts.peers, closes, ...cached, storms })
  if (line !== last) process.stdout.write(`${(last = line)}\n`)
}
session.doc.on('update', () => (dirty = true))
session.onChange(report)
setInterval(report, 50).unref()
report()

async function storm(n: number, seed: number) {
  const rnd = random(seed)
  for (let i = 0; i < n; i++) {
    const len = session.text.length
    const at = Math.floor(rnd() * (len + 1))
    const r = rnd()
    if (r < 0.03) session.text.insert(at, generated(20_000 + Math.floor(rnd() * 280_000), seed * 1000 + i))
    else if (r < 0.1 && len > 0) session.text.delete(Math.min(at, len - 1), Math.min(len - Math.min(at, len - 1), 1 + Math.floor(rnd() * 2000)))
    else session.text.insert(at, 'abcde'.slice(0, 1 + Math.floor(rnd() * 5)))
    await new Promise((r) => setImmediate(r))
  }
  storms++
}

const exit = async () => {
  await session.destroy()
  setTimeout(() => process.exit(0), 50)
}
process.on('SIGTERM', () => void exit())
process.stdin.on('end', () => void exit())
createInterface({ input: process.stdin }).on('line', (line) => {
  const [cmd, a, b] = line.split(' ')
  if (cmd === 'paste') session.text.insert(session.text.length, generated(Number(a), Number(b)))
  else if (cmd === 'storm') void storm(Number(a), Number(b))
})
