/**
 * The history's side channel on the mesh (`MeshPort` + `HistoryMeshSync`)
 * over a real WebRTC data channel in this process: a multi-megabyte history
 * arrives whole, y-webrtc never sees a history message (and still gets its
 * own), a hello that arrives before the history is open is answered once it
 * opens, and hostile frames change nothing and stop nothing.
 */
import { afterEach, describe, expect, it, vi } from 'vitest'
import * as Y from 'yjs'
import * as encoding from 'lib0/encoding'
import { MeshPort } from '../../src/session/mesh-port.ts'
import { HistoryMeshSync } from '../../src/history/mesh-sync.ts'
import { HistoryLog } from '../../src/history/log.ts'
import { MeshMessage } from '../../src/protocol/messages.ts'
import type { Version } from '../../src/history/versions.ts'
import { rtcPair } from '../helpers/rtc-pair.ts'

const pairs: ReturnType<typeof rtcPair>[] = []
const syncs: HistoryMeshSync[] = []
afterEach(() => {
  for (const s of syncs.splice(0)) s.destroy()
  for (const p of pairs.splice(0)) p.close()
  vi.restoreAllMocks()
})

/** Two ports joined by a real data channel (ids 'a' and 'b'). */
function joined() {
  const pair = rtcPair()
  pairs.push(pair)
  const portA = new MeshPort(MeshMessage.history)
  const portB = new MeshPort(MeshMessage.history)
  portA.adopt('b', pair.a as never)
  portB.adopt('a', pair.b as never)
  return { pair, portA, portB }
}

const opts = { forward: () => false, isProviderOrigin: () => false }
const sync = (log: HistoryLog, port: MeshPort, extra = {}) => {
  const s = new HistoryMeshSync(log.doc, port, { ...opts, ...extra })
  syncs.push(s)
  return s
}

const version = (i: number, chars: number): Version => {
  let text = ''
  for (let k = 0; text.length < chars; k++) text += `version ${i}, line ${k}\n`
  return { id: `v${i}`, at: 1_000 + i, by: ['Ada'], name: '', manual: false, added: 0, removed: 0, text: text.slice(0, chars) }
}

/** Resolves once `log` lists `n` versions (checked on every change). */
function untilCount(log: HistoryLog, n: number, ms = 30_000): Promise<void> {
  if (log.list().length >= n) return Promise.resolve()
  return new Promise((res, rej) => {
    const timer = setTimeout(() => rej(new Error(`timed out: ${log.list().length} of ${n} versions`)), ms)
    const off = log.onChange(() => log.list().length >= n && (clearTimeout(timer), off(), res()))
  })
}

function frame(write: (e: encoding.Encoder) => void): Uint8Array {
  const e = encoding.createEncoder()
  encoding.writeVarUint(e, MeshMessage.history)
  write(e)
  return encoding.toUint8Array(e)
}

describe('history on the mesh (real data channel)', () => {
  it('a new peer gets a 3 MB history in 16 KiB parts; y-webrtc sees none of it and still gets its own messages', async () => {
    const { pair, portA, portB } = joined()
    const a = new HistoryLog()
    a.doc.transact(() => {
      for (let i = 0; i < 30; i++) a.add(version(i, 100_000))
    })
    const b = new HistoryLog()
    sync(a, portA)
    const sb = sync(b, portB)
    await pair.connect()
    await untilCount(b, 30)
    expect(b.list().map((v) => v.text)).toEqual(a.list().map((v) => v.text))
    expect(sb.received).toBe(1)
    // A version taken on A afterwards arrives live.
    a.add(version(99, 10))
    await untilCount(b, 31)
    // y-webrtc's listener saw no history message; a y-webrtc message (type 0) still reaches it.
    ;(pair.a.peer as any).send(new Uint8Array([0, 2, 0]))
    await vi.waitFor(() => expect(pair.b.seenByYWebrtc.some((m) => m[0] === 0)).toBe(true))
    expect([...pair.a.seenByYWebrtc, ...pair.b.seenByYWebrtc].filter((m) => m[0] === MeshMessage.history)).toEqual([])
  }, 60_000)

  it('a hello that arrives before the history is open is answered once it opens', async () => {
    const { pair, portA, portB } = joined()
    const a = new HistoryLog()
    const b = new HistoryLog()
    a.add(version(1, 100))
    b.add(version(2, 100))
    // Listeners run in order: by the time this one hears A's hello, B's port has held it.
    const helloArrived = new Promise<void>((res) => pair.b.peer.on('data', (d: Uint8Array) => d[0] === MeshMessage.history && res()))
    sync(a, portA) // A says hello once connected; B's history is not open yet
    await pair.connect()
    await helloArrived
    sync(b, portB)
    await Promise.all([untilCount(a, 2), untilCount(b, 2)])
  }, 30_000)

  it('hostile frames (truncated, unknown kinds, bad updates, too large) change nothing and stop nothing', async () => {
    const warn = vi.spyOn(console, 'warn').mockImplementation(() => {})
    const { pair, portA, portB } = joined()
    const b = new HistoryLog()
    sync(b, portB, { maxUpdateBytes: 64 * 1024 })
    sync(new HistoryLog(), portA) // an honest history on A too, so hellos are answered
    await pair.connect()
    const send = (m: Uint8Array) => (pair.a.peer as any).send(m)
    send(new Uint8Array([MeshMessage.history])) // no kind
    send(frame((e) => encoding.writeVarUint(e, 0))) // hello without a state vector
    send(frame((e) => (encoding.writeVarUint(e, 0), encoding.writeVarUint8Array(e, new Uint8Array([200, 200, 200]))))) // bad state vector
    send(frame((e) => encoding.writeVarUint(e, 7))) // unknown kind
    send(frame((e) => (encoding.writeVarUint(e, 1), encoding.writeUint8(e, 1), encoding.writeUint8Array(e, new Uint8Array([1, 2, 3, 4, 5]))))) // not an update
    // An update above maxUpdateBytes, in parts: dropped whole.
    const big = new HistoryLog()
    big.add(version(5, 100_000))
    const bytes = Y.encodeStateAsUpdate(big.doc)
    for (let at = 0; at < bytes.length; at += 16_000) {
      const last = at + 16_000 >= bytes.length
      send(frame((e) => (encoding.writeVarUint(e, 1), encoding.writeUint8(e, last ? 1 : 0), encoding.writeUint8Array(e, bytes.subarray(at, at + 16_000)))))
    }
    send(new Uint8Array(0)) // what an older client answers to a type it does not know
    // Then an honest small update: it applies.
    const ok = new HistoryLog()
    ok.add(version(6, 10))
    const small = Y.encodeStateAsUpdate(ok.doc)
    send(frame((e) => (encoding.writeVarUint(e, 1), encoding.writeUint8(e, 1), encoding.writeUint8Array(e, small))))
    await untilCount(b, 1)
    expect(b.list().map((v) => v.id)).toEqual(['v6'])
    expect(pair.a.connected && pair.b.connected).toBe(true)
    expect(warn).toHaveBeenCalled()
  }, 30_000)

  it('a newcomer meeting two peers with the same history downloads it about once, not once per peer', async () => {
    const shared = new HistoryLog()
    shared.doc.transact(() => {
      for (let i = 0; i < 10; i++) shared.add(version(i, 50_000))
    })
    const a = new HistoryLog()
    const b = new HistoryLog()
    Y.applyUpdate(a.doc, Y.encodeStateAsUpdate(shared.doc))
    Y.applyUpdate(b.doc, Y.encodeStateAsUpdate(shared.doc))
    const size = Y.encodeStateAsUpdate(shared.doc).byteLength
    // C is connected to A and to B (two real data channels); A and B are not connected to each other here.
    const toA = rtcPair()
    const toB = rtcPair()
    pairs.push(toA, toB)
    const portA = new MeshPort(MeshMessage.history)
    const portB = new MeshPort(MeshMessage.history)
    const portC = new MeshPort(MeshMessage.history)
    portA.adopt('c', toA.a as never)
    portC.adopt('a', toA.b as never)
    portB.adopt('c', toB.a as never)
    portC.adopt('b', toB.b as never)
    const sa = sync(a, portA)
    const sb = sync(b, portB)
    await Promise.all([toA.connect(), toB.connect()])
    const c = new HistoryLog()
    sync(c, portC) // C opens its history with both channels open: it says hello to one, then the other
    await untilCount(c, 10)
    // Both answers are in once each peer has received C's (empty) answer to its own hello and C asked both.
    await vi.waitFor(() => expect(sa.received + sb.received).toBe(2))
    await vi.waitFor(() => expect(sa.sentBytes > 0 && sb.sentBytes > 0).toBe(true))
    console.log(`[history] newcomer with two peers: ${sa.sentBytes + sb.sentBytes} bytes sent for a ${size}-byte history`)
    expect(sa.sentBytes + sb.sentBytes).toBeLessThan(1.2 * size)
  }, 30_000)
})
