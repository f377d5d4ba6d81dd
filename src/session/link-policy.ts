/**
 * Relay on demand: which link mode (`backup-link.ts`) a session needs, from
 * what it knows about its WebRTC mesh. Pure: time is passed in.
 *
 * Relay when this device cannot take part in the mesh (no WebRTC, a
 * read-only link, signaling unreachable or still connecting after
 * `pairTimeoutMs`), or while a peer of the room has not been reached
 * through the mesh for `pairTimeoutMs`: not paired directly, and its
 * awareness does not come over the mesh either (a pairing that keeps
 * failing, a mesh split into groups). A peer is of the room while it is
 * present in awareness, or for `failHoldMs` after it was last heard on
 * signaling (announced itself, signalled this device, a connection still
 * pairing).
 *
 * For an unreached pair one relaying side is enough (the server forwards
 * between X and Y when either relays), so a side steps back when the other
 * says it relays and reaches fewer mesh peers (ties: the lower peer id):
 * a peer that reaches no one relays, the rest of the room stays backup-only.
 */
import type { LinkModeName } from './backup-link.ts'
import type { SignalingState } from './status.ts'

/** The parts of a y-webrtc connection the policy reads. */
export interface MeshConn {
  connected: boolean
  closed: boolean
}

/** What this device knows of another peer of the room, by its y-webrtc peer id. */
export interface PeerView {
  /** Its awareness came over the mesh lately (`mesh-reach.ts`), or it is another tab. */
  reached: boolean
  /** Its own recent awareness, when there is one: how many mesh peers it reaches and whether its link relays. */
  says: { meshPeers: number; relaying: boolean } | null
}

/** This device, for the tie between two sides of an unreached pair. */
export interface SelfView {
  peerId: string
  meshPeers: number
}

/** Options of a `LinkPolicy`. */
export interface LinkPolicyOptions {
  /** How long a peer may stay unreached before the link relays (ms, default 4000). */
  pairTimeoutMs?: number
  /** How long a peer heard on signaling counts as in the room without any awareness of it (ms, default 15000). */
  failHoldMs?: number
}

/** Decides the link mode; call `decide` whenever the mesh may have changed (and periodically). */
export class LinkPolicy {
  readonly #pairTimeoutMs: number
  readonly #failHoldMs: number
  /** Peers heard on signaling, and when last. */
  readonly #heard = new Map<string, number>()
  /** Peers of the room not reached through the mesh, and since when. */
  readonly #unreached = new Map<string, number>()
  #connectingSince: number | null = null

  constructor(opts: LinkPolicyOptions = {}) {
    this.#pairTimeoutMs = opts.pairTimeoutMs ?? 4000
    this.#failHoldMs = opts.failHoldMs ?? 15_000
  }

  /** A peer announced itself or signalled this device (`signal-watch.ts`). */
  heard(peerId: string, now: number): void {
    this.#heard.set(peerId, now)
  }

  /**
   * The mode the link should be in now. `conns`: y-webrtc's connections
   * (a connected one reaches its peer; one still pairing counts as heard);
   * `peers`: the peers present in awareness; `self`: this device.
   */
  decide(signaling: SignalingState, conns: ReadonlyMap<string, MeshConn> | null, now: number, peers: ReadonlyMap<string, PeerView> = new Map(), self?: SelfView): LinkModeName {
    if (conns) for (const [id, conn] of conns) if (!conn.connected && !conn.closed) this.#heard.set(id, now)
    for (const [id, at] of this.#heard) if (now - at >= this.#failHoldMs) this.#heard.delete(id)
    let relay = false
    const ids = new Set([...this.#heard.keys(), ...peers.keys()])
    for (const id of this.#unreached.keys()) if (!ids.has(id)) this.#unreached.delete(id)
    for (const id of ids) {
      const view = peers.get(id)
      if (conns?.get(id)?.connected || view?.reached) {
        this.#unreached.delete(id)
        continue
      }
      const since = this.#unreached.get(id) ?? now
      this.#unreached.set(id, since)
      if (now - since < this.#pairTimeoutMs || (view?.says && self && relaysForPair(view.says, id, self))) continue
      relay = true
    }
    if (signaling === 'connecting' && conns) {
      this.#connectingSince ??= now
      if (now - this.#connectingSince >= this.#pairTimeoutMs) return 'relay'
    } else {
      this.#connectingSince = null
      if (signaling !== 'connected' || !conns) return 'relay'
    }
    return relay ? 'relay' : 'backup'
  }
}

/** Whether the other side of an unreached pair relays for both: it says it relays and reaches fewer mesh peers (ties: lower peer id). */
function relaysForPair(other: { meshPeers: number; relaying: boolean }, otherId: string, self: SelfView): boolean {
  return other.relaying && (other.meshPeers < self.meshPeers || (other.meshPeers === self.meshPeers && otherId < self.peerId))
}
