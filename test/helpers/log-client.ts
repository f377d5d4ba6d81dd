/**
 * A raw `/log/<docId>` client for tests and benches: sends protocol frames
 * as given (forged ones too) and collects what the server answers.
 */
import WebSocket from 'ws'
import { decodeServerFrame, encodeClientFrame, LogMessage, type ClientLogFrame, type LogEntry, type ServerLogFrame } from '../../src/protocol/log.ts'

/** An open raw log socket. */
export interface RawLog {
  ws: WebSocket
  /** Every decoded frame received so far. */
  frames: ServerLogFrame[]
  /** Every raw frame received so far. */
  raw: Uint8Array[]
  send(f: ClientLogFrame): void
  /** Resolves with the first received frame (already or later) matching `pick`. */
  until<T extends ServerLogFrame>(pick: (f: ServerLogFrame) => f is T, ms?: number): Promise<T>
  /** Resolves with the close code. */
  closed: Promise<number>
  close(): void
}

/** Opens `wsUrl/log/<docId>` and resolves once the socket is open. */
export async function rawLog(wsUrl: string, docId: string): Promise<RawLog> {
  const ws = new WebSocket(`${wsUrl}/log/${docId}`)
  ws.binaryType = 'arraybuffer'
  const frames: ServerLogFrame[] = []
  const raw: Uint8Array[] = []
  const waiters = new Set<() => void>()
  ws.on('message', (d: ArrayBuffer) => {
    const bytes = new Uint8Array(d)
    raw.push(bytes)
    frames.push(decodeServerFrame(bytes))
    for (const w of [...waiters]) w()
  })
  const closed = new Promise<number>((res) => ws.once('close', (code) => res(code)))
  await new Promise<void>((res, rej) => {
    ws.once('open', () => res())
    ws.once('error', rej)
  })
  return {
    ws,
    frames,
    raw,
    closed,
    send: (f) => ws.send(encodeClientFrame(f)),
    until<T extends ServerLogFrame>(pick: (f: ServerLogFrame) => f is T, ms = 20_000): Promise<T> {
      return new Promise<T>((res, rej) => {
        const check = () => {
          const hit = frames.find(pick)
          if (hit) {
            waiters.delete(check)
            clearTimeout(timer)
            res(hit)
          }
        }
        const timer = setTimeout(() => (waiters.delete(check), rej(new Error(`timed out; frames: ${frames.map((f) => f.type).join(',')}`))), ms)
        waiters.add(check)
        check()
      })
    },
    close: () => ws.close(),
  }
}

/** Subscribes from `cursor` and resolves with every entry up to the caught-up marker. */
export async function readLog(wsUrl: string, docId: string, cursor = 0): Promise<{ entries: LogEntry[]; lastSeq: number; count: number; raw: Uint8Array[] }> {
  const c = await rawLog(wsUrl, docId)
  c.send({ type: LogMessage.subscribe, cursor })
  const done = await c.until((f): f is Extract<ServerLogFrame, { type: 11 }> => f.type === LogMessage.caughtUp)
  // Only the catch-up: live relays that follow it may repeat entries the read already carried.
  const entries = c.frames.slice(0, c.frames.indexOf(done)).flatMap((f) => (f.type === LogMessage.entries ? f.entries : []))
  c.close()
  return { entries, lastSeq: done.lastSeq, count: done.count, raw: c.raw }
}

/** Type guards for `until`. */
export const is = {
  appended: (f: ServerLogFrame): f is Extract<ServerLogFrame, { type: 12 }> => f.type === LogMessage.appended,
  caughtUp: (f: ServerLogFrame): f is Extract<ServerLogFrame, { type: 11 }> => f.type === LogMessage.caughtUp,
  snapshotDone: (f: ServerLogFrame): f is Extract<ServerLogFrame, { type: 13 }> => f.type === LogMessage.snapshotDone,
}
