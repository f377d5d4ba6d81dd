/**
 * The ceiling for a signaling server built on `ws`: a bare WebSocketServer that
 * forwards every frame, untouched, to every other socket of the process. No
 * parsing, no topics, no limits. Prints `listening <port>`.
 *
 *   node --import tsx bench/lib/ws-forward.ts [--cork]
 *
 * `--cork` also corks each receiving socket until the end of the event-loop
 * turn (as murmur's /signal does), so a burst leaves in one write per socket:
 * the ceiling for a server that batches writes.
 */
import type { Socket } from 'node:net'
import { WebSocketServer, type WebSocket } from 'ws'

const corking = process.argv.includes('--cork')
const wss = new WebSocketServer({ port: 0, host: '127.0.0.1' })
const corked = new Set<Socket>()
const flush = () => {
  for (const s of corked) s.uncork()
  corked.clear()
}
wss.on('connection', (ws: WebSocket) => {
  ws.on('message', (data, isBinary) => {
    for (const other of wss.clients) {
      if (other === ws) continue
      if (corking) {
        const socket = (other as unknown as { _socket: Socket })._socket
        if (!corked.has(socket)) {
          if (corked.size === 0) setImmediate(flush)
          socket.cork()
          corked.add(socket)
        }
      }
      other.send(data, { binary: isBinary })
    }
  })
})
wss.on('listening', () => {
  const addr = wss.address()
  console.log(`listening ${typeof addr === 'object' && addr ? addr.port : addr}`)
})
process.on('SIGTERM', () => process.exit(0))
