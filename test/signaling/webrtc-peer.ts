/**
 * One stock y-webrtc peer in its own process (y-webrtc allows one provider per
 * room per process), for the interop test.
 *
 *   node --import tsx test/signaling/webrtc-peer.ts <signalUrl> <room> <text> [password]
 *
 * Inserts `text`, then prints one JSON line `{conns, text}` whenever its
 * document or its WebRTC connections change. Exits on SIGTERM or when stdin closes.
 */
import { createRequire } from 'node:module'
import { WebSocket } from 'ws'

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

let last = ''
const report = () => {
  const line = JSON.stringify({ conns: provider.room?.webrtcConns.size ?? 0, connected: [...(provider.room?.webrtcConns.values() ?? [])].filter((c: any) => c.connected).length, text: ytext.toString() })
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
