import { createServer, type Server, type ServerResponse } from 'node:http'
import { existsSync, readFileSync } from 'node:fs'
import { resolve } from 'node:path'
import { clientAddress } from './client-address.ts'
import { limitConnections, requestTimeouts } from './connection-limits.ts'
import type { ServerContext } from './context.ts'
import type { Endpoint } from './endpoint.ts'
import { healthCheck } from './health.ts'
import type { Fanout } from './fanout/fanout.ts'
import { bearerAuthorized, setSecurityHeaders } from './security-headers.ts'
import { serveClient } from './static.ts'
import type { Store } from './store/store.ts'
import type { LogStore } from './store/log-store.ts'
import { isValidDocId } from '../src/protocol/ids.ts'
import { turnCredentials, type IceServer } from './turn.ts'
import { claimedDoc, roomSecret, verifyToken, type Grant } from './auth.ts'

/** What the HTTP layer routes to. */
export interface HttpDeps {
  store: Store
  signaling: Endpoint
  /** Absent when backup is switched off. */
  sync: Endpoint | null
  /** Private documents' encrypted logs (`/log/<docId>`); absent when backup is off. */
  log?: Endpoint | null
  /** Answers `GET /log/<docId>`: whether the id is a private document. */
  logStore?: LogStore
  /** The link to other instances; absent or local for a single instance. */
  fanout?: Pick<Fanout, 'healthy'>
}

/**
 * The `/config.json` a client fetches at start: everything it needs to
 * connect. With `--auth-secret`, a request carrying a valid `?token=` also
 * learns its `access`, and a read-write token gets the document's WebRTC
 * `roomSecret` and TURN credentials (valid until the token expires at the
 * latest); without a valid read-write token there are no TURN credentials.
 */
export function clientConfig(ctx: ServerContext, token: string | null = null, now = Date.now()) {
  const { config } = ctx
  const iceServers: IceServer[] = config.iceServers.map((urls) => ({ urls }))
  const base = { signaling: ['/signal'], iceServers, backup: config.backup, syncUrl: '/sync', auth: Boolean(config.authSecret) }
  const turn = (ttl: number) => {
    if (config.turnSecret && config.turnUrl.length && ttl > 0) iceServers.push(turnCredentials(config.turnUrl, config.turnSecret, ttl, now))
  }
  if (!config.authSecret) {
    turn(config.turnTtl)
    return base
  }
  if (!token) return base
  let grant: Grant
  try {
    grant = verifyToken(config.authSecret, token, claimedDoc(token), now)
  } catch {
    return { ...base, access: 'none' as const }
  }
  if (grant.mode !== 'rw') return { ...base, access: grant.mode }
  turn(Math.min(config.turnTtl, grant.exp - Math.floor(now / 1000)))
  return { ...base, access: grant.mode, roomSecret: roomSecret(config.authSecret, grant.doc) }
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
 * Every response carries the security headers; connections are capped at
 * accept and half-sent requests time out (connection-limits.ts).
 */
export function createHttpServer(ctx: ServerContext, deps: HttpDeps): Server {
  const clientDir = resolve(ctx.config.clientDir)
  const perIp = new Map<string, number>()
  const storageWritable = healthCheck(ctx, deps.store)

  const server = createServer(requestTimeouts(ctx), (req, res) => {
    setSecurityHeaders(res, ctx.config.contentSecurityPolicy)
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
        void storageWritable().then((writable) => {
          const fanout = deps.fanout ? (deps.fanout.healthy() ? 'up' : 'down') : undefined
          const ok = writable && fanout !== 'down'
          json(res, ok ? 200 : 503, { ok, storage: writable ? 'writable' : 'unwritable', ...(fanout && { fanout }) })
        })
        return
      case '/metrics':
        if (!bearerAuthorized(req, ctx.config.metricsToken)) {
          res.writeHead(401, { 'WWW-Authenticate': 'Bearer', 'Content-Type': 'text/plain; charset=utf-8' }).end('unauthorized\n')
          return
        }
        ctx.metrics.registry.metrics().then((text) => {
          res.writeHead(200, { 'Content-Type': ctx.metrics.registry.contentType, 'Cache-Control': 'no-store' })
          res.end(text)
        })
        return
      case '/config.json':
        json(res, 200, clientConfig(ctx, url.searchParams.get('token')))
        return
    }
    if (url.pathname.startsWith('/log/') && deps.logStore) {
      // Whether a docId is a private document (so a keyless link can say so); nothing else about it.
      const docId = url.pathname.slice('/log/'.length)
      if (!isValidDocId(docId)) return json(res, 404, { error: 'invalid document id' })
      void deps.logStore.exists(docId).then(
        (exists) => json(res, 200, { private: exists }),
        () => json(res, 503, { error: 'storage unavailable' }),
      )
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
    const endpoint = !url ? null : url.pathname === '/signal' ? deps.signaling : url.pathname.startsWith('/sync/') ? deps.sync : url.pathname.startsWith('/log/') ? (deps.log ?? null) : null
    if (!endpoint || !url) {
      socket.end('HTTP/1.1 404 Not Found\r\nConnection: close\r\nContent-Length: 0\r\n\r\n')
      return
    }
    const ip = clientAddress(ctx.config, req)
    if (ctx.loadGuard?.overloaded) {
      // Cheaper than a handshake and a close frame; clients retry with backoff.
      ctx.metrics.overloadRefused.inc()
      socket.end('HTTP/1.1 503 Service Unavailable\r\nRetry-After: 2\r\nConnection: close\r\nContent-Length: 0\r\n\r\n')
      return
    }
    const open = perIp.get(ip) ?? 0
    if (open >= ctx.config.maxConnectionsPerIp) {
      ctx.metrics.closes.inc({ endpoint: url.pathname === '/signal' ? 'signal' : url.pathname.startsWith('/log/') ? 'log' : 'sync', code: '429' })
      socket.end('HTTP/1.1 429 Too Many Requests\r\nConnection: close\r\nContent-Length: 0\r\n\r\n')
      return
    }
    perIp.set(ip, open + 1)
    socket.once('close', () => {
      const n = (perIp.get(ip) ?? 1) - 1
      if (n <= 0) perIp.delete(ip)
      else perIp.set(ip, n)
    })
    endpoint.handleUpgrade(req, socket, head, url, ip)
  })
  limitConnections(ctx, server)
  return server
}
