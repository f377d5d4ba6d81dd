/**
 * y-webrtc messages of any size on the mesh (`session/mesh-parts.ts`):
 * reassembly bounds and hostile parts on the assembler alone, then over a
 * real WebRTC data channel in this process (@roamhq/wrtc) through
 * `MeshPort.adopt`, where a message above the channel's maximum size would
 * otherwise close the connection.
 */
import { afterEach, describe, expect, it, vi } from 'vitest'
import * as encoding from 'lib0/encoding'
import { MAX_WHOLE_MESSAGE_BYTES, MESH_PART_BYTES, PartAssembler, carryWholeMessages, splitMessage } from '../../src/session/mesh-parts.ts'
import { MeshPort } from '../../src/session/mesh-port.ts'
import { MeshMessage } from '../../src/protocol/messages.ts'
import { rtcPair, type TestConn } from '../helpers/rtc-pair.ts'

/** `n` bytes that are not all alike, starting with y-webrtc's sync type (0). */
function message(n: number, seed = 1): Uint8Array {
  const m = new Uint8Array(n)
  for (let i = 1; i < n; i++) m[i] = (i * 31 + seed * 7) & 0xff
  return m
}

function part(total: number, offset: number, bytes: Uint8Array | number): Uint8Array {
  const e = encoding.createEncoder()
  encoding.writeUint8(e, MeshMessage.part)
  encoding.writeVarUint(e, total)
  encoding.writeVarUint(e, offset)
  encoding.writeUint8Array(e, typeof bytes === 'number' ? new Uint8Array(bytes) : bytes)
  return encoding.toUint8Array(e)
}

/** Byte arrays as short comparable strings (vitest's deep equality is slow on megabytes). */
const digest = (ms: Uint8Array[]) => ms.map((m) => `${m.byteLength}:${hash(m)}`)
function hash(m: Uint8Array): number {
  let h = 0
  for (let i = 0; i < m.byteLength; i++) h = (Math.imul(h, 31) + m[i]) | 0
  return h
}

/** Feeds `frames` to `a`; the whole messages it returned. */
const feed = (a: PartAssembler, frames: Uint8Array[]) => frames.map((f) => a.push(f)).filter((m): m is Uint8Array => m !== null)

describe('parts and their reassembly', () => {
  afterEach(() => vi.restoreAllMocks())

  it('cuts a message into parts of at most MESH_PART_BYTES and puts it back together, at every size', () => {
    for (const n of [1, 100, MESH_PART_BYTES - 16, MESH_PART_BYTES - 15, MESH_PART_BYTES, 3 * MESH_PART_BYTES + 5, 1_000_000]) {
      const m = message(n, n)
      const parts = splitMessage(m)
      expect(parts.length).toBe(Math.ceil(n / (MESH_PART_BYTES - 16)))
      for (const p of parts) expect(p.byteLength).toBeLessThanOrEqual(MESH_PART_BYTES)
      const a = new PartAssembler()
      const whole = feed(a, parts)
      expect(digest(whole)).toEqual(digest([m]))
      expect(a.held).toBe(0)
      expect(a.dropped).toBe(0)
    }
  })

  it('hostile parts drop only the partial message; the next good one still arrives', () => {
    vi.spyOn(console, 'warn').mockImplementation(() => {})
    const m = message(5 * (MESH_PART_BYTES - 16), 2)
    const good = splitMessage(m)
    const cases: [string, Uint8Array[]][] = [
      ['a part skipped', [good[0], good[2]]],
      ['a part repeated (overlap)', [good[0], good[1], good[1]]],
      ['a part before the first', [good[1]]],
      ['a new message before the last was whole', [good[0], good[1], splitMessage(message(100))[0]]],
      ['a frame above MESH_PART_BYTES', [good[0], part(m.byteLength, MESH_PART_BYTES - 16, MESH_PART_BYTES)]],
      ['a total above the cap', [part(MAX_WHOLE_MESSAGE_BYTES + 1, 0, 1000)]],
      ['a part past its total', [part(100, 0, 101)]],
      ['a part of a different total', [good[0], part(m.byteLength + 1, MESH_PART_BYTES - 16, 10)]],
      ['an empty part', [part(10, 0, 0)]],
      ['a truncated header', [new Uint8Array([MeshMessage.part, 0xff])]],
      ['a varUint beyond 53 bits', [new Uint8Array([MeshMessage.part, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x7f, 0, 1])]],
      ['a message of a murmur type (smuggled history frame)', [part(3, 0, new Uint8Array([MeshMessage.history, 0, 0]))]],
    ]
    for (const [what, frames] of cases) {
      const a = new PartAssembler()
      expect(digest(feed(a, frames)), what).toEqual(digest(what.startsWith('a new message') ? [message(100)] : []))
      expect(a.dropped, what).toBeGreaterThanOrEqual(1)
      if (!what.startsWith('a new message')) expect(a.held, what).toBe(0)
      // The rest of a broken message is dropped too, and a good message after it arrives whole.
      const after = feed(a, [...good.slice(3), ...splitMessage(message(70_000, 3))])
      expect(digest(after), what).toEqual(digest([message(70_000, 3)]))
      expect(a.held, what).toBe(0)
    }
  })

  it('holds at most one message, at most its cap, and forgets it on reset', () => {
    vi.spyOn(console, 'warn').mockImplementation(() => {})
    const a = new PartAssembler(100_000)
    const big = splitMessage(message(100_001))
    expect(feed(a, big)).toEqual([])
    expect(a.held).toBe(0) // refused at the first part: nothing held
    const ok = splitMessage(message(100_000))
    feed(a, ok.slice(0, 3))
    expect(a.held).toBe(3 * (MESH_PART_BYTES - 16))
    a.reset()
    expect(a.held).toBe(0)
    expect(feed(a, ok.slice(3))).toEqual([])
  })
})

describe('y-webrtc messages of any size over a real data channel', () => {
  const pairs: ReturnType<typeof rtcPair>[] = []
  afterEach(() => {
    for (const p of pairs.splice(0)) p.close()
    vi.restoreAllMocks()
  })

  /** Two adopted connections; `frames` records what b's channel really carried. */
  async function joined() {
    const pair = rtcPair()
    pairs.push(pair)
    new MeshPort(MeshMessage.history).adopt('b', pair.a as never)
    new MeshPort(MeshMessage.history).adopt('a', pair.b as never)
    const frames: number[] = []
    pair.b.peer.on('data', (d: Uint8Array) => frames.push(d.byteLength))
    await pair.connect()
    return { ...pair, frames }
  }

  /** Resolves on the first event-loop turn where `cond()` holds. */
  const until = (cond: () => boolean) => new Promise<void>((res) => (function check() { if (cond()) res(); else setImmediate(check) })())

  /** Resolves once `conn`'s y-webrtc listener got `n` messages (or rejects when the connection closes first). */
  function untilSeen(conn: TestConn, n: number): Promise<Uint8Array[]> {
    return new Promise((res, rej) => {
      const check = () => {
        if (conn.seenByYWebrtc.length >= n) res(conn.seenByYWebrtc)
        else if (conn.closed) rej(new Error(`connection closed after ${conn.seenByYWebrtc.length} of ${n} messages`))
        else setImmediate(check)
      }
      check()
    })
  }

  it('a 1 MB message arrives whole and in order between small ones; small ones go unchanged', async () => {
    const { a, b, frames } = await joined()
    const sent = [message(10, 1), message(1_000_000, 2), message(20, 3), message(300_000, 4), message(MESH_PART_BYTES, 5)]
    for (const m of sent) a.peer.send(m)
    const seen = await untilSeen(b, sent.length)
    expect(digest(seen)).toEqual(digest(sent))
    expect(b.closed).toBe(false)
    // The first small message crossed as it was; the big ones in parts of at most 16 KiB.
    expect(frames[0]).toBe(10)
    expect(Math.max(...frames)).toBeLessThanOrEqual(MESH_PART_BYTES)
    // Both ways, and the connection still carries small messages unchanged afterwards.
    b.peer.send(message(700_000, 6))
    expect(digest(await untilSeen(a, 1))).toEqual(digest([message(700_000, 6)]))
    const n = frames.length
    a.peer.send(message(5, 7))
    await untilSeen(b, sent.length + 1)
    expect(frames.slice(n)).toEqual([5])
  })

  it('while parts wait for the channel, a small message waits behind them (order kept)', async () => {
    const { a, b } = await joined()
    const peer = a.peer as unknown as { cork(): void; uncork(): void; writableLength: number }
    peer.cork() // as when the channel's buffer is full: written parts stay queued in the stream
    a.peer.send(message(100_000, 1))
    expect(peer.writableLength).toBeGreaterThan(0)
    a.peer.send(message(20, 2))
    peer.uncork()
    expect(digest(await untilSeen(b, 2))).toEqual(digest([message(100_000, 1), message(20, 2)]))
  })

  // y-webrtc answers a peer's sync step 1 (with the whole document) as soon as it arrives. The
  // first side to connect sends it, and the other side's channel is open before simple-peer says
  // it connected: that answer must travel in parts too (sent whole, it closed the connection).
  it('an answer sent before this side\'s own connect event still goes in parts', async () => {
    let early = 0
    for (let i = 0; i < 5; i++) {
      const pair = rtcPair()
      pairs.push(pair)
      new MeshPort(MeshMessage.history).adopt('b', pair.a as never)
      new MeshPort(MeshMessage.history).adopt('a', pair.b as never)
      const answer = message(600_000, i)
      // A busy side: b's channel is open (data arrives) a moment before simple-peer says it connected.
      const stats = (pair.b.peer as any).getStats.bind(pair.b.peer)
      ;(pair.b.peer as any).getStats = (cb: (...args: unknown[]) => void) => stats((...args: unknown[]) => setTimeout(() => cb(...args), 100))
      let asker: TestConn | null = null
      const asked = new Promise<TestConn>((res) => {
        for (const me of [pair.a, pair.b]) {
          // The first side to connect asks (a small message, like sync step 1) ...
          me.peer.on('connect', () => asker === null && ((asker = me), me.peer.send(message(10, 9)), res(me)))
          // ... and the other answers at once, connected or not.
          me.peer.on('data', () => {
            if (me === asker || me.seenByYWebrtc.length !== 1) return
            if (!me.connected) early++
            me.peer.send(answer)
          })
        }
      })
      expect(digest(await untilSeen(await asked, 1))).toEqual(digest([answer]))
      await pair.connect()
      expect([pair.a.closed, pair.b.closed]).toEqual([false, false])
    }
    // Every pairing above answered before its own connect (the case this is about), or the test proved nothing.
    expect(early).toBe(5)
  })

  it('a peer that stops reading is closed once more than the cap waits for it; nothing else is held', async () => {
    const warn = vi.spyOn(console, 'warn').mockImplementation(() => {})
    const pair = rtcPair()
    pairs.push(pair)
    carryWholeMessages(pair.a.peer as never, MAX_WHOLE_MESSAGE_BYTES, 1_000_000) // a 1 MB cap instead of 32 MiB
    new MeshPort(MeshMessage.history).adopt('b', pair.a as never)
    new MeshPort(MeshMessage.history).adopt('a', pair.b as never)
    await pair.connect()
    const peer = pair.a.peer as unknown as { cork(): void; writableLength: number }
    peer.cork() // nothing leaves: as when the other side stopped reading
    pair.a.peer.send(message(600_000, 1))
    expect(peer.writableLength).toBeGreaterThan(600_000)
    expect(pair.a.closed).toBe(false)
    pair.a.peer.send(message(600_000, 2))
    await until(() => pair.a.closed)
    expect(warn).toHaveBeenCalledWith(expect.stringContaining('not reading'))
  })

  it('a half-received message is freed when its connection closes', async () => {
    const { a, b } = await joined()
    const held = carryWholeMessages(b.peer as never) // the assembler MeshPort.adopt gave b's connection
    a.peer.send(part(50_000, 0, 10_000))
    await until(() => held.held > 0)
    expect(held.held).toBe(10_000)
    a.peer.destroy()
    await until(() => b.closed)
    expect(held.held).toBe(0)
  })

  it('hostile parts change nothing else: the connection stays open and the next big message arrives', async () => {
    vi.spyOn(console, 'warn').mockImplementation(() => {})
    const { a, b } = await joined()
    const send = (f: Uint8Array) => a.peer.send(f) // frames of murmur's types pass through unchanged
    send(part(MAX_WHOLE_MESSAGE_BYTES + 1, 0, 1000))
    send(part(100_000, 0, 10_000))
    send(part(100_000, 20_000, 10_000)) // out of order
    send(part(100, 0, 101))
    send(new Uint8Array([MeshMessage.part]))
    send(part(50_000, 0, 10_000)) // left half done: the next message replaces it
    a.peer.send(message(400_000, 8))
    const seen = await untilSeen(b, 1)
    expect(digest(seen)).toEqual(digest([message(400_000, 8)]))
    expect(b.closed).toBe(false)
  })
})
