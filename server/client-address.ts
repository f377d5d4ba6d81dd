import type { IncomingMessage } from 'node:http'
import type { Config } from './config.ts'

/**
 * The address a request comes from. With `--trust-proxy`, the X-Forwarded-For
 * entry `trustProxyHops` places from the right: each proxy appends the address
 * it saw, so that entry is the one the outermost trusted proxy appended and
 * everything left of it is whatever the client chose to send. With fewer
 * entries than hops, the leftmost is used (as Express does).
 */
export function clientAddress(config: Pick<Config, 'trustProxy' | 'trustProxyHops'>, req: IncomingMessage): string {
  if (config.trustProxy) {
    const fwd = req.headers['x-forwarded-for']
    const entries = (Array.isArray(fwd) ? fwd.join(',') : (fwd ?? '')).split(',').map((s) => s.trim()).filter(Boolean)
    const hops = Math.max(1, config.trustProxyHops)
    const chosen = entries[Math.max(0, entries.length - hops)]
    if (chosen) return chosen
  }
  return req.socket.remoteAddress ?? 'unknown'
}
