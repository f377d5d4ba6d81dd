import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http'
import { existsSync, readFileSync } from 'node:fs'
import { resolve } from 'node:path'
import type { ServerContext } from './context.ts'
import type { Endpoint } from './endpoint.ts'
import { serveClient } from './static.ts'
import type { Store } from './store/store.ts'
import { turnCredentials, type IceServer } from './turn.ts'

/** What the HTTP layer routes to. */
export interface HttpDeps {
  store: Store
  signaling: Endpoint
  /** Absent when backup is switched off. */
  sync: Endpoint | null
}

/** The `/config.json` a client fetches at start: everything it needs to connect. */
export function clientConfig(ctx: ServerContext) {
  const { config } = ctx
  const iceServers: IceServer[] = config.iceServers.map((urls) => ({ urls }))
  if (config.turnSecret && config.turnUrl.length) iceServers.push(turnCredentials(config.turnUrl, config.turnSecret, config.turnTtl))
  return { signaling: ['/signal'], iceServers, backup: config.backup, syncUrl: '/sync', auth: Boolean(config.authSecret) }
}

function clientAddress(ctx: ServerContext, req: IncomingMessage): string {
  if (ctx.config.trustProxy) {
    const fwd = req.headers['x-forwarded-for']
    const first = (Array.isArray(fwd) ? fwd[0] : fwd)?.split(',')[0]?.trim()
    if (first) return first
  }
  return req.socket.remoteAddress ?? 'unknown'
}

/** The request target as a URL, or null when it does not parse (e.g. `//`). */
function parseTarget(target: string | undefined): URL | null {
  try {
    return new URL(target ?? '/', 'http://x')
  } catch {
    return null
  }
}

function json(res: ServerResponse, status: number, body: unknown, cache = 'no-store'): void {
  const text = JSON.stringify(body)
  res.writeHead(status, { 'Content-Type': 'application/json; charset=utf-8', 'Cache-Control': cache, 'Content-Length': Buffer.byteLength(text) })
  res.end(text)
}

/**
 * The one HTTP server: `/healthz`, `/metrics`, `/config.json`, the built
 * client, and WebSocket upgrades routed by path to `/signal` and `/sync/<id>`
 * (after the per-address connection cap; over it the upgrade gets HTTP 429).
 */
export function createHttpServer(ctx: ServerContext, deps: HttpDeps): Server {
  const clientDir = resolve(ctx.config.clientDir)
  const perIp = new Map<string, number>()

  const server = createServer((req, res) => {
    const url = parseTarget(req.url)
    if (!url) {
      res.writeHead(400, { 'Content-Type': 'text/plain; charset=utf-8' }).end('bad request target\n')
      return
    }
    if (req.method !== 'GET' && req.method !== 'HEAD') {
      res.writeHead(405, { Allow: 'GET, HEAD' }).end()
      return
    }
    switch (url.pathname) {
      case '/healthz':
        deps.store.checkWritable().then(
          () => json(res, 200, { ok: true, storage: 'writable' }),
          (err: Error) => {
            ctx.metrics.storageErrors.inc()
            json(res, 503, { ok: false, storage: 'unwritable', error: err.message })
          },
        )
        return
      case '/metrics':
        ctx.metrics.registry.metrics().then((text) => {
          res.writeHead(200, { 'Content-Type': ctx.metrics.registry.contentType, 'Cache-Control': 'no-store' })
          res.end(text)
        })
        return
      case '/config.json':
        json(res, 200, clientConfig(ctx))
        return
    }
    if (serveClient(clientDir, req, res, url.pathname)) return
    if (!existsSync(resolve(clientDir, 'index.html'))) {
      res.writeHead(503, { 'Content-Type': 'text/plain; charset=utf-8' }).end('murmur: the client is not built; run `npm run build` (npm start does it for you)\n')
      return
    }
    if (!/\.[^/]*$/.test(url.pathname)) {
      // An unknown page (no file extension): the app itself, still a 404, so its own not-found view offers a way home.
      const page = readFileSync(resolve(clientDir, 'index.html'))
      res.writeHead(404, { 'Content-Type': 'text/html; charset=utf-8', 'Cache-Control': 'no-cache', 'Content-Length': page.length })
      res.end(req.method === 'HEAD' ? undefined : page)
      return
    }
    res.writeHead(404, { 'Content-Type': 'text/plain; charset=utf-8' }).end('not found\n')
  })

  server.on('upgrade', (req, socket, head) => {
    socket.on('error', () => socket.destroy())
    const url = parseTarget(req.url)
    const endpoint = !url ? null : url.pathname === '/signal' ? deps.signaling : url.pathname.startsWith('/sync/') ? deps.sync : null
    if (!endpoint || !url) {
      socket.end('HTTP/1.1 404 Not Found\r\nConnection: close\r\nContent-Length: 0\r\n\r\n')
      return
    }
    const ip = clientAddress(ctx, req)
    const open = perIp.get(ip) ?? 0
    if (open >= ctx.config.maxConnectionsPerIp) {
      ctx.metrics.closes.inc({ endpoint: url.pathname === '/signal' ? 'signal' : 'sync', code: '429' })
      socket.end('HTTP/1.1 429 Too Many Requests\r\nConnection: close\r\nContent-Length: 0\r\n\r\n')
      return
    }
    perIp.set(ip, open + 1)
    socket.once('close', () => {
      const n = (perIp.get(ip) ?? 1) - 1
      if (n <= 0) perIp.delete(ip)
      else perIp.set(ip, n)
    })
    endpoint.handleUpgrade(req, socket, head, url)
  })
  return server
}
