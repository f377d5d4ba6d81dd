/**
 * Wire formats the backup benchmark speaks to each server under test, built
 * by hand so the load generator stays far cheaper per message than the
 * servers it measures.
 *
 * - `murmur` and `yws` (@y/websocket-server): the y-websocket protocol,
 *   `[type][…]`; murmur adds `[100, nonce]` → `[101, nonce]` (durable query/ack).
 * - `hocus` (Hocuspocus): every message is prefixed with the document name
 *   (`[varString name][type][…]`), a connection must send an Auth message
 *   first, and each applied update is answered with `[name][8 SyncStatus][1]`.
 */
import * as encoding from 'lib0/encoding'
import * as decoding from 'lib0/decoding'

/** A server under test. */
export type Proto = 'murmur' | 'hocus' | 'yws'

const SYNC = 0
const AWARENESS = 1
const AUTH = 2
const DURABLE_QUERY = 100
const DURABLE_ACK = 101
const HOCUS_SYNC_REPLY = 4
const HOCUS_SYNC_STATUS = 8

const STEP1 = 0
const STEP2 = 1
const UPDATE = 2

function build(write: (enc: encoding.Encoder) => void): Uint8Array {
  const enc = encoding.createEncoder()
  write(enc)
  return encoding.toUint8Array(enc)
}

/**
 * The Yjs update that appends one `'x'` by `client` at `clock` to the Y.Text
 * `'text'`, right after the same client's previous character — byte for byte
 * what `text.insert(text.length, 'x')` emits (checked in `selfCheck`).
 */
export function charUpdate(client: number, clock: number): Uint8Array {
  return build((enc) => {
    encoding.writeVarUint(enc, 1) // one client
    encoding.writeVarUint(enc, 1) // one struct
    encoding.writeVarUint(enc, client)
    encoding.writeVarUint(enc, clock)
    if (clock === 0) {
      encoding.writeUint8(enc, 4) // ContentString, no origins: parent follows
      encoding.writeVarUint(enc, 1) // parent is a root type…
      encoding.writeVarString(enc, 'text') // …named 'text'
    } else {
      encoding.writeUint8(enc, 0x84) // ContentString with origin
      encoding.writeVarUint(enc, client)
      encoding.writeVarUint(enc, clock - 1)
    }
    encoding.writeVarString(enc, 'x')
    encoding.writeVarUint(enc, 0) // empty delete set
  })
}

/** A sync-protocol message (`sub` step 1/2/update) carrying `payload`, for `proto` on document `doc`. */
export function syncMsg(proto: Proto, doc: string, sub: number, payload: Uint8Array): Uint8Array {
  return build((enc) => {
    if (proto === 'hocus') encoding.writeVarString(enc, doc)
    encoding.writeVarUint(enc, SYNC)
    encoding.writeVarUint(enc, sub)
    encoding.writeVarUint8Array(enc, payload)
  })
}

/** y-websocket update message. */
export const updateMsg = (proto: Proto, doc: string, update: Uint8Array) => syncMsg(proto, doc, UPDATE, update)
/** y-websocket sync step 1 with state vector `sv`. */
export const step1Msg = (proto: Proto, doc: string, sv: Uint8Array) => syncMsg(proto, doc, STEP1, sv)

/** murmur's `[durableQuery, nonce]`. */
export const durableQuery = (nonce: number) => build((enc) => (encoding.writeVarUint(enc, DURABLE_QUERY), encoding.writeVarUint(enc, nonce)))

/** Hocuspocus's Auth message with an (empty) token: required before anything else on a document. */
export const hocusAuth = (doc: string, token = '') =>
  build((enc) => {
    encoding.writeVarString(enc, doc)
    encoding.writeVarUint(enc, AUTH)
    encoding.writeVarUint(enc, 0) // AuthMessageType.Token
    encoding.writeVarString(enc, token)
  })

/** What an incoming frame means to the benchmark. */
export type Incoming =
  | { kind: 'ack'; nonce: number } // murmur durable ack
  | { kind: 'status' } // Hocuspocus SyncStatus (update applied)
  | { kind: 'step1' } // server's sync step 1 (murmur / yws: the room is loaded)
  | { kind: 'step2'; update: Uint8Array } // the document state a fresh client needs
  | { kind: 'update' } // a relayed update from another client
  | { kind: 'other'; type: number }

/** Classifies one frame received from a `proto` server. */
export function parse(proto: Proto, data: Uint8Array): Incoming {
  const dec = decoding.createDecoder(data)
  if (proto === 'hocus') decoding.readVarString(dec)
  const type = decoding.readVarUint(dec)
  if (type === DURABLE_ACK && proto === 'murmur') return { kind: 'ack', nonce: decoding.readVarUint(dec) }
  if (type === HOCUS_SYNC_STATUS && proto === 'hocus') return { kind: 'status' }
  if (type === SYNC || (type === HOCUS_SYNC_REPLY && proto === 'hocus')) {
    const sub = decoding.readVarUint(dec)
    if (sub === STEP1) return { kind: 'step1' }
    if (sub === STEP2) return { kind: 'step2', update: decoding.readVarUint8Array(dec) }
    if (sub === UPDATE) return { kind: 'update' }
  }
  void AWARENESS
  return { kind: 'other', type }
}

/**
 * A y-websocket awareness message setting `client`'s state to `{}` at `clock`.
 * The reference server broadcasts every applied awareness update to all
 * sockets of the document, the sender included, so it doubles as an in-order
 * "everything before this was applied" probe.
 */
export function awarenessProbe(client: number, clock: number): Uint8Array {
  return build((enc) => {
    encoding.writeVarUint(enc, AWARENESS)
    const inner = build((e) => {
      encoding.writeVarUint(e, 1)
      encoding.writeVarUint(e, client)
      encoding.writeVarUint(e, clock)
      encoding.writeVarString(e, '{}')
    })
    encoding.writeVarUint8Array(enc, inner)
  })
}

/** The `[client, clock]` of the first entry of a y-websocket awareness message, or null for other frames. */
export function awarenessEcho(data: Uint8Array): [client: number, clock: number] | null {
  if (data[0] !== AWARENESS) return null
  const dec = decoding.createDecoder(data.subarray(1))
  decoding.readVarUint(dec) // byte length of the inner update
  if (decoding.readVarUint(dec) < 1) return null
  return [decoding.readVarUint(dec), decoding.readVarUint(dec)]
}

/** The first byte(s) of a frame, cheaply: is it a murmur durable ack, and with which nonce? */
export function ackNonce(data: Uint8Array): number {
  if (data[0] !== DURABLE_ACK) return -1
  return decoding.readVarUint(decoding.createDecoder(data.subarray(1)))
}

/** WebSocket URL of document `doc` on a `proto` server at `host:port`. */
export function docUrl(proto: Proto, host: string, port: number, doc: string): string {
  if (proto === 'murmur') return `ws://${host}:${port}/sync/${doc}`
  if (proto === 'yws') return `ws://${host}:${port}/${doc}`
  return `ws://${host}:${port}/` // Hocuspocus multiplexes documents by name inside the protocol
}

/** Base URL a stock `WebsocketProvider(base, doc, …)` takes for `proto` (not Hocuspocus, whose client differs). */
export function providerBase(proto: Proto, host: string, port: number): string {
  if (proto === 'murmur') return `ws://${host}:${port}/sync`
  if (proto === 'yws') return `ws://${host}:${port}`
  throw new Error('the stock y-websocket provider does not speak the Hocuspocus protocol')
}

/** Throws unless `charUpdate` matches what Yjs itself emits for the same edits. */
export async function selfCheck(): Promise<void> {
  const Y = await import('yjs')
  const doc = new Y.Doc()
  doc.clientID = 123456789
  const got: Uint8Array[] = []
  doc.on('update', (u: Uint8Array) => got.push(u))
  const text = doc.getText('text')
  for (let i = 0; i < 3; i++) text.insert(text.length, 'x')
  got.forEach((u, i) => {
    if (Buffer.compare(Buffer.from(u), Buffer.from(charUpdate(doc.clientID, i))) !== 0) throw new Error(`charUpdate(${i}) differs from Yjs`)
  })
}
