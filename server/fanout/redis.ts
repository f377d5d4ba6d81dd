/**
 * `Fanout` on Redis pub/sub (`--redis redis://…`), as Hocuspocus's Redis
 * extension does it: one connection publishes, one subscribes; a channel is
 * subscribed while this instance has at least one local subscriber to it.
 *
 * Every payload is prefixed with this instance's random 8-byte id, so the
 * copy Redis echoes back to its publisher is dropped and receivers know who
 * sent it. Each instance also publishes a heartbeat on `alive` every
 * `heartbeatMs`; an instance heard before and then silent for `goneAfterMs`
 * is reported gone (`onInstanceGone`), so presence it relayed can be dropped
 * at once instead of lingering until the awareness timeout. Redis keeps the order of
 * one publisher's messages, so updates arrive in the order they were
 * committed; a message lost while Redis was unreachable is made up by the
 * `resync` handlers, which run whenever the subscriber connection is ready
 * again. Nothing is queued while Redis is down (`enableOfflineQueue: false`):
 * memory stays bounded, and `/healthz` reports the link red.
 *
 * `ioredis` is imported here, so a single-instance server never loads it.
 */
import { randomBytes } from 'node:crypto'
import type { Logger } from 'pino'
import type { Fanout, FanoutHandlers } from './fanout.ts'

/** Options of `connectRedisFanout`. */
export interface RedisFanoutOptions {
  log: Logger
  /** Prefix of every channel name, so several clusters (or test runs) can share one Redis. Default `murmur`. */
  prefix?: string
  /** How long the first connection may take before start-up fails. Default 5000 ms. */
  connectTimeoutMs?: number
  /** Heartbeat interval (default 1000 ms) and the silence after which an instance counts as gone (default 3500 ms). */
  heartbeatMs?: number
  goneAfterMs?: number
}

const ID_BYTES = 8
/** The heartbeat channel. */
const ALIVE = 'alive'

/** Connects to Redis at `url` and returns the fan-out; rejects when Redis does not answer within `connectTimeoutMs`. */
export async function connectRedisFanout(url: string, opts: RedisFanoutOptions): Promise<Fanout> {
  const { Redis } = await import('ioredis')
  const { log } = opts
  const prefix = `${opts.prefix ?? 'murmur'}:`
  const id = randomBytes(ID_BYTES)
  const options = {
    lazyConnect: true,
    connectTimeout: opts.connectTimeoutMs ?? 5000,
    enableOfflineQueue: false,
    maxRetriesPerRequest: 0,
    retryStrategy: (times: number) => Math.min(times * 200, 2000),
  }
  const pub = new Redis(url, options)
  const sub = new Redis(url, { ...options, enableOfflineQueue: true })
  for (const [name, c] of [['publisher', pub], ['subscriber', sub]] as const) {
    c.on('error', (err: Error) => log.debug({ err: err.message, connection: name }, 'redis: connection error'))
  }
  try {
    await Promise.all([pub.connect(), sub.connect()])
  } catch (err) {
    pub.disconnect()
    sub.disconnect()
    throw new Error(`redis ${url} did not answer: ${(err as Error).message}`)
  }

  /**
   * channel (without prefix) → its local subscriptions, and what this instance
   * published on it before Redis confirmed the subscription (null once confirmed).
   */
  const channels = new Map<string, { handlers: Set<FanoutHandlers>; pending: Uint8Array[] | null }>()
  let lost = false
  /** Other instances heard from: id (hex) → when last. */
  const lastHeard = new Map<string, number>()
  const goneListeners = new Set<(from: string) => void>()
  const heartbeatMs = opts.heartbeatMs ?? 1000
  const goneAfterMs = opts.goneAfterMs ?? 3500

  function send(channel: string, payload: Uint8Array): void {
    if (pub.status !== 'ready') return
    const msg = Buffer.allocUnsafe(ID_BYTES + payload.byteLength)
    id.copy(msg, 0)
    msg.set(payload, ID_BYTES)
    pub.publish(prefix + channel, msg).catch((err: Error) => log.debug({ err: err.message }, 'redis: publish failed'))
  }

  sub.on('messageBuffer', (channelBuf: Buffer, message: Buffer) => {
    if (message.length < ID_BYTES || message.subarray(0, ID_BYTES).equals(id)) return
    const from = message.subarray(0, ID_BYTES).toString('hex')
    lastHeard.set(from, Date.now())
    const handlers = channels.get(channelBuf.toString('utf8').slice(prefix.length))?.handlers
    if (!handlers) return
    const payload = message.subarray(ID_BYTES)
    for (const h of handlers) {
      try {
        h.message(payload, from)
      } catch (err) {
        log.warn({ err: (err as Error).message }, 'redis: a fan-out message could not be handled')
      }
    }
  })
  sub.on('close', () => {
    if (!lost) log.warn('redis: link lost; instances no longer hear each other until it is back')
    lost = true
  })
  sub.on('ready', () => {
    if (!lost) return
    lost = false
    log.info({ channels: channels.size }, 'redis: link back; catching up')
    // ioredis re-subscribes on reconnect (autoResubscribe); what was missed meanwhile comes from storage.
    for (const { handlers } of channels.values()) for (const h of handlers) h.resync?.()
  })

  const heartbeat = setInterval(() => {
    send(ALIVE, new Uint8Array(0))
    const now = Date.now()
    for (const [from, at] of lastHeard) {
      if (now - at <= goneAfterMs) continue
      lastHeard.delete(from)
      log.info({ instance: from }, 'redis: an instance went silent; dropping what it spoke for')
      for (const l of goneListeners) l(from)
    }
  }, heartbeatMs)
  heartbeat.unref()

  const fanout: Fanout = {
    shared: true,
    subscribe(channel, handlers) {
      let entry = channels.get(channel)
      if (!entry) {
        const created = { handlers: new Set<FanoutHandlers>(), pending: [] as Uint8Array[] | null }
        channels.set(channel, (entry = created))
        // Publishing only once our own subscription is in place means two instances
        // joining a channel at the same moment cannot both miss the other's first
        // message (a y-webrtc announce is sent once): Redis orders the SUBSCRIBEs and
        // PUBLISHes, so the later of the two subscribers hears the earlier publisher.
        const confirmed = () => {
          const queued = created.pending ?? []
          created.pending = null
          for (const payload of queued) send(channel, payload)
        }
        sub.subscribe(prefix + channel).then(confirmed, (err: Error) => {
          log.warn({ err: err.message }, 'redis: subscribe failed')
          confirmed()
        })
      }
      const mine = entry
      mine.handlers.add(handlers)
      let open = true
      return {
        close() {
          if (!open) return
          open = false
          mine.handlers.delete(handlers)
          if (mine.handlers.size === 0 && channels.get(channel) === mine) {
            channels.delete(channel)
            sub.unsubscribe(prefix + channel).catch(() => {})
          }
        },
      }
    },
    publish(channel, payload) {
      const pending = channels.get(channel)?.pending
      if (pending) pending.push(payload)
      else send(channel, payload)
    },
    onInstanceGone(listener) {
      goneListeners.add(listener)
      return () => goneListeners.delete(listener)
    },
    healthy: () => pub.status === 'ready' && sub.status === 'ready',
    async close() {
      clearInterval(heartbeat)
      channels.clear()
      pub.disconnect()
      sub.disconnect()
    },
  }
  // Heartbeats only need to be heard: `lastHeard` is updated for every message.
  fanout.subscribe(ALIVE, { message() {} })
  return fanout
}
