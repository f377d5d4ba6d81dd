/**
 * A side channel on the WebRTC mesh of one document: messages of one
 * `MeshMessage` type travel on the data channels y-webrtc already opened
 * for the document, so a companion document (the version history) needs no
 * second room, no second signaling subscription and no second
 * RTCPeerConnection per peer. They are taken off each connection before
 * y-webrtc sees them (it would log unknown types and answer with an empty
 * message).
 *
 * Contract for the messages of a port: the byte after the type is a kind;
 * kind 0 is a "hello" (what this peer has). Until a handler is attached,
 * the latest hello of each peer is kept and delivered on attach; anything
 * else arriving before then is dropped (the hello exchange recovers it).
 * Sends go through the connection's stream, which waits while the data
 * channel's buffer is full; no single message may exceed `MESH_PART_BYTES`.
 * Adopting a connection also lets y-webrtc's own messages be of any size
 * (`mesh-parts.ts`: cut into parts on send, put back together here).
 */
import type { WebrtcProvider } from 'y-webrtc'
import { MeshMessage } from '../protocol/messages.ts'
import { carryWholeMessages, type PartPeer } from './mesh-parts.ts'

export { MESH_PART_BYTES } from './mesh-parts.ts'

/** What a port's user handles. */
export interface MeshHandler {
  /** `peerId`'s data channel is open (called on attach for every peer already connected). */
  connect(peerId: string): void
  /** A message of the port's type from `peerId` (the whole message, type byte included). */
  message(peerId: string, data: Uint8Array): void
  /** The connection to `peerId` closed (what was half received from it can go). */
  disconnect?(peerId: string): void
}

type Conn = NonNullable<WebrtcProvider['room']>['webrtcConns'] extends Map<string, infer C> ? C : never
interface SimplePeer extends PartPeer {
  listeners(event: 'data'): ((data: Uint8Array) => void)[]
  removeListener(event: 'data', fn: (data: Uint8Array) => void): void
  on(event: 'data', fn: (data: Uint8Array) => void): void
  once(event: 'connect' | 'close', fn: () => void): void
  writableLength?: number
}

/** The connections of one document's mesh, seen through one message type. */
export class MeshPort {
  /** The message type this port carries. */
  readonly type: number
  #conns = new Map<string, Conn>()
  #adopted = new WeakSet<object>()
  #handler: MeshHandler | null = null
  #held = new Map<string, Uint8Array>()

  constructor(type: number) {
    this.type = type
  }

  /** Takes the port's messages off a new y-webrtc connection (call from the provider's `peers` event, before it connects). */
  adopt(peerId: string, conn: Conn): void {
    const peer = conn.peer as unknown as SimplePeer
    if (this.#adopted.has(peer)) return
    this.#adopted.add(peer)
    this.#conns.set(peerId, conn)
    const parts = carryWholeMessages(peer)
    const others = peer.listeners('data')
    for (const fn of others) peer.removeListener('data', fn)
    peer.on('data', (data) => {
      if (data.byteLength === 0) return // never valid; an older client's answer to a type it does not know
      if (data[0] === MeshMessage.part) {
        const whole = parts.push(data)
        if (whole) for (const fn of others) fn(whole)
        return
      }
      if (data[0] !== this.type) {
        for (const fn of others) fn(data)
        return
      }
      if (this.#conns.get(peerId) !== conn) return
      if (this.#handler) this.#deliver(peerId, data)
      else if (data[1] === 0) this.#held.set(peerId, data)
    })
    peer.once('connect', () => {
      if (this.#conns.get(peerId) === conn) this.#handler?.connect(peerId)
    })
    peer.once('close', () => {
      parts.reset()
      if (this.#conns.get(peerId) !== conn) return
      this.#conns.delete(peerId)
      this.#held.delete(peerId)
      this.#handler?.disconnect?.(peerId)
    })
  }

  /** Peers whose data channel is open now. */
  peers(): string[] {
    const out: string[] = []
    for (const [id, conn] of this.#conns) if (conn.connected && !conn.closed) out.push(id)
    return out
  }

  /** Bytes queued for `peerId` and not yet handed to its data channel (0 when not connected). */
  queued(peerId: string): number {
    const peer = this.#conns.get(peerId)?.peer as unknown as SimplePeer | undefined
    return peer?.writableLength ?? 0
  }

  /** Queues `data` (at most `MESH_PART_BYTES`) for `peerId`; false when that peer is not connected. */
  send(peerId: string, data: Uint8Array): boolean {
    const conn = this.#conns.get(peerId)
    const peer = conn?.peer as unknown as SimplePeer | undefined
    if (!conn || !peer || !conn.connected || conn.closed || peer.destroyed) return false
    try {
      peer.write(data)
      return true
    } catch {
      return false // closing: its close event follows
    }
  }

  /** Starts delivering to `handler` (held hellos first, then `connect` for every open peer). Returns the detach function. */
  attach(handler: MeshHandler): () => void {
    this.#handler = handler
    const held = [...this.#held]
    this.#held.clear()
    for (const [peerId, data] of held) this.#deliver(peerId, data)
    for (const peerId of this.peers()) handler.connect(peerId)
    return () => {
      if (this.#handler === handler) this.#handler = null
    }
  }

  #deliver(peerId: string, data: Uint8Array) {
    try {
      this.#handler?.message(peerId, data)
    } catch (err) {
      console.warn('[murmur] mesh: a message could not be handled', err)
    }
  }
}
