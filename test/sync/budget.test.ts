import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import * as Y from 'yjs'
import * as encoding from 'lib0/encoding'
import { metric, startServer, type ServerProcess } from '../helpers/server.ts'
import { frameType, rawSync, snapshotOf, syncMessage, uintMessage } from '../helpers/clients.ts'
import { CloseCode, MessageType } from '../../src/protocol/messages.ts'

const KiB = 1024

/** A valid update inserting `bytes` characters (one struct). */
function bigInsert(bytes: number, ch = 'z'): Uint8Array {
  const doc = new Y.Doc()
  doc.getText('text').insert(0, ch.repeat(bytes))
  return Y.encodeStateAsUpdate(doc)
}

/** Sends a durable query and resolves with the ms until its ack arrived. */
async function ackAfter(raw: Awaited<ReturnType<typeof rawSync>>, t0: number, nonce = 1): Promise<number> {
  raw.send(uintMessage(MessageType.durableQuery, nonce))
  await raw.waitFor((f) => frameType(f) === MessageType.durableAck, 60_000)
  return performance.now() - t0
}

describe('frame caps after the first sync', () => {
  let server: ServerProcess
  beforeAll(async () => {
    server = await startServer({ args: ['--max-update-bytes', String(64 * KiB), '--max-state-vector-bytes', String(KiB), '--max-sync-rate', '100000'] })
  })
  afterAll(async () => {
    expect(await server?.stop()).toBe(0)
  })

  it('lets the first sync be large, then closes a frame above --max-update-bytes with 1009 and keeps what was stored', async () => {
    const raw = await rawSync(server.wsUrl, '/sync/caps')
    raw.send(syncMessage(1, bigInsert(200 * KiB)))
    await ackAfter(raw, 0)
    raw.send(syncMessage(2, bigInsert(100 * KiB, 'q')))
    expect((await raw.closed).code).toBe(CloseCode.tooBig)
    const stored = await snapshotOf(server.wsUrl, 'caps')
    expect(stored.text).toBe('z'.repeat(200 * KiB))
  })

  it('refuses a second large step 2 on the same socket (only the first sync is large)', async () => {
    const raw = await rawSync(server.wsUrl, '/sync/caps-twice')
    raw.send(syncMessage(1, bigInsert(100 * KiB)))
    raw.send(syncMessage(1, bigInsert(100 * KiB, 'y')))
    expect((await raw.closed).code).toBe(CloseCode.tooBig)
  })

  it('closes a state vector above --max-state-vector-bytes with 4400', async () => {
    const enc = encoding.createEncoder()
    encoding.writeVarUint(enc, 300)
    for (let i = 0; i < 300; i++) {
      encoding.writeVarUint(enc, 1_000_000 + i)
      encoding.writeVarUint(enc, 5)
    }
    const raw = await rawSync(server.wsUrl, '/sync/caps-sv')
    raw.send(syncMessage(0, encoding.toUint8Array(enc)))
    expect((await raw.closed).code).toBe(CloseCode.badMessage)
  })
})

describe('byte budgets', () => {
  it('reads a socket that sends faster than --sync-bytes-per-second only as fast as its budget refills; nothing is lost', async () => {
    const server = await startServer({ args: ['--max-frame-bytes', String(256 * KiB), '--max-update-bytes', String(256 * KiB), '--sync-bytes-per-second', String(512 * KiB), '--max-sync-rate', '100000'] })
    try {
      const update = bigInsert(200 * KiB)
      const raw = await rawSync(server.wsUrl, '/sync/budget')
      const t0 = performance.now()
      raw.send(syncMessage(1, update))
      for (let i = 0; i < 7; i++) raw.send(syncMessage(2, update)) // valid, adds nothing: costs the server a decode each
      const ms = await ackAfter(raw, t0)
      // 8 × 200 KiB against a 256 KiB burst and 512 KiB/s: at least ~2.6 s of reading.
      console.log(`8 × 200 KiB at a 512 KiB/s budget: acknowledged after ${ms.toFixed(0)} ms`)
      expect(ms).toBeGreaterThan(2000)
      expect(await metric(server, 'murmur_throttled_total')).toBeGreaterThan(0)
      expect((await snapshotOf(server.wsUrl, 'budget')).text.length).toBe(200 * KiB)
      raw.ws.close()
    } finally {
      expect(await server.stop()).toBe(0)
    }
  })

  it('shares --sync-bytes-per-second-per-ip between the sockets of one address; another address is not slowed', async () => {
    const server = await startServer({ args: ['--max-frame-bytes', String(256 * KiB), '--sync-bytes-per-second-per-ip', String(512 * KiB), '--max-sync-rate', '100000'] })
    try {
      const update = bigInsert(200 * KiB)
      const t0 = performance.now()
      const flooders = await Promise.all(Array.from({ length: 6 }, (_, i) => rawSync(server.wsUrl, `/sync/flood-${i}`)))
      for (const f of flooders) f.send(syncMessage(1, update))
      const flood = Promise.all(flooders.map((f) => ackAfter(f, t0)))
      const other = await rawSync(server.wsUrl, '/sync/other-address', { localAddress: '127.0.0.2' })
      other.send(syncMessage(1, bigInsert(10 * KiB)))
      const otherMs = await ackAfter(other, t0)
      const floodMs = Math.max(...(await flood))
      // 6 × 200 KiB from one address against a 512 KiB burst and 512 KiB/s: at least ~1.3 s.
      console.log(`one address, 6 × 200 KiB: last ack after ${floodMs.toFixed(0)} ms; another address's ack after ${otherMs.toFixed(0)} ms`)
      expect(floodMs).toBeGreaterThan(1000)
      expect(otherMs).toBeLessThan(floodMs)
      for (const f of [...flooders, other]) f.ws.close()
    } finally {
      expect(await server.stop()).toBe(0)
    }
  })
})
