/**
 * One murmur client with its history (`SessionCore` + `openHistory`: fake
 * IndexedDB, real WebRTC through @roamhq/wrtc, real /signal, and /sync or
 * /log when the server offers backup) in its own process (y-webrtc allows
 * one provider per room per process).
 *
 *   node --import tsx test/history/history-peer.ts <serverUrl> <docId> <token|-> <text>
 *
 * Env `MURMUR_PEER_KEY`: the link key of a private document;
 * `MURMUR_PEER_WEBRTC=0`: no WebRTC. Prints one
 * JSON line `{peers, conns, versions, lengths, meshReceived, backup}`
 * whenever it changes (`versions`: ids newest first; `lengths`: their text
 * lengths). Each stdin line `save <name> [<chars>]` sets the text to `<chars>`
 * characters (if given), saves a version named `<name>`, and then (if
 * `<chars>` was given) empties the text; `add <name> <chars>` adds a
 * version record of `<chars>` characters without touching the text
 * (`covered`: the history's backup link knows the server has everything). Exits on
 * SIGTERM or when stdin closes.
 */
import 'fake-indexeddb/auto'
import { createRequire } from 'node:module'
import { createInterface } from 'node:readline'
import { WebSocket } from 'ws'
import { SessionCore } from '../../src/session/core.ts'
import { loadConfig } from '../../src/session/config.ts'
import { memoryStorage } from '../../src/session/storage.ts'
import { openHistory } from '../../src/history/index.ts'
import { newVersionId } from '../../src/history/versions.ts'

/** `n` characters of varied text (not one repeated letter, so an update does not shrink into a few structs). */
function varied(name: string, n: number): string {
  let s = ''
  for (let i = 0; s.length < n; i++) s += `line ${i} of ${name}\n`
  return s.slice(0, n)
}

;(globalThis as any).WebSocket = WebSocket
const wrtc = createRequire(import.meta.url)('@roamhq/wrtc')

const [serverUrl, docId, rawToken, text] = process.argv.slice(2)
const token = rawToken === '-' ? null : rawToken
const session = new SessionCore(docId!, {
  config: loadConfig({ base: serverUrl!, fetch, storage: memoryStorage(), token }),
  token,
  linkKey: process.env.MURMUR_PEER_KEY || null,
  identity: { name: `peer ${process.pid}`, color: '#2b8a3e', colorLight: '#2b8a3e33' },
  peerOpts: { wrtc },
  WebSocketPolyfill: WebSocket,
  pollMs: 100,
  webrtc: process.env.MURMUR_PEER_WEBRTC !== '0',
})
// Versions only by hand: automatic ones would make the reports depend on timing.
const history = openHistory(session, { idleMs: 3_600_000, maxEveryMs: 3_600_000 })
await history.loaded
session.text.insert(session.text.length, text!)

let last = ''
const report = () => {
  const versions = history.log.list()
  const line = JSON.stringify({
    peers: session.facts.peers,
    conns: session.webrtc?.room?.webrtcConns.size ?? 0,
    versions: versions.map((v) => v.id),
    names: versions.map((v) => v.name),
    lengths: versions.map((v) => v.text.length),
    meshReceived: history.mesh?.received ?? 0,
    backup: history.backup ? (history.backup.private ? 'log' : 'sync') : null,
    covered: history.backup?.link?.covered ?? history.backup?.private?.covered ?? false,
  })
  if (line !== last) process.stdout.write(`${(last = line)}\n`)
}
session.onChange(report)
history.log.onChange(report)
setInterval(report, 100).unref()
report()

const exit = async () => {
  await history.destroy()
  await session.destroy()
  setTimeout(() => process.exit(0), 50)
}
process.on('SIGTERM', () => void exit())
process.stdin.on('end', () => void exit())
createInterface({ input: process.stdin }).on('line', (line) => {
  const [cmd, name = '', chars] = line.split(' ')
  if (cmd === 'add') {
    // A version record alone (no edit of the text), as a peer's recorder would add it.
    history.log.add({ id: newVersionId(), at: Date.now(), by: [], name, manual: true, added: 0, removed: 0, text: varied(name, Number(chars)) })
    return report()
  }
  if (cmd !== 'save') return
  if (chars) {
    const n = Number(chars)
    const s = varied(name, n)
    session.text.delete(0, session.text.length)
    // In 8 KB edits: y-webrtc sends each text update as one data channel message, and one above
    // the channel's message size limit closes the connection (a limit of the text's sync, not of history's).
    for (let at = 0; at < n; at += 8192) session.text.insert(at, s.slice(at, Math.min(n, at + 8192)))
  }
  history.recorder!.save(name)
  // ...and the text goes back to a short one: a later peer's first sync of the text is one
  // y-webrtc message too (the deleted characters are garbage-collected; the version keeps them).
  if (chars) session.text.delete(0, session.text.length)
  report()
})
