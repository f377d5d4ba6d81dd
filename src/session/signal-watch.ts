/**
 * Which peers this device hears of on signaling. y-webrtc acts on an
 * announce only below its connection cap and forgets a peer whose pairing
 * failed; the link policy (`link-policy.ts`) needs to know every peer that
 * is in the room, so that one it cannot reach through the mesh (a split
 * mesh, a pairing that keeps failing) brings the relay on. Signaling
 * messages are untrusted: anything but a well-formed announce or a signal
 * addressed to this peer is ignored.
 */
import type { WebrtcProvider } from 'y-webrtc'
import * as buffer from 'lib0/buffer'
import * as decoding from 'lib0/decoding'

type Room = NonNullable<WebrtcProvider['room']>
interface SignalingConn {
  on(event: 'message', fn: (m: unknown) => void): void
  off(event: 'message', fn: (m: unknown) => void): void
}

/** The y-webrtc message inside a signaling publish: who it is from, if it is an announce or a signal to `self`. */
function sender(data: unknown, self: string): string | null {
  if (typeof data !== 'object' || data === null) return null
  const { type, from, to } = data as { type?: unknown; from?: unknown; to?: unknown }
  if (typeof from !== 'string' || from === self || from.length > 100) return null
  return type === 'announce' || (type === 'signal' && to === self) ? from : null
}

/** y-webrtc's encrypted signaling payload (base64 of `'AES-GCM', iv, cipher`) → the JSON it carries, or null. */
async function decrypt(data: string, key: CryptoKey): Promise<unknown> {
  try {
    const d = decoding.createDecoder(buffer.fromBase64(data))
    if (decoding.readVarString(d) !== 'AES-GCM') return null
    const iv = decoding.readVarUint8Array(d)
    const cipher = decoding.readVarUint8Array(d)
    const plain = new Uint8Array(await crypto.subtle.decrypt({ name: 'AES-GCM', iv }, key, cipher))
    return decoding.readAny(decoding.createDecoder(plain))
  } catch {
    return null
  }
}

/**
 * Calls `heard(peerId)` for each announce, and each signal addressed to this
 * peer, on the room's topic of the provider's signaling connections
 * (decrypting them when the room has a password, as y-webrtc does).
 * y-webrtc opens its connections once the room key is derived: call
 * `watch()` whenever they may have changed (it is cheap), `stop()` at the end.
 */
export class SignalWatch {
  readonly #provider: WebrtcProvider
  readonly #heard: (peerId: string) => void
  readonly #watched = new Set<SignalingConn>()

  constructor(provider: WebrtcProvider, heard: (peerId: string) => void) {
    this.#provider = provider
    this.#heard = heard
  }

  /** Starts listening on connections the provider opened since the last call. */
  watch(): void {
    for (const conn of this.#provider.signalingConns as unknown as SignalingConn[]) {
      if (this.#watched.has(conn)) continue
      this.#watched.add(conn)
      conn.on('message', this.#onMessage)
    }
  }

  /** Stops listening. */
  stop(): void {
    for (const conn of this.#watched) conn.off('message', this.#onMessage)
    this.#watched.clear()
  }

  #onMessage = (m: unknown) => {
    const room: Room | null = this.#provider.room
    if (!room || typeof m !== 'object' || m === null) return
    const { type, topic, data } = m as { type?: unknown; topic?: unknown; data?: unknown }
    if (type !== 'publish' || topic !== room.name) return
    const key = (room as unknown as { key: CryptoKey | null }).key
    if (!key) {
      const from = sender(data, room.peerId)
      if (from) this.#heard(from)
    } else if (typeof data === 'string') {
      void decrypt(data, key).then((plain) => {
        const from = sender(plain, room.peerId)
        if (from) this.#heard(from)
      })
    }
  }
}
