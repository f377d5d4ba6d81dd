/**
 * WebRTC signaling at `/signal`: y-webrtc's JSON pub/sub protocol, exactly as
 * its reference server (`y-webrtc/bin/server.js`) speaks it, so stock y-webrtc
 * clients work unchanged — but hardened against hostile clients.
 *
 * Protocol (client → server, one JSON object per text frame):
 *
 * - `{type:'subscribe', topics: string[]}` — join topics (y-webrtc rooms).
 * - `{type:'unsubscribe', topics: string[]}` — leave them.
 * - `{type:'publish', topic: string, ...}` — the whole message is sent to every
 *   subscriber of `topic`, the sender included (as the reference does), with
 *   `clients: <subscriber count>` added. The sender need not be subscribed.
 * - `{type:'ping'}` — answered with `{type:'pong'}`.
 * - Any other string `type` is ignored (forward compatible, as the reference),
 *   though it still counts toward the rate limit.
 *
 * A published message is serialized once: the sender's own JSON text (already
 * validated by `JSON.parse`) with `,"clients":n}` spliced over its closing
 * brace, framed once as a WebSocket text frame, and that one buffer is
 * written to every subscriber's TCP socket. (These are the bytes `ws` would
 * write; it is safe beside `ws`'s own writes because permessage-deflate is
 * off and `ws` writes each frame of its own in one synchronous call, so frames
 * never interleave mid-frame; a socket is written only while `OPEN`, never
 * after `ws` sent a close frame.) Subscriber sockets are corked for the rest
 * of the event-loop turn, so a burst of publishes reaches each subscriber in
 * one write system call instead of one per message.
 *
 * Bad input closes only the socket that sent it (via `closeWith`, logged once):
 *
 * | code | name         | when                                                                                   |
 * | ---- | ------------ | -------------------------------------------------------------------------------------- |
 * | 1001 | goingAway    | server shutting down (`close()`)                                                       |
 * | 1006 | (none)       | keep-alive: no pong to the previous ping after `keepAliveMs` (terminated, no frame)     |
 * | 1002 | (ws)         | broken WebSocket framing: unmasked frame, reserved bits, bad opcode (sent by `ws`)      |
 * | 1007 | (ws)         | a text frame that is not valid UTF-8 (sent by `ws` itself)                             |
 * | 1009 | tooBig       | a frame above `maxSignalFrameBytes` (sent by `ws` itself)                              |
 * | 1013 | (try later)  | slow consumer: more than {@link maxBufferedFactor} × `maxSignalFrameBytes` unsent       |
 * | 4400 | badMessage   | binary frame; not JSON; not an object with a string `type`; `topics` not an array of    |
 * |      |              | strings; `topic` not a string; subscribing or publishing to a topic longer than         |
 * |      |              | `maxTopicLength` (UTF-16 code units)                                                    |
 * | 4401 | unauthorized | auth on: missing/bad/expired `?token=`, a read-only (`r`) token, a token that expires   |
 * |      |              | while connected, or subscribe/publish to a topic other than the token's `doc`           |
 * | 4429 | tooMany      | a subscribe that would leave the socket in more than `maxTopicsPerSocket` topics       |
 * | 4529 | flood        | more than `maxSignalMessagesPerSecond` messages per second (bursts of twice that)      |
 *
 * Topic names are arbitrary strings (`__proto__`, `constructor` … are ordinary
 * topics: only `Map`/`Set` hold them). A topic whose last subscriber leaves is
 * deleted; a closing socket leaves all its topics. With `--redis`, a topic with
 * local subscribers is also subscribed on Redis (`fanout/redis.ts`): publishes
 * reach the subscribers of every instance.
 *
 * Auth (when `config.authSecret` is set): the upgrade URL must carry
 * `?token=<token>` (see `auth.ts`). The token's signature and expiry are checked
 * at upgrade; a bad token still completes the WebSocket handshake and the socket
 * is then closed at once with 4401 — browsers cannot see the HTTP status of a
 * refused upgrade (only 1006), whereas 4401 tells the client app to stop
 * retrying and ask for a token. An accepted socket may subscribe and publish
 * only to the topic equal to the token's `doc` (the y-webrtc room name is the
 * document id); unsubscribing from anything is a harmless no-op. Read-only
 * (`r`) tokens are refused with 4401: peers exchange edits directly, so a
 * reader in the mesh could hand edits to a writer who backs them up. Readers
 * get live updates from `/sync`'s relay, which refuses their writes; and
 * writers' peers additionally encrypt signaling with a room secret only
 * read-write holders receive (`/config.json?token=`).
 */
import type { IncomingMessage } from 'node:http'
import type { Duplex } from 'node:stream'
import { WebSocketServer, type WebSocket } from 'ws'
import { CloseCode } from '../src/protocol/messages.ts'
import { AuthError, claimedDoc, verifyToken, type Grant } from './auth.ts'
import type { ServerContext } from './context.ts'
import { localFanout, type Fanout, type FanoutSubscription } from './fanout/fanout.ts'
import { closeAtExpiry, closeWith, keepAlive, tokenBucket, type Endpoint, wsErrorCloseCode } from './endpoint.ts'
import { turnBatch } from './turn-batch.ts'

/** Name of this endpoint in metrics labels and logs. */
const ENDPOINT = 'signal'

/**
 * A subscriber with more than this many times `maxSignalFrameBytes` queued but
 * unsent (it stopped reading) is closed with 1013, so one stalled peer cannot
 * make the server buffer a busy room's traffic without bound. 64 × 64 KiB = 4 MiB
 * is far above what a healthy browser ever has in flight.
 */
export const maxBufferedFactor = 64

/** Close code for a subscriber that stopped reading (standard "try again later"). */
const SLOW_CONSUMER = 1013

const PONG = Buffer.from('{"type":"pong"}')
const TEXT = { binary: false } as const

/** Per-socket state. A class, so every peer shares one hidden class and stays small. */
class Peer {
  /** Topics this socket is subscribed to. */
  readonly topics = new Set<string>()
  closed = false
  constructor(
    readonly ws: WebSocket,
    /** The TCP socket under `ws`, for corking. */
    readonly socket: Duplex,
    readonly bucket: { take(): boolean },
    /** With auth on, the only topic this socket may use; otherwise undefined. */
    readonly doc: string | undefined,
  ) {}
}

/** Why a message is rejected: close code and a detail for the log. */
class Reject {
  constructor(
    readonly code: number,
    readonly detail: string,
  ) {}
}

/** Index of the closing `}` of a JSON object text, skipping trailing whitespace. */
function closingBrace(buf: Buffer): number {
  let i = buf.length - 1
  while (i >= 0 && (buf[i] === 0x20 || buf[i] === 0x0a || buf[i] === 0x0d || buf[i] === 0x09)) i--
  return i
}

/** `WebSocket.OPEN`. */
const OPEN = 1

/**
 * One unmasked, unfragmented server-to-client text frame (RFC 6455 §5.2)
 * whose payload is `raw[0, end)` followed by the ASCII `tail`: header,
 * payload and splice in a single buffer.
 */
function textFrame(raw: Buffer, end: number, tail: string): Buffer {
  const len = end + tail.length
  const hdr = len < 126 ? 2 : len < 65536 ? 4 : 10
  const frame = Buffer.allocUnsafe(hdr + len)
  frame[0] = 0x81 // FIN, opcode 1 (text)
  if (hdr === 2) frame[1] = len
  else if (hdr === 4) {
    frame[1] = 126
    frame.writeUInt16BE(len, 2)
  } else {
    frame[1] = 127
    frame.writeUInt32BE(0, 2)
    frame.writeUInt32BE(len, 6)
  }
  raw.copy(frame, hdr, 0, end)
  frame.write(tail, hdr + end, 'latin1')
  return frame
}

/**
 * Creates the `/signal` endpoint. `http.ts` hands it upgrades of that path
 * (after its per-address connection limit); see the module comment for the
 * protocol, close codes and auth.
 */
export function createSignaling(ctx: ServerContext, fanout: Fanout = localFanout): Endpoint {
  const { config, log, metrics } = ctx
  const wss = new WebSocketServer({ noServer: true, maxPayload: config.maxSignalFrameBytes, perMessageDeflate: false })
  const stopKeepAlive = keepAlive(wss, config.keepAliveMs)
  const maxBuffered = maxBufferedFactor * config.maxSignalFrameBytes
  const { maxTopicsPerSocket, maxTopicLength } = config

  /** topic → subscribers. Empty topics are deleted at once. */
  const topics = new Map<string, Set<Peer>>()
  /** topic → its subscription to the other instances' publishes (while it has local subscribers). */
  const remote = new Map<string, FanoutSubscription>()

  const connections = metrics.connections.labels({ endpoint: ENDPOINT })
  const batch = turnBatch({
    messagesIn: metrics.messages.labels({ endpoint: ENDPOINT, direction: 'in' }),
    messagesOut: metrics.messages.labels({ endpoint: ENDPOINT, direction: 'out' }),
    bytesIn: metrics.bytes.labels({ endpoint: ENDPOINT, direction: 'in' }),
    bytesOut: metrics.bytes.labels({ endpoint: ENDPOINT, direction: 'out' }),
  })
  metrics.topics.set(0)
  // Server-wide overload (load-guard.ts): no socket is read until it recovers.
  ctx.loadGuard?.onChange((overloaded) => {
    for (const ws of wss.clients) overloaded ? ws.pause() : ws.resume()
  })

  function leave(peer: Peer, topic: string): void {
    const subs = topics.get(topic)
    if (subs) {
      subs.delete(peer)
      if (subs.size === 0) {
        topics.delete(topic)
        remote.get(topic)?.close()
        remote.delete(topic)
      }
    }
    peer.topics.delete(topic)
  }

  /** Leaves every topic; idempotent. */
  function cleanup(peer: Peer): void {
    if (peer.closed) return
    peer.closed = true
    for (const topic of peer.topics) leave(peer, topic)
    metrics.topics.set(topics.size)
  }

  function reject(peer: Peer, code: number, detail: string): void {
    cleanup(peer)
    closeWith(ctx, ENDPOINT, peer.ws, code, detail)
  }

  /** Checks a topic name against type, length and the token's document. */
  function checkTopic(peer: Peer, topic: unknown): Reject | undefined {
    if (typeof topic !== 'string') return new Reject(CloseCode.badMessage, 'topic is not a string')
    if (topic.length > maxTopicLength) return new Reject(CloseCode.badMessage, `topic longer than ${maxTopicLength}`)
    if (peer.doc !== undefined && topic !== peer.doc) return new Reject(CloseCode.unauthorized, 'topic is not the token\'s document')
    return undefined
  }

  function subscribe(peer: Peer, list: unknown): Reject | undefined {
    if (!Array.isArray(list)) return new Reject(CloseCode.badMessage, 'topics is not an array')
    let added = 0
    const fresh = new Set<string>()
    for (const topic of list) {
      const bad = checkTopic(peer, topic)
      if (bad) return bad
      if (!peer.topics.has(topic) && !fresh.has(topic)) {
        fresh.add(topic)
        if (peer.topics.size + ++added > maxTopicsPerSocket) return new Reject(CloseCode.tooMany, `more than ${maxTopicsPerSocket} topics`)
      }
    }
    for (const topic of fresh) {
      let subs = topics.get(topic)
      if (!subs) {
        topics.set(topic, (subs = new Set()))
        remote.set(topic, fanout.subscribe(`signal:${topic}`, { message: (raw) => deliver(topic, raw) }))
      }
      subs.add(peer)
      peer.topics.add(topic)
    }
    if (added) metrics.topics.set(topics.size)
    return undefined
  }

  function unsubscribe(peer: Peer, list: unknown): Reject | undefined {
    if (!Array.isArray(list)) return new Reject(CloseCode.badMessage, 'topics is not an array')
    for (const topic of list) if (typeof topic !== 'string') return new Reject(CloseCode.badMessage, 'topic is not a string')
    for (const topic of list) if (peer.topics.has(topic)) leave(peer, topic)
    metrics.topics.set(topics.size)
    return undefined
  }

  function publish(peer: Peer, topic: unknown, raw: Buffer): Reject | undefined {
    const bad = checkTopic(peer, topic)
    if (bad) return bad
    fanout.publish(`signal:${topic as string}`, raw)
    deliver(topic as string, raw)
    return undefined
  }

  /** Sends a validated publish (from a local socket or another instance) to this instance's subscribers of `topic`. */
  function deliver(topic: string, raw: Buffer): void {
    const subs = topics.get(topic)
    if (!subs) return
    // Serialize once: the sender's validated JSON with `clients` spliced in.
    // A `clients` the sender put in itself comes first, so ours wins on parse.
    const tail = `,"clients":${subs.size}}`
    const frame = textFrame(raw, closingBrace(raw), tail)
    let sent = 0
    for (const sub of subs) {
      const ws = sub.ws
      if (ws.readyState !== OPEN) continue
      if (ws.bufferedAmount > maxBuffered) {
        slowConsumer(sub)
        continue
      }
      batch.cork(sub.socket)
      sub.socket.write(frame)
      sent++
    }
    batch.sent(sent, sent * frame.length)
  }

  function slowConsumer(peer: Peer): void {
    cleanup(peer)
    metrics.closes.inc({ endpoint: ENDPOINT, code: String(SLOW_CONSUMER) })
    log.warn({ endpoint: ENDPOINT, code: SLOW_CONSUMER, detail: `more than ${maxBuffered} bytes unsent` }, 'closing socket')
    const ws = peer.ws
    ws.close(SLOW_CONSUMER, 'slow consumer')
    setTimeout(() => ws.terminate(), 2000).unref()
  }

  function onMessage(peer: Peer, data: Buffer, isBinary: boolean): void {
    if (peer.closed) return
    batch.received(data.length)
    if (!peer.bucket.take()) return reject(peer, CloseCode.flood, `more than ${config.maxSignalMessagesPerSecond} messages/s`)
    if (isBinary) return reject(peer, CloseCode.badMessage, 'binary frame')
    let msg: unknown
    try {
      msg = JSON.parse(data.toString('utf8'))
    } catch {
      return reject(peer, CloseCode.badMessage, 'not JSON')
    }
    if (typeof msg !== 'object' || msg === null || Array.isArray(msg)) return reject(peer, CloseCode.badMessage, 'not a JSON object')
    const m = msg as { type?: unknown; topics?: unknown; topic?: unknown }
    if (typeof m.type !== 'string') return reject(peer, CloseCode.badMessage, 'type is not a string')
    let bad: Reject | undefined
    switch (m.type) {
      case 'publish':
        bad = publish(peer, m.topic, data)
        break
      case 'subscribe':
        bad = subscribe(peer, m.topics)
        break
      case 'unsubscribe':
        bad = unsubscribe(peer, m.topics)
        break
      case 'ping':
        peer.ws.send(PONG, TEXT)
        batch.sent(1, PONG.length)
        break
      default:
      // Unknown types are ignored, like the reference server does.
    }
    if (bad) reject(peer, bad.code, bad.detail)
  }

  function onConnection(ws: WebSocket, socket: Duplex, doc: string | undefined, authError: string | undefined): void {
    connections.inc()
    const peer = new Peer(ws, socket, tokenBucket(config.maxSignalMessagesPerSecond), doc)
    ws.on('close', () => {
      connections.dec()
      cleanup(peer)
    })
    ws.on('error', (err: Error & { code?: string }) => {
      // ws has already sent its own close frame (1009 too big, 1007 bad UTF-8, 1002 protocol).
      const code = wsErrorCloseCode(err)
      if (!peer.closed) {
        metrics.closes.inc({ endpoint: ENDPOINT, code: String(code) })
        log.warn({ endpoint: ENDPOINT, code, detail: err.message }, 'closing socket')
      }
      cleanup(peer)
    })
    if (authError !== undefined) return reject(peer, CloseCode.unauthorized, authError)
    ws.on('message', (data: Buffer, isBinary: boolean) => onMessage(peer, data, isBinary))
  }

  return {
    handleUpgrade(req: IncomingMessage, socket: Duplex, head: Buffer, url: URL): void {
      let doc: string | undefined
      let authError: string | undefined
      let grant: Grant | undefined
      if (config.authSecret) {
        const token = url.searchParams.get('token')
        try {
          doc = (grant = verifyToken(config.authSecret, token, token ? claimedDoc(token) : '')).doc
          // Peers exchange edits directly: a reader in the mesh could send them to a
          // writer who backs them up. Read-only holders use /sync's relay instead.
          if (grant.mode !== 'rw') authError = 'read-only access does not join the peer mesh'
        } catch (err) {
          authError = err instanceof AuthError ? err.message : 'bad token'
        }
      }
      wss.handleUpgrade(req, socket, head, (ws) => {
        closeAtExpiry(ctx, ENDPOINT, ws, grant)
        onConnection(ws, socket, doc, authError)
      })
    },

    async close(): Promise<void> {
      stopKeepAlive()
      const closed: Promise<void>[] = []
      for (const ws of wss.clients) {
        closed.push(new Promise((res) => ws.once('close', () => res())))
        ws.close(CloseCode.goingAway, 'goingAway')
      }
      // Clients that ignore the close handshake are cut off after a second.
      const timer = setTimeout(() => {
        for (const ws of wss.clients) ws.terminate()
      }, 1000)
      await Promise.all(closed)
      clearTimeout(timer)
      await new Promise<void>((res) => wss.close(() => res()))
    },
  }
}
