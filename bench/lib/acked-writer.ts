/**
 * A writer that asks for durable acknowledgements while a load step runs
 * (`bench/load.ts`): one raw `/sync` socket typing one keystroke every
 * `everyMs` and a durable query after every `ackEvery` keystrokes; it keeps
 * the highest clock the server acknowledged. `verify` later reads the
 * document with a fresh client and says whether every acknowledged
 * keystroke is stored.
 */
import WebSocket from 'ws'
import * as Y from 'yjs'
import { MessageType } from '../../src/protocol/messages.ts'
import { ackNonce, snapshotOf, syncMessage, uintMessage } from '../../test/helpers/clients.ts'
import { keystrokeUpdate } from './load-gen.ts'

/** A running acked writer. */
export interface AckedWriter {
  docId: string
  /** Keystrokes sent, and the number acknowledged as durable so far. */
  readonly sent: number
  readonly acked: number
  /** Stops typing (acks still in flight keep counting until `close`). */
  stop(): void
  close(): void
}

/** Connects to `wsUrl` and starts typing into `docId`. Resolves once connected and synced. */
export async function startAckedWriter(wsUrl: string, docId: string, everyMs = 10, ackEvery = 10): Promise<AckedWriter> {
  const ws = new WebSocket(`${wsUrl}/sync/${docId}`, { perMessageDeflate: false })
  const client = 1 + Math.floor(Math.random() * 0xfffffffe)
  let sent = 0
  let acked = 0
  /** nonce → clock it covers */
  const asked = new Map<number, number>()
  await new Promise<void>((res, rej) => {
    ws.once('open', () => {
      ws.send(syncMessage(0, Y.encodeStateVector(new Y.Doc())))
      res()
    })
    ws.once('error', rej)
  })
  ws.on('error', () => {})
  ws.on('message', (d: Buffer) => {
    const nonce = ackNonce(new Uint8Array(d))
    if (nonce === null) return
    acked = Math.max(acked, asked.get(nonce) ?? 0)
    asked.delete(nonce)
  })
  const timer = setInterval(() => {
    if (ws.readyState !== ws.OPEN) return
    ws.send(syncMessage(2, keystrokeUpdate(client, sent, 'a')))
    sent++
    if (sent % ackEvery === 0) {
      asked.set(sent, sent)
      ws.send(uintMessage(MessageType.durableQuery, sent))
    }
  }, everyMs)
  return {
    docId,
    get sent() {
      return sent
    },
    get acked() {
      return acked
    },
    stop: () => clearInterval(timer),
    close() {
      clearInterval(timer)
      ws.close()
    },
  }
}

/** Keystrokes of `docId` a fresh client of `wsUrl` finds stored (all writers' together: each doc has one writer). */
export async function storedKeystrokes(wsUrl: string, docId: string): Promise<number> {
  const snap = await snapshotOf(wsUrl, docId)
  return snap.text.length
}
