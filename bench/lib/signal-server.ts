/**
 * Only the `/signal` endpoint on a plain HTTP server, with `/healthz` and
 * `/metrics`: the endpoint measured in isolation from the rest of the server.
 * Takes the same flags as `server/main.ts` and prints `serving http://…` like it,
 * so `test/helpers/server.ts`-style spawners can start it.
 *
 *   node --import tsx bench/lib/signal-server.ts --host 127.0.0.1 --port 0
 */
import { createServer } from 'node:http'
import pino from 'pino'
import { parseConfig } from '../../server/config.ts'
import { createMetrics } from '../../server/metrics.ts'
import { createSignaling } from '../../server/signaling.ts'

const config = parseConfig(process.argv.slice(2), process.env)
const metrics = createMetrics()
const log = pino({ level: config.logLevel })
const signaling = createSignaling({ config, log, metrics })

const server = createServer(async (req, res) => {
  if (req.url === '/healthz') {
    res.writeHead(200, { 'content-type': 'application/json' }).end('{"ok":true}')
  } else if (req.url === '/metrics') {
    res.writeHead(200, { 'content-type': metrics.registry.contentType }).end(await metrics.registry.metrics())
  } else {
    res.writeHead(404).end()
  }
})
server.on('upgrade', (req, socket, head) => {
  const url = new URL(req.url ?? '/', 'http://localhost')
  if (url.pathname === '/signal') signaling.handleUpgrade(req, socket, head, url, req.socket.remoteAddress ?? 'unknown')
  else socket.destroy()
})
server.listen(config.port, config.host, () => {
  const addr = server.address()
  const port = typeof addr === 'object' && addr ? addr.port : config.port
  console.log(`serving http://${config.host}:${port}`)
})
const stop = async () => {
  await signaling.close()
  server.close(() => process.exit(0))
}
process.on('SIGTERM', stop)
process.on('SIGINT', stop)
