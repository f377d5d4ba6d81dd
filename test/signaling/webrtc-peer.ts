/**
 * One stock y-webrtc peer in its own process (y-webrtc allows one provider per
 * room per process), for the interop test.
 *
 *   node --import tsx test/signaling/webrtc-peer.ts <signalUrl> <room> <text> [password]
 *
 * Inserts `text`, then prints one JSON line `{conns, connected, offered,
 * dropped, text}` whenever its document or its WebRTC connections change
 * (`offered`: connections it started as the offering side). With
 * MURMUR_GLARE_RULE=1 it applies the client's glare rule
 * (`src/session/glare.ts`) and counts the connections the rule dropped. Exits on SIGTERM or when stdin closes.
 */
import { createRequire } from 'node:module'
import { WebSocket } from 'ws'
import { yieldToHigherPeers } from '../../src/session/glare.ts'

// Node 20 has no global WebSocket; y-webrtc (via lib0) needs one.
;(globalThis as any).WebSocket = WebSocket
const wrtc = createRequire(import.meta.url)('@roamhq/wrtc')
const Y = await import('yjs')
const { WebrtcProvider } = await import('y-webrtc')

const [signalUrl, room, text, password] = process.argv.slice(2)
const doc = new Y.Doc()
const ytext = doc.getText('t')
ytext.insert(0, text)

const provider = new WebrtcProvider(room, doc, {
  signaling: [signalUrl],
  password: password || undefined,
  // Never a public STUN/TURN server: host candidates only.
  peerOpts: { wrtc, config: { iceServers: [] } },
})

// Connections this peer started as the offering side, and those the glare rule dropped.
let offered = 0
let dropped = 0
provider.on('peers', ({ added }: { added: string[] }) => {
  const room = provider.room as any
  if (!room) return
  for (const id of added) if (room.webrtcConns.get(id)?.peer.initiator) offered++
  if (process.env.MURMUR_GLARE_RULE === '1') dropped += yieldToHigherPeers(room, added).length
})

let last = ''
const report = () => {
  const conns = [...(provider.room?.webrtcConns.values() ?? [])]
  const line = JSON.stringify({ conns: conns.length, connected: conns.filter((c: any) => c.connected).length, offered, dropped, text: ytext.toString() })
  if (line !== last) process.stdout.write(`${(last = line)}\n`)
}
doc.on('update', report)
provider.on('peers', report)
// webrtcConns' `connected` flips without an event of its own: poll it cheaply too.
const timer = setInterval(report, 100)
report()

const exit = () => {
  clearInterval(timer)
  provider.destroy()
  doc.destroy()
  setTimeout(() => process.exit(0), 100)
}
process.on('SIGTERM', exit)
process.stdin.on('end', exit)
process.stdin.resume()
