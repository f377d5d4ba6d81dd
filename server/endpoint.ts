import type { IncomingMessage } from 'node:http'
import type { Duplex } from 'node:stream'
import type { WebSocket, WebSocketServer } from 'ws'
import { CloseCode } from '../src/protocol/messages.ts'
import type { Grant } from './auth.ts'
import type { ServerContext } from './context.ts'

/** A WebSocket endpoint mounted at a path by `http.ts`. */
export interface Endpoint {
  /** Takes over an HTTP upgrade whose path belongs to this endpoint; `ip` is the client address (after `--trust-proxy`). */
  handleUpgrade(req: IncomingMessage, socket: Duplex, head: Buffer, url: URL, ip: string): void
  /** Closes every socket with 1001 (going away) and flushes pending work. */
  close(): Promise<void>
}

/** Reason text for each close code, sent in the close frame. */
const reasons: Record<number, string> = Object.fromEntries(Object.entries(CloseCode).map(([name, code]) => [code, name]))

/**
 * Closes `ws` with `code`, logs it once at warn level (bad clients are the
 * operator's business, not an error) and counts it.
 */
export function closeWith(ctx: ServerContext, endpoint: string, ws: WebSocket, code: number, detail: string): void {
  if (ws.readyState !== ws.OPEN) return
  ctx.metrics.closes.inc({ endpoint, code: String(code) })
  ctx.log.warn({ endpoint, code, reason: reasons[code], detail }, 'closing socket')
  ws.close(code, reasons[code] ?? 'error')
  // A client that ignores the close handshake is cut off after a grace period.
  setTimeout(() => ws.terminate(), 2000).unref()
}

/**
 * Token bucket: `rate` messages per second with bursts up to twice that.
 * `take()` returns false when the sender is over the limit.
 */
export function tokenBucket(rate: number, now = () => performance.now()) {
  const capacity = rate * 2
  let tokens = capacity
  let last = now()
  return {
    take(): boolean {
      const t = now()
      tokens = Math.min(capacity, tokens + ((t - last) / 1000) * rate)
      last = t
      if (tokens < 1) return false
      tokens -= 1
      return true
    },
  }
}

/**
 * A byte budget: `rate` bytes per second after a burst of `burst` bytes.
 * A reader asks `delay()` before taking a frame (0: go ahead; else the ms
 * until the budget is out of debt) and then `spend`s the frame's bytes, which
 * may leave the budget in debt: one frame may overdraw it, the next waits.
 */
export function byteBudget(rate: number, burst: number, now = () => performance.now()) {
  let tokens = burst
  let last = now()
  const refill = () => {
    const t = now()
    tokens = Math.min(burst, tokens + ((t - last) / 1000) * rate)
    last = t
  }
  return {
    delay(): number {
      refill()
      return tokens >= 0 ? 0 : Math.ceil((-tokens / rate) * 1000)
    },
    spend(bytes: number): void {
      refill()
      tokens -= bytes
    },
  }
}

/**
 * One `byteBudget` per client address, shared by all of that address's
 * sockets: `acquire` when a socket opens, `release` when it closes (the
 * budget is forgotten with the address's last socket).
 */
export function addressBudgets(rate: number, burst: number) {
  const budgets = new Map<string, { budget: ReturnType<typeof byteBudget>; sockets: number }>()
  return {
    acquire(ip: string): ReturnType<typeof byteBudget> {
      let entry = budgets.get(ip)
      if (!entry) budgets.set(ip, (entry = { budget: byteBudget(rate, burst), sockets: 0 }))
      entry.sockets++
      return entry.budget
    },
    release(ip: string): void {
      const entry = budgets.get(ip)
      if (entry && --entry.sockets <= 0) budgets.delete(ip)
    },
  }
}

/**
 * Pings every socket of `wss` each `intervalMs`; a socket that has not
 * answered the previous ping is terminated. Returns a function that stops it.
 *
 * Sockets are found through `wss.clients` on each tick, so this works for
 * endpoints that take sockets from `wss.handleUpgrade` without emitting
 * 'connection'. A socket first seen on a tick is pinged and has until the
 * next tick to answer.
 */
export function keepAlive(wss: WebSocketServer, intervalMs: number): () => void {
  const watched = new WeakSet<WebSocket>()
  const awaitingPong = new WeakSet<WebSocket>()
  const timer = setInterval(() => {
    for (const ws of wss.clients) {
      if (!watched.has(ws)) {
        watched.add(ws)
        ws.on('pong', () => awaitingPong.delete(ws))
      } else if (awaitingPong.has(ws)) {
        ws.terminate()
        continue
      }
      awaitingPong.add(ws)
      ws.ping()
    }
  }, intervalMs)
  timer.unref()
  return () => clearInterval(timer)
}

/**
 * The close code `ws` itself sent when it emits `error` for a bad frame:
 * 1009 (frame above maxPayload), 1007 (invalid UTF-8), else 1002 (protocol).
 */
export function wsErrorCloseCode(err: Error & { code?: string }): number {
  return err.code === 'WS_ERR_UNSUPPORTED_MESSAGE_LENGTH' ? CloseCode.tooBig : err.code === 'WS_ERR_INVALID_UTF8' ? 1007 : 1002
}

/** setTimeout's longest delay; a later expiry is reached in steps. */
const MAX_TIMER_MS = 2 ** 31 - 1

/**
 * Closes `ws` with 4401 when `grant` expires, so a token is honoured only
 * until its `exp`, not for as long as the socket it opened stays up. The timer
 * is unref'd and cleared when the socket closes. No grant (auth off): nothing.
 */
export function closeAtExpiry(ctx: ServerContext, endpoint: string, ws: WebSocket, grant: Pick<Grant, 'exp'> | null | undefined): void {
  if (!grant) return
  let timer: NodeJS.Timeout
  const arm = () => {
    const left = grant.exp * 1000 - Date.now()
    timer = setTimeout(left > MAX_TIMER_MS ? arm : () => closeWith(ctx, endpoint, ws, CloseCode.unauthorized, 'token expired'), Math.max(0, Math.min(left, MAX_TIMER_MS)))
    timer.unref()
  }
  arm()
  ws.once('close', () => clearTimeout(timer))
}
