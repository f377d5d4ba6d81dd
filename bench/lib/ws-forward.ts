/**
 * The ceiling for a signaling server built on `ws`: a bare WebSocketServer that
 * forwards every frame, untouched, to every other socket of the process. No
 * parsing, no topics, no limits. Prints `listening <port>`.
 *
 *   node --import tsx bench/lib/ws-forward.ts [port]
 */
import { WebSocketServer, type WebSocket } from 'ws'

const wss = new WebSocketServer({ port: Number(process.argv[2] ?? 0), host: '127.0.0.1' })
wss.on('connection', (ws: WebSocket) => {
  ws.on('message', (data, isBinary) => {
    for (const other of wss.clients) if (other !== ws) other.send(data, { binary: isBinary })
  })
})
wss.on('listening', () => {
  const addr = wss.address()
  console.log(`listening ${typeof addr === 'object' && addr ? addr.port : addr}`)
})
