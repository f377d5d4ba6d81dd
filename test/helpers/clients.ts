import WebSocket from 'ws'
import * as Y from 'yjs'
import * as encoding from 'lib0/encoding'
import * as decoding from 'lib0/decoding'
import { WebsocketProvider } from 'y-websocket'
import type { Awareness } from 'y-protocols/awareness'
import { MessageType } from '../../src/protocol/messages.ts'

/** A stock y-websocket client in Node (no BroadcastChannel, so only the server connects it); `localAddress` makes it another client address (e.g. 127.0.0.2). */
export function yClient(wsUrl: string, docId: string, opts: { params?: Record<string, string>; doc?: Y.Doc; localAddress?: string; awareness?: Awareness } = {}) {
  const doc = opts.doc ?? new Y.Doc()
  const { localAddress } = opts
  const Polyfill = localAddress
    ? class extends WebSocket {
        constructor(url: string, protocols?: string | string[]) {
          super(url, protocols, { localAddress })
        }
      }
    : WebSocket
  const provider = new WebsocketProvider(`${wsUrl}/sync`, docId, doc, {
    WebSocketPolyfill: Polyfill as unknown as typeof globalThis.WebSocket,
    disableBc: true,
    params: opts.params ?? {},
    maxBackoffTime: 200,
    ...(opts.awareness ? { awareness: opts.awareness } : {}),
  })
  const synced = new Promise<void>((res) => {
    if (provider.synced) res()
    else provider.once('sync', (s: boolean) => s && res())
  })
  return {
    doc,
    provider,
    text: doc.getText('text'),
    synced,
    destroy() {
      provider.destroy()
      doc.destroy()
    },
  }
}

/** Resolves when `check()` is true, re-checking on every update of `doc` (no polling sleeps). */
export function untilDoc(doc: Y.Doc, check: () => boolean, what = 'condition', timeoutMs = 15_000): Promise<void> {
  if (check()) return Promise.resolve()
  return new Promise((res, rej) => {
    const timer = setTimeout(() => {
      doc.off('update', onUpdate)
      rej(new Error(`timed out waiting for ${what}`))
    }, timeoutMs)
    const onUpdate = () => {
      if (check()) {
        clearTimeout(timer)
        doc.off('update', onUpdate)
        res()
      }
    }
    doc.on('update', onUpdate)
  })
}

/** A raw WebSocket to the sync endpoint that records frames and the close code (`localAddress`: e.g. 127.0.0.2, to be another client address). */
export async function rawSync(wsUrl: string, path: string, opts: { localAddress?: string } = {}) {
  // The server's overload guard refuses new WebSockets with a retryable 503 while its event loop
  // lags (a loaded test machine can cause that); a real client retries, and so does this one.
  for (let attempt = 1; ; attempt++) {
    try {
      return await rawSyncOnce(wsUrl, path, opts)
    } catch (err) {
      if (attempt >= 50 || !String(err).includes('Unexpected server response: 503')) throw err
      await new Promise((res) => setTimeout(res, 200))
    }
  }
}

async function rawSyncOnce(wsUrl: string, path: string, opts: { localAddress?: string }) {
  const ws = new WebSocket(`${wsUrl}${path}`, opts)
  const frames: Uint8Array[] = []
  const waiters: (() => void)[] = []
  ws.on('message', (d: Buffer) => {
    frames.push(new Uint8Array(d))
    waiters.splice(0).forEach((w) => w())
  })
  const closed = new Promise<{ code: number; reason: string }>((res) => ws.on('close', (code, reason) => res({ code, reason: reason.toString() })))
  await new Promise<void>((res, rej) => {
    ws.once('open', () => res())
    ws.once('error', rej)
    ws.once('close', () => res())
  })
  return {
    ws,
    frames,
    closed,
    send(data: Uint8Array | string) {
      ws.send(data)
    },
    /** Resolves with the first received frame (already received or future) matching `pred`. */
    async waitFor(pred: (f: Uint8Array) => boolean, timeoutMs = 10_000): Promise<Uint8Array> {
      const deadline = Date.now() + timeoutMs
      for (;;) {
        const hit = frames.find(pred)
        if (hit) return hit
        if (Date.now() > deadline) throw new Error('timed out waiting for frame')
        await new Promise<void>((res) => {
          waiters.push(res)
          setTimeout(res, 200)
        })
      }
    },
  }
}

/** Encodes a y-websocket sync message (`subtype` 0 step1, 1 step2, 2 update). */
export function syncMessage(subtype: number, payload: Uint8Array): Uint8Array {
  const enc = encoding.createEncoder()
  encoding.writeVarUint(enc, MessageType.sync)
  encoding.writeVarUint(enc, subtype)
  encoding.writeVarUint8Array(enc, payload)
  return encoding.toUint8Array(enc)
}

/** Encodes `[type, ...varuints]`. */
export function uintMessage(type: number, ...values: number[]): Uint8Array {
  const enc = encoding.createEncoder()
  encoding.writeVarUint(enc, type)
  for (const v of values) encoding.writeVarUint(enc, v)
  return encoding.toUint8Array(enc)
}

/** An awareness message setting `states` (`[clientId, clock, json]`), as a y-websocket client sends it. */
export function awarenessMessage(states: [number, number, string][]): Uint8Array {
  const inner = encoding.createEncoder()
  encoding.writeVarUint(inner, states.length)
  for (const [id, clock, json] of states) {
    encoding.writeVarUint(inner, id)
    encoding.writeVarUint(inner, clock)
    encoding.writeVarString(inner, json)
  }
  const enc = encoding.createEncoder()
  encoding.writeVarUint(enc, MessageType.awareness)
  encoding.writeVarUint8Array(enc, encoding.toUint8Array(inner))
  return encoding.toUint8Array(enc)
}

/** The nonce of a durable-ack frame, or null for any other frame. */
export function ackNonce(f: Uint8Array): number | null {
  const dec = decoding.createDecoder(f)
  return decoding.readVarUint(dec) === MessageType.durableAck ? decoding.readVarUint(dec) : null
}

/** Reads the message type of a frame. */
export function frameType(f: Uint8Array): number {
  return decoding.readVarUint(decoding.createDecoder(f))
}

/** Fetches a document's full state as a fresh client sees it: text and state vector. */
export async function snapshotOf(wsUrl: string, docId: string): Promise<{ text: string; sv: Uint8Array; update: Uint8Array }> {
  const c = yClient(wsUrl, docId)
  await c.synced
  const out = { text: c.text.toString(), sv: Y.encodeStateVector(c.doc), update: Y.encodeStateAsUpdate(c.doc) }
  c.destroy()
  return out
}
