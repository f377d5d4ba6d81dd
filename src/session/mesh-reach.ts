/**
 * Which peers reach this device through the WebRTC mesh, directly or passed
 * on by other peers. Awareness tells: every peer renews its state at least
 * every 15 s, and the mesh carries it to everyone it reaches. Awareness
 * alone cannot say by which route a state came (y-protocols drops a copy it
 * already has, and a relaying link gets every state from the server too),
 * so this reads the client ids of awareness messages on the data channels,
 * duplicates included. Only messages about one client count: that is a
 * change passed along the mesh. y-webrtc also sends every state it knows in
 * one message when a connection opens or a peer asks, states it got from
 * the server included, which says nothing about routes. Untrusted input: a
 * message that does not parse is ignored (y-webrtc still reads it as it
 * would).
 */
import * as decoding from 'lib0/decoding'

/** y-webrtc's message type of an awareness update on a data channel. */
const AWARENESS = 1
/** A state seen over the mesh counts this long (ms): two renewals, so one lost renewal does not matter. */
export const MESH_REACH_MS = 35_000

interface DataSource {
  on(event: 'data', fn: (data: Uint8Array) => void): void
  once(event: 'close', fn: () => void): void
}

/** The client ids of a y-webrtc awareness message, or none. */
export function awarenessClients(data: Uint8Array): number[] {
  return awarenessEntries(data).map(([id]) => id)
}

/** The client ids and clocks of a y-webrtc awareness message, or none. */
function awarenessEntries(data: Uint8Array): [number, number][] {
  if (data.byteLength < 2 || data[0] !== AWARENESS) return []
  try {
    const outer = decoding.createDecoder(data)
    decoding.readVarUint(outer)
    const d = decoding.createDecoder(decoding.readVarUint8Array(outer))
    const entries: [number, number][] = []
    for (let n = decoding.readVarUint(d); n > 0; n--) {
      const id = decoding.readVarUint(d)
      entries.push([id, decoding.readVarUint(d)])
      decoding.readVarString(d) // state
    }
    return entries
  } catch {
    return []
  }
}

/**
 * Remembers when each client's awareness last arrived over the mesh, per
 * connection: what came over a connection that closed no longer counts
 * (a pair that connected for a moment before failing would otherwise
 * list the other side as reached for `MESH_REACH_MS`).
 */
export class MeshReach {
  /** For each open connection: client id → when its awareness last came over it. */
  readonly #seen = new Map<DataSource, Map<number, number>>()
  readonly #observed = new WeakSet<object>()
  /** Client id → the clock of its latest state this device passed from the server into the mesh. */
  readonly #passedOn = new Map<number, number>()
  readonly #now: () => number

  constructor(now: () => number = Date.now) {
    this.#now = now
  }

  /** Reads the awareness messages of one peer connection (simple-peer), once per connection: each about a single client marks that client, until the connection closes. */
  observe(peer: DataSource): void {
    if (this.#observed.has(peer)) return
    this.#observed.add(peer)
    const seen = new Map<number, number>()
    this.#seen.set(peer, seen)
    peer.once('close', () => this.#seen.delete(peer))
    peer.on('data', (data) => {
      const at = this.#now()
      const entries = awarenessEntries(data)
      // A peer echoing a state this device passed on from the server says nothing of the mesh.
      if (entries.length === 1 && entries[0][1] > (this.#passedOn.get(entries[0][0]) ?? -1)) seen.set(entries[0][0], at)
      // Clients that left are never asked about again: forget old ones now and then.
      if (seen.size > 1000) for (const [id, t] of seen) if (at - t >= MESH_REACH_MS) seen.delete(id)
    })
  }

  /**
   * This device passed `clientId`'s state at `clock` from the server on to
   * the mesh: peers sending that state back (y-webrtc re-broadcasts to every
   * connection) must not keep it looking carried by the mesh.
   */
  passedOn(clientId: number, clock: number): void {
    this.#passedOn.set(clientId, clock)
    if (this.#passedOn.size > 1000) this.#passedOn.delete(this.#passedOn.keys().next().value!)
  }

  /** Whether `clientId`'s awareness arrived over an open mesh connection within `MESH_REACH_MS` of `now`. */
  reaches(clientId: number, now: number): boolean {
    for (const seen of this.#seen.values()) {
      const at = seen.get(clientId)
      if (at === undefined) continue
      if (now - at < MESH_REACH_MS) return true
      seen.delete(clientId)
    }
    return false
  }
}
