/**
 * Codec for murmur's durability extension of the y-websocket protocol
 * (see `MessageType.durableQuery` / `MessageType.durableAck` in messages.ts).
 *
 * Both messages are `[type: varUint, nonce: varUint]` in lib0 encoding. No DOM,
 * no Node APIs: shared by the browser client, the server and tests.
 */
import * as encoding from 'lib0/encoding'
import * as decoding from 'lib0/decoding'
import { MessageType } from './messages.ts'

/** Encodes `[durableQuery, nonce]`: "tell me once everything I sent before this is committed". */
export function encodeDurableQuery(nonce: number): Uint8Array {
  const encoder = encoding.createEncoder()
  encoding.writeVarUint(encoder, MessageType.durableQuery)
  encoding.writeVarUint(encoder, nonce)
  return encoding.toUint8Array(encoder)
}

/** Encodes `[durableAck, nonce]`: the server's answer to a durable query. */
export function encodeDurableAck(nonce: number): Uint8Array {
  const encoder = encoding.createEncoder()
  encoding.writeVarUint(encoder, MessageType.durableAck)
  encoding.writeVarUint(encoder, nonce)
  return encoding.toUint8Array(encoder)
}

/**
 * Reads the nonce that follows the message type of a durable query or ack.
 * The decoder must already have consumed the type. Throws on truncated input.
 */
export function readDurableNonce(decoder: decoding.Decoder): number {
  return decoding.readVarUint(decoder)
}
