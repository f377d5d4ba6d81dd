/**
 * Relay on demand: which link mode (`backup-link.ts`) a session needs, from
 * what it knows about its WebRTC mesh. Pure: time is passed in.
 *
 * Relay when this device cannot take part in the mesh (no WebRTC, a
 * read-only link, signaling unreachable or still connecting after
 * `pairTimeoutMs`), when a peer it was introduced to has not paired within
 * `pairTimeoutMs` (ICE still failing), or, for `failHoldMs` after such a
 * connection went away without ever pairing, while that peer is present and
 * still not reached directly. Otherwise backup-only: peers are reached
 * directly (a peer reached only through the server relays itself).
 */
import type { LinkModeName } from './backup-link.ts'
import type { SignalingState } from './status.ts'

/** The parts of a y-webrtc connection the policy reads. */
export interface MeshConn {
  connected: boolean
  closed: boolean
}

/** Options of a `LinkPolicy`. */
export interface LinkPolicyOptions {
  /** How long a connection may take to pair before the link relays (ms, default 4000). */
  pairTimeoutMs?: number
  /** How long a failed pairing keeps the link relaying while that peer is present and not direct (ms, default 15000). */
  failHoldMs?: number
}

/** Decides the link mode; call `decide` whenever the mesh may have changed (and periodically). */
export class LinkPolicy {
  readonly #pairTimeoutMs: number
  readonly #failHoldMs: number
  /** Connections seen but not (yet) paired, and since when. */
  readonly #pending = new Map<string, number>()
  /** Peers whose connection went away without pairing, and until when that counts. */
  readonly #failed = new Map<string, number>()
  #connectingSince: number | null = null
  /** Connections this device closed itself before offering (`glare.ts`): not pairing attempts. */
  readonly #yielded = new WeakSet<MeshConn>()

  constructor(opts: LinkPolicyOptions = {}) {
    this.#pairTimeoutMs = opts.pairTimeoutMs ?? 4000
    this.#failHoldMs = opts.failHoldMs ?? 15_000
  }

  /**
   * Marks connections this device closed itself before any offer (it
   * yielded to a higher peer, which offers instead): neither pending nor
   * failed. A peer at its connection cap may never offer; it is then reached
   * through the mesh, not the server.
   */
  yielded(conns: Iterable<MeshConn>): void {
    for (const conn of conns) this.#yielded.add(conn)
  }

  /**
   * The mode the link should be in now. `unpaired`: the WebRTC peer ids of
   * the peers present (awareness) that are not reached directly.
   */
  decide(signaling: SignalingState, conns: ReadonlyMap<string, MeshConn> | null, now: number, unpaired: ReadonlySet<string> = new Set()): LinkModeName {
    let stuck = false
    for (const [id, since] of this.#pending) {
      const conn = conns?.get(id)
      if (conn && this.#yielded.has(conn)) {
        this.#pending.delete(id)
        continue
      }
      if (conn?.connected) this.#pending.delete(id)
      else if (!conn || conn.closed) {
        this.#pending.delete(id)
        this.#failed.set(id, now + this.#failHoldMs)
      } else if (now - since >= this.#pairTimeoutMs) stuck = true
    }
    if (conns) for (const [id, conn] of conns) if (!conn.connected && !conn.closed && !this.#pending.has(id) && !this.#yielded.has(conn)) this.#pending.set(id, now)
    for (const [id, until] of this.#failed) if (until <= now) this.#failed.delete(id)
    if (signaling === 'connecting' && conns) {
      this.#connectingSince ??= now
      if (now - this.#connectingSince >= this.#pairTimeoutMs) return 'relay'
    } else {
      this.#connectingSince = null
      if (signaling !== 'connected' || !conns) return 'relay'
    }
    if (stuck) return 'relay'
    for (const id of this.#failed.keys()) if (unpaired.has(id)) return 'relay'
    return 'backup'
  }
}
