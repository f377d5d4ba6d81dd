import type { Server } from 'node:http'
import type { ServerContext } from './context.ts'

/** How often Node looks for requests past their headers/request timeout (its default, 30 s, would let them live that much longer). */
export const TIMEOUT_CHECK_INTERVAL_MS = 1000

/** The `http.createServer` options that cut half-sent requests: `--headers-timeout-ms`, `--request-timeout-ms`. */
export function requestTimeouts(ctx: ServerContext) {
  const { headersTimeoutMs, requestTimeoutMs } = ctx.config
  return {
    headersTimeout: headersTimeoutMs,
    // Node requires requestTimeout ≥ headersTimeout (0 would switch it off).
    requestTimeout: Math.max(requestTimeoutMs, headersTimeoutMs),
    connectionsCheckingInterval: Math.min(TIMEOUT_CHECK_INTERVAL_MS, headersTimeoutMs || TIMEOUT_CHECK_INTERVAL_MS),
  }
}

/**
 * Caps open TCP connections at accept, before a byte is read: in total
 * (`--max-connections`, Node closes the excess) and per peer address
 * (`--max-sockets-per-ip`; not behind `--trust-proxy`, where the proxy is the
 * only peer). A refused socket is destroyed at once and counted in
 * `murmur_closed_by_server_total{endpoint="tcp"}`.
 */
export function limitConnections(ctx: ServerContext, server: Server): void {
  const { maxConnections, maxSocketsPerIp, trustProxy } = ctx.config
  if (maxConnections > 0) server.maxConnections = maxConnections
  server.on('drop', () => ctx.metrics.closes.inc({ endpoint: 'tcp', code: 'max-connections' }))
  if (trustProxy || maxSocketsPerIp <= 0) return
  const perIp = new Map<string, number>()
  server.on('connection', (socket) => {
    const ip = socket.remoteAddress ?? 'unknown'
    const open = perIp.get(ip) ?? 0
    if (open >= maxSocketsPerIp) {
      ctx.metrics.closes.inc({ endpoint: 'tcp', code: 'max-sockets-per-ip' })
      socket.destroy()
      return
    }
    perIp.set(ip, open + 1)
    socket.once('close', () => {
      const n = (perIp.get(ip) ?? 1) - 1
      if (n <= 0) perIp.delete(ip)
      else perIp.set(ip, n)
    })
  })
}
