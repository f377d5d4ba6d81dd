/**
 * Tuning of y-webrtc's mesh (the room of one document): send each update
 * once per link where the mesh is complete, and keep lib0's BroadcastChannel
 * from echoing or lingering. Each function patches one y-webrtc behaviour
 * and is safe to call again for the same room.
 */
import type { WebrtcProvider } from 'y-webrtc'
import * as bc from 'lib0/broadcastchannel'
import * as encoding from 'lib0/encoding'
import { MessageType } from '../protocol/messages.ts'

type Room = NonNullable<WebrtcProvider['room']>
type Handler<A extends unknown[]> = (...args: A) => void
const forwarding = new WeakSet<object>()

/** The client ids an awareness update event names. */
interface AwarenessChanges {
  added: number[]
  updated: number[]
  removed: number[]
}

/**
 * y-webrtc re-broadcasts every document and awareness update it receives to
 * all its peers, so in a full mesh each keystroke arrives once from its
 * author and again from every other peer. This swaps the room's listeners
 * for ones that send what came from a peer (origin: the room) on to the
 * others only while `needed()` says the mesh is not complete (a peer known
 * only second-hand, or y-webrtc at its connection cap). This device's own
 * changes and document updates from the server are always sent.
 *
 * Awareness from the server (`fromServer(origin)`: a relaying link gets
 * every state) is passed on under the same rule, but only for clients this
 * device reaches through the mesh itself (`meshReaches`; `passedOn` is
 * told which, so their echoes do not count as reach), and never a
 * removal: awareness on the mesh is how peers tell whom the mesh reaches
 * (`mesh-reach.ts`), so a state the mesh does not carry must not look as if
 * it did. Yet a relaying peer often gets a renewal from the server before
 * the mesh brings it, and y-protocols then drops the mesh's copy: without
 * passing the server's copy on, each relaying peer would cut the mesh's
 * renewals and make more peers look unreached (in a 30-person partial mesh
 * that snowballed until most links relayed). A peer that pairs late gets
 * everything from y-webrtc's sync step 1/2 when it connects, and the backup
 * link's state-vector catch-up is the safety net.
 */
export function forwardOnlyWhenNeeded(room: Room, needed: () => boolean, fromServer: (origin: unknown) => boolean, meshReaches: (clientId: number) => boolean, passedOn: (clientIds: number[]) => void = () => {}): void {
  const r = room as unknown as {
    doc: { on(e: 'update', f: Handler<[Uint8Array, unknown]>): void; off(e: 'update', f: Handler<[Uint8Array, unknown]>): void }
    awareness: { on(e: 'update', f: Handler<[AwarenessChanges, unknown]>): void; off(e: 'update', f: Handler<[AwarenessChanges, unknown]>): void }
    _docUpdateHandler: Handler<[Uint8Array, unknown]>
    _awarenessUpdateHandler: Handler<[AwarenessChanges, unknown]>
    bcconnected: boolean
  }
  if (forwarding.has(r) || typeof r._docUpdateHandler !== 'function' || typeof r._awarenessUpdateHandler !== 'function') return
  forwarding.add(r)
  const sendDoc = r._docUpdateHandler
  const sendAwareness = r._awarenessUpdateHandler
  const doc: Handler<[Uint8Array, unknown]> = (update, origin) => (origin === room && !needed() ? undefined : sendDoc(update, origin))
  const awareness: Handler<[AwarenessChanges, unknown]> = (changes, origin) => {
    if (fromServer(origin)) {
      if (!needed()) return
      const carried = { added: changes.added.filter(meshReaches), updated: changes.updated.filter(meshReaches), removed: [] }
      if (carried.added.length + carried.updated.length === 0) return
      passedOn([...carried.added, ...carried.updated])
      sendAwareness(carried, origin)
      return
    }
    if (origin === room && !needed()) return
    sendAwareness(changes, origin)
  }
  r._docUpdateHandler = doc
  r._awarenessUpdateHandler = awareness
  // Connected rooms have the originals registered (y-webrtc's connect/disconnect use the new ones from now on).
  if (r.bcconnected) {
    r.doc.off('update', sendDoc)
    r.doc.on('update', doc)
    r.awareness.off('update', sendAwareness)
    r.awareness.on('update', awareness)
  }
}

const filtered = new WeakSet<object>()

/**
 * lib0's `broadcastchannel.publish` also calls the subscribers of the same
 * tab, so a y-webrtc room re-decodes every update it broadcasts — including
 * the whole document on the first sync of a big one (about a second for a
 * 2 MB history). Messages from other tabs arrive with origin
 * `'broadcastchannel'`; the room's subscriber is swapped for one that only
 * takes those. Subscribe first, then unsubscribe, so lib0 never closes the
 * channel in between; y-webrtc's own disconnect/connect use the new function.
 */
export function ignoreOwnBroadcasts(room: NonNullable<WebrtcProvider['room']>): void {
  const r = room as unknown as { _bcSubscriber?: (data: ArrayBuffer, origin?: unknown) => unknown; bcconnected: boolean; name: string }
  const original = r._bcSubscriber
  if (typeof original !== 'function' || filtered.has(r)) return
  filtered.add(r)
  const onlyOtherTabs = (data: ArrayBuffer, origin?: unknown) => (origin === 'broadcastchannel' ? original(data, origin) : undefined)
  r._bcSubscriber = onlyOtherTabs
  if (r.bcconnected) {
    bc.subscribe(r.name, onlyOtherTabs)
    bc.unsubscribe(r.name, original)
  }
}

/**
 * y-webrtc publishes a last "peer left" message on the room's
 * BroadcastChannel after unsubscribing, which makes lib0 re-create the
 * channel and keep it open forever. Once that message is out, subscribe and
 * unsubscribe a no-op so lib0 closes the channel (a no-op when another
 * subscriber exists).
 */
export function releaseBroadcastChannel(room: string): void {
  setTimeout(() => {
    const noop = () => {}
    bc.subscribe(room, noop)
    bc.unsubscribe(room, noop)
  }, 50)
}

/** Asks every directly connected peer (and other tabs) for its awareness, e.g. after the server dropped states it relayed. */
export function requestAwareness(room: Room): void {
  const e = encoding.createEncoder()
  encoding.writeVarUint(e, MessageType.queryAwareness)
  const msg = encoding.toUint8Array(e)
  for (const conn of room.webrtcConns.values()) {
    try {
      if (conn.connected) (conn.peer as { send(m: Uint8Array): void }).send(msg)
    } catch {
      // a closing peer: its own close event follows
    }
  }
  if (room.bcconnected) bc.publish(room.name, msg)
}

/**
 * Announces this peer on the room's signaling topics again, so a peer whose
 * earlier connection attempt failed (y-webrtc does not retry on its own)
 * tries once more. Each announce costs one small signaling message.
 */
export function reannounce(provider: WebrtcProvider): void {
  const room = provider.room
  if (!room) return
  for (const conn of provider.signalingConns as unknown as { connected: boolean; send(m: object): void }[]) {
    if (conn.connected) conn.send({ type: 'publish', topic: room.name, data: { type: 'announce', from: room.peerId } })
  }
}

/** Awareness field in which a peer says how many peers it reaches inside the mesh (WebRTC or another tab). */
export const MESH_PEERS_FIELD = 'meshPeers'

/**
 * Whether a directly linked peer misses part of the mesh this device sees:
 * it says (`MESH_PEERS_FIELD`) it reaches fewer than `known` peers, the
 * number of mesh peers this device knows of (it should reach all of them
 * but itself, plus this device). A partial mesh looks complete from inside
 * when no one at the connection cap is on the path (A–B–C, A and C never
 * paired): B passes things on only because A or C says so. A linked peer
 * without a known state counts as missing part of the mesh.
 */
export function neighborsIncomplete(states: ReadonlyMap<number, Record<string, unknown>>, direct: ReadonlySet<string>, known: number): boolean {
  const seen = new Set<string>()
  for (const state of states.values()) {
    if (typeof state.peerId !== 'string' || !direct.has(state.peerId)) continue
    seen.add(state.peerId)
    const reached = state[MESH_PEERS_FIELD]
    // An older client does not say: it forwards everything itself, as stock y-webrtc does.
    if (typeof reached === 'number' && reached < known) return true
  }
  // A linked peer whose state has not arrived (just paired, or y-websocket dropped every state
  // when its socket closed): its reach is unknown, so pass things on until it is known.
  return seen.size < direct.size
}

const tryingSince = new WeakMap<object, number>()

/**
 * Closes y-webrtc connections that have been pairing for `stallMs` without
 * connecting, and returns how many. y-webrtc never gives up on its own: a
 * pair whose offer or answer was lost (a busy machine, a glare race) stays
 * "connecting" on one side forever, and that side ignores the other's
 * announcements. Closed, y-webrtc announces this peer again and the pair is
 * tried afresh (`glare.ts` decides who offers).
 */
export function dropStalled(room: Room, now: number, stallMs: number): number {
  let dropped = 0
  for (const conn of room.webrtcConns.values()) {
    if (conn.connected || conn.closed) continue
    const since = tryingSince.get(conn)
    if (since === undefined) tryingSince.set(conn, now)
    else if (now - since >= stallMs) {
      conn.destroy()
      dropped++
    }
  }
  return dropped
}
