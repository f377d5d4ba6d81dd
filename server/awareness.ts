/**
 * Awareness (presence) from untrusted sockets: every entry of an awareness
 * update is decoded and checked before anything is applied, and each
 * awareness client id belongs to the socket that first spoke for it, so one
 * socket can neither overwrite another user's name and cursor nor leave
 * states behind when it closes. Across instances, another instance counts as
 * one member for the ids it relayed first (`claimRemote`), so a socket here
 * cannot take over a user connected there either.
 */
import * as encoding from 'lib0/encoding'
import * as decoding from 'lib0/decoding'

/** One entry of a y-protocols awareness update: client id, clock and the raw UTF-8 JSON state. */
export interface AwarenessEntry {
  client: number
  clock: number
  state: Uint8Array
}

/** Why an awareness update is refused: `badMessage` (4400) or `tooMany` (4429). */
export class AwarenessError extends Error {
  constructor(
    readonly kind: 'badMessage' | 'tooMany',
    message: string,
  ) {
    super(message)
  }
}

const utf8 = new TextDecoder('utf-8', { fatal: true })

/** Whether an awareness state is the removal `null` (what y-protocols sends for a client that left). */
function isRemoval(state: Uint8Array): boolean {
  return state.byteLength === 4 && state[0] === 0x6e && state[1] === 0x75 && state[2] === 0x6c && state[3] === 0x6c
}

/**
 * Decodes and validates a whole awareness update: at most `maxEntries`
 * entries (checked before reading any), each state at most `maxStateBytes`
 * bytes of UTF-8 that parses as JSON. Throws `AwarenessError`.
 */
export function parseAwarenessUpdate(update: Uint8Array, maxEntries: number, maxStateBytes: number): AwarenessEntry[] {
  const entries: AwarenessEntry[] = []
  try {
    const dec = decoding.createDecoder(update)
    const n = decoding.readVarUint(dec)
    if (n > maxEntries) throw new AwarenessError('tooMany', `awareness update for ${n} clients`)
    for (let i = 0; i < n; i++) {
      const client = decoding.readVarUint(dec)
      const clock = decoding.readVarUint(dec)
      const state = decoding.readVarUint8Array(dec)
      if (state.byteLength > maxStateBytes) throw new AwarenessError('badMessage', 'awareness state too large')
      JSON.parse(utf8.decode(state))
      entries.push({ client, clock, state })
    }
  } catch (err) {
    if (err instanceof AwarenessError) throw err
    throw new AwarenessError('badMessage', 'undecodable awareness update')
  }
  return entries
}

/** Encodes `entries` as a y-protocols awareness update (the wire format `parseAwarenessUpdate` reads). */
export function encodeAwarenessEntries(entries: readonly AwarenessEntry[]): Uint8Array {
  const enc = encoding.createEncoder()
  encoding.writeVarUint(enc, entries.length)
  for (const e of entries) {
    encoding.writeVarUint(enc, e.client)
    encoding.writeVarUint(enc, e.clock)
    encoding.writeVarUint8Array(enc, e.state)
  }
  return encoding.toUint8Array(enc)
}

/**
 * Who speaks for which awareness client id in one room, and how many state
 * bytes the room holds. An id belongs to the first member that sent it; a
 * member's own id (the first it sent) takes over from a member that only
 * relayed it, so the state goes when its own socket does. `claim` keeps the
 * entries a member may set; `release` forgets a member and returns the ids
 * whose states must be removed.
 */
export class AwarenessLedger {
  readonly #owners = new Map<number, { owner: object; bytes: number; own: boolean }>()
  readonly #byOwner = new Map<object, Set<number>>()
  /** Each member's own client id: the first it sent (a y-websocket client greets with its own state alone). */
  readonly #ownId = new Map<object, number>()
  #bytes = 0

  /** Bytes of awareness state the room holds. */
  get bytes(): number {
    return this.#bytes
  }

  /**
   * Returns the entries of `entries` that `owner` may apply: ids nobody owns
   * yet (now owned by `owner`) and its own. Entries for ids another member
   * owns are dropped. Throws `AwarenessError('tooMany')`, changing nothing,
   * when `owner` would speak for more than `maxClients` ids or the room would
   * hold more than `maxRoomBytes` bytes of state.
   */
  claim(owner: object, entries: readonly AwarenessEntry[], maxClients: number, maxRoomBytes: number): AwarenessEntry[] {
    const mine = this.#byOwner.get(owner)
    const ownId = this.#ownId.get(owner) ?? entries[0]?.client
    const accepted: AwarenessEntry[] = []
    const fresh = new Set<number>()
    const takeOver = new Set<number>()
    let bytes = this.#bytes
    for (const e of entries) {
      const current = this.#owners.get(e.client)
      // Another member's id is not ours to set, unless that member only relayed it
      // (a peer passing on presence it got over WebRTC) and this is the id's own socket.
      if (current && current.owner !== owner) {
        if (current.own || e.client !== ownId) continue
        takeOver.add(e.client)
      }
      if ((!current || takeOver.has(e.client)) && !fresh.has(e.client)) fresh.add(e.client)
      bytes += e.state.byteLength - (current?.bytes ?? 0)
      accepted.push(e)
    }
    if ((mine?.size ?? 0) + fresh.size > maxClients) throw new AwarenessError('tooMany', `awareness for more than ${maxClients} clients`)
    if (bytes > maxRoomBytes) throw new AwarenessError('tooMany', `room awareness above ${maxRoomBytes} bytes`)
    if (ownId !== undefined && !this.#ownId.has(owner)) this.#ownId.set(owner, ownId)
    let set = mine
    if (!set && accepted.length) this.#byOwner.set(owner, (set = new Set()))
    for (const e of accepted) {
      const current = this.#owners.get(e.client)
      if (current && current.owner !== owner) this.#byOwner.get(current.owner)?.delete(e.client)
      this.#bytes += e.state.byteLength - (current?.bytes ?? 0)
      this.#owners.set(e.client, { owner, bytes: e.state.byteLength, own: e.client === ownId })
      set!.add(e.client)
    }
    return accepted
  }

  /**
   * Entries another instance accepted from its sockets, `instance` standing
   * for that instance: applied when nobody here speaks for the id or that
   * instance already does or a socket here only relayed it (stock clients
   * echo the states they receive), dropped otherwise (an id a socket here
   * holds as its own is not overwritten from elsewhere, and vice versa). Ids it relayed cannot be
   * taken over by a socket here (`claim` treats them as their owner's own);
   * a removal (state `null`) from it frees the id, and so does `release`
   * when the instance is gone. No quotas: the sending instance applied them.
   */
  claimRemote(instance: object, entries: readonly AwarenessEntry[]): AwarenessEntry[] {
    const accepted: AwarenessEntry[] = []
    for (const e of entries) {
      const current = this.#owners.get(e.client)
      // Held here by its own socket (or another instance): not ours to change. A socket that only
      // relayed it (stock y-websocket clients echo every state they receive) yields.
      if (current && current.owner !== instance && current.own) continue
      accepted.push(e)
      if (current) {
        this.#bytes -= current.bytes
        if (current.owner !== instance) this.#byOwner.get(current.owner)?.delete(e.client)
      }
      if (isRemoval(e.state)) {
        this.#owners.delete(e.client)
        this.#byOwner.get(instance)?.delete(e.client)
        continue
      }
      this.#bytes += e.state.byteLength
      this.#owners.set(e.client, { owner: instance, bytes: e.state.byteLength, own: true })
      let set = this.#byOwner.get(instance)
      if (!set) this.#byOwner.set(instance, (set = new Set()))
      set.add(e.client)
    }
    return accepted
  }

  /** The member that speaks for awareness id `client`, if any. */
  ownerOf(client: number): object | undefined {
    return this.#owners.get(client)?.owner
  }

  /** Frees those of `ids` whose owner passes `which` (e.g. ids another instance spoke for, after the awareness timeout removed them). */
  forget(ids: readonly number[], which: (owner: object) => boolean): void {
    for (const id of ids) {
      const current = this.#owners.get(id)
      if (!current || !which(current.owner)) continue
      this.#owners.delete(id)
      this.#byOwner.get(current.owner)?.delete(id)
      this.#bytes -= current.bytes
    }
  }

  /** Forgets `owner`; returns the client ids it spoke for. */
  release(owner: object): number[] {
    this.#ownId.delete(owner)
    const ids = this.#byOwner.get(owner)
    if (!ids) return []
    this.#byOwner.delete(owner)
    for (const id of ids) {
      this.#bytes -= this.#owners.get(id)?.bytes ?? 0
      this.#owners.delete(id)
    }
    return [...ids]
  }
}
