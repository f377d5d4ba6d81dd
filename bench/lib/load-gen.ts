/**
 * Load generator child process for `bench/load.ts`: raw y-websocket protocol
 * clients (the `ws` package, no y-websocket provider), every client of a room
 * in this process so relay latency is measured on one clock.
 *
 * Each client types one character per edit at the end of the shared text, at
 * `rate` edits per second with a random phase. The update is the one Yjs
 * itself would encode for that keystroke (`keystrokeUpdate`, checked against
 * Yjs in `test/server/load-gen.test.ts`), written by hand so that generating
 * an edit costs a few bytes of encoding rather than a Y.Doc transaction: the
 * generators can then offer 3× the saturating load on the same machine. It goes
 * out as `[sync, update, bytes]`; the sender notes the time under (clientID, clock).
 * Receivers do not apply updates (that would cost the generator more than the
 * server): they read the first struct's client and clock from the update
 * header and look up when it was sent. Every edit should reach the other
 * `clients - 1` clients of its room.
 *
 * IPC: parent sends `{type:'step', ...}`; the child connects everything and
 * answers `{type:'connected'}`; the parent sends `{type:'go'}`; after
 * `seconds` of editing and a drain period the child answers `{type:'result'}`
 * and closes its sockets.
 */
import WebSocket from 'ws'
import * as Y from 'yjs'
import * as encoding from 'lib0/encoding'
import * as decoding from 'lib0/decoding'
import { cpuSeconds } from './servers.ts'

export interface StepOrder {
  type: 'step'
  wsUrl: string
  rooms: string[]
  clients: number
  rate: number
  seconds: number
  drainMs: number
}

export interface GenResult {
  type: 'result'
  sent: number
  /** Edits that should have been received (sent × (clients − 1)). */
  expected: number
  received: number
  /** Latency histogram: `hist[i]` = samples in [i, i+1) × BUCKET_MS; last bucket is overflow. */
  hist: number[]
  closes: Record<string, number>
  connectErrors: number
  connectMs: number
  cpuSeconds: number
  elapsedMs: number
}

/** Histogram resolution (ms) and size: 0.1 ms buckets up to 20 s. */
export const BUCKET_MS = 0.1
export const BUCKETS = 200_000

function syncUpdateFrame(update: Uint8Array): Uint8Array {
  const enc = encoding.createEncoder()
  encoding.writeVarUint(enc, 0)
  encoding.writeVarUint(enc, 2)
  encoding.writeVarUint8Array(enc, update)
  return encoding.toUint8Array(enc)
}

const STEP1_EMPTY = (() => {
  const enc = encoding.createEncoder()
  encoding.writeVarUint(enc, 0)
  encoding.writeVarUint(enc, 0)
  encoding.writeVarUint8Array(enc, Y.encodeStateVector(new Y.Doc()))
  return encoding.toUint8Array(enc)
})()

/**
 * The Yjs v1 update of one keystroke `ch` by `client` at `clock`: appended to
 * its previous keystroke (left origin `clock - 1`), or for the first one
 * directly into the root type `text`. No deletes.
 */
export function keystrokeUpdate(client: number, clock: number, ch: string): Uint8Array {
  const enc = encoding.createEncoder()
  encoding.writeVarUint(enc, 1) // clients
  encoding.writeVarUint(enc, 1) // structs of this client
  encoding.writeVarUint(enc, client)
  encoding.writeVarUint(enc, clock)
  if (clock === 0) {
    encoding.writeUint8(enc, 4) // ContentString, no origins: parent follows
    encoding.writeVarUint(enc, 1) // parent is a root type, by name
    encoding.writeVarString(enc, 'text')
  } else {
    encoding.writeUint8(enc, 0x80 | 4) // ContentString with a left origin
    encoding.writeVarUint(enc, client)
    encoding.writeVarUint(enc, clock - 1)
  }
  encoding.writeVarString(enc, ch)
  encoding.writeVarUint(enc, 0) // empty delete set
  return encoding.toUint8Array(enc)
}

interface Client {
  ws: WebSocket
  /** Yjs client id and the clock of its next keystroke. */
  id: number
  clock: number
  /** sentAt[clock] for this client's own edits. */
  sentAt: Float64Array
  nextEditAt: number
  room: number
}

async function runStep(order: StepOrder): Promise<void> {
  const hist = new Uint32Array(BUCKETS)
  const closes: Record<string, number> = {}
  let received = 0
  let sent = 0
  let connectErrors = 0
  let running = true
  const byClientId = new Map<number, Client>()
  const clients: Client[] = []
  const maxEdits = Math.ceil(order.rate * (order.seconds + 5)) + 16

  const t0 = performance.now()
  // Connect in batches so the server sees a ramp, not a thundering herd.
  const open = (room: number): Promise<void> =>
    new Promise((resolve) => {
      const ws = new WebSocket(`${order.wsUrl}/sync/${order.rooms[room]}`, { perMessageDeflate: false })
      ws.binaryType = 'nodebuffer'
      const c: Client = { ws, id: 1 + Math.floor(Math.random() * 0xfffffffe), clock: 0, sentAt: new Float64Array(maxEdits), nextEditAt: 0, room }
      let synced = false
      ws.on('message', (data: Buffer) => {
        // [0, 1, …] step 2 (our sync answered), [0, 2, update] a relayed edit.
        if (data[0] !== 0) return
        if (data[1] === 1 && !synced) {
          synced = true
          clients.push(c)
          byClientId.set(c.id, c)
          resolve()
          return
        }
        if (data[1] !== 2 || !running) return
        const dec = decoding.createDecoder(data)
        decoding.readVarUint(dec)
        decoding.readVarUint(dec)
        decoding.readVarUint(dec) // payload length
        decoding.readVarUint(dec) // number of clients in the update
        decoding.readVarUint(dec) // number of structs
        const client = decoding.readVarUint(dec)
        const clock = decoding.readVarUint(dec)
        const sender = byClientId.get(client)
        const t = sender?.sentAt[clock]
        if (!t) return
        const ms = performance.now() - t
        hist[Math.min(BUCKETS - 1, Math.floor(ms / BUCKET_MS))]++
        received++
      })
      ws.on('close', (code) => {
        if (running) closes[code] = (closes[code] ?? 0) + 1
        if (!synced) {
          connectErrors++
          resolve()
        }
      })
      ws.on('error', () => {})
      ws.on('unexpected-response', (_req, res) => {
        closes[`http ${res.statusCode}`] = (closes[`http ${res.statusCode}`] ?? 0) + 1
        connectErrors++
        resolve()
      })
      ws.on('open', () => ws.send(STEP1_EMPTY))
    })
  const all = order.rooms.flatMap((_, r) => Array.from({ length: order.clients }, () => r))
  for (let i = 0; i < all.length; i += 100) await Promise.all(all.slice(i, i + 100).map(open))
  const connectMs = performance.now() - t0
  process.send!({ type: 'connected', clients: clients.length, connectErrors, connectMs })
  await new Promise<void>((res) => process.once('message', () => res()))

  const cpu0 = cpuSeconds(process.pid)
  const start = performance.now()
  const interval = 1000 / order.rate
  for (const c of clients) c.nextEditAt = start + Math.random() * interval
  const end = start + order.seconds * 1000
  await new Promise<void>((res) => {
    const tick = () => {
      const now = performance.now()
      if (now >= end) return res()
      for (const c of clients) {
        // Catch up at most one edit per tick: a late generator sends fewer edits (reported), not bursts.
        if (c.nextEditAt > now || c.ws.readyState !== c.ws.OPEN) continue
        c.nextEditAt = Math.max(c.nextEditAt + interval, now - interval)
        const clock = c.clock
        if (clock >= c.sentAt.length) continue
        c.sentAt[clock] = performance.now()
        c.ws.send(syncUpdateFrame(keystrokeUpdate(c.id, clock, 'x')))
        c.clock++
        sent++
      }
      setTimeout(tick, 2)
    }
    tick()
  })
  const elapsedMs = performance.now() - start
  await new Promise((r) => setTimeout(r, order.drainMs))
  running = false
  const cpu = cpuSeconds(process.pid) - cpu0
  // Per-room fan-out: an edit should reach every other client that was connected.
  const perRoom = new Map<number, number>()
  for (const c of clients) perRoom.set(c.room, (perRoom.get(c.room) ?? 0) + 1)
  let expected = 0
  for (const c of clients) expected += c.clock * ((perRoom.get(c.room) ?? 1) - 1)
  const result: GenResult = { type: 'result', sent, expected, received, hist: [], closes, connectErrors, connectMs, cpuSeconds: cpu, elapsedMs }
  // Send the histogram sparsely.
  const sparse: number[] = []
  hist.forEach((n, i) => n && sparse.push(i, n))
  result.hist = sparse
  process.send!(result)
  for (const c of clients) {
    c.ws.terminate()
  }
}

// Only as a child with an IPC channel (load.ts also imports this module's types and constants).
if (process.send) {
  process.on('message', (m: StepOrder) => {
    if (m.type === 'step') void runStep(m)
  })
  process.send({ type: 'ready' })
}
