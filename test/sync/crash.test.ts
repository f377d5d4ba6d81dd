import { describe, expect, it } from 'vitest'
import * as Y from 'yjs'
import * as decoding from 'lib0/decoding'
import { startServer } from '../helpers/server.ts'
import { frameType, rawSync, snapshotOf, syncMessage, uintMessage } from '../helpers/clients.ts'
import { MessageType } from '../../src/protocol/messages.ts'

/** mulberry32: a tiny seeded PRNG so a failing run can be repeated exactly. */
function prng(seed: number) {
  return () => {
    seed = (seed + 0x6d2b79f5) | 0
    let t = Math.imul(seed ^ (seed >>> 15), 1 | seed)
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296
  }
}

describe('durability under kill -9', () => {
  const seed = Number(process.env.SEED ?? Date.now() % 100_000)
  it(`keeps every acknowledged update through repeated SIGKILLs (seed ${seed})`, async () => {
    const random = prng(seed)
    let server = await startServer()
    const confirmed = new Set<string>()
    const writers = 3
    for (let round = 0; round < 5; round++) {
      // Each writer has its own Y.Doc and streams small edits, each followed by a durability query.
      const sockets = await Promise.all(Array.from({ length: writers }, () => rawSync(server.wsUrl, '/sync/crash-doc')))
      let stop = false
      const loops = sockets.map(async (raw, w) => {
        const doc = new Y.Doc()
        const text = doc.getText('text')
        const sent = new Map<number, string>()
        raw.ws.on('message', (d: Buffer) => {
          const f = new Uint8Array(d)
          if (frameType(f) !== MessageType.durableAck) return
          const dec = decoding.createDecoder(f)
          decoding.readVarUint(dec)
          const nonce = decoding.readVarUint(dec)
          for (const [n, marker] of sent) if (n <= nonce) (confirmed.add(marker), sent.delete(n))
        })
        doc.on('update', (u: Uint8Array) => raw.ws.readyState === raw.ws.OPEN && raw.send(syncMessage(2, u)))
        for (let i = 0; !stop && raw.ws.readyState === raw.ws.OPEN; i++) {
          const marker = `<${round}.${w}.${i}>`
          text.insert(text.length, marker)
          sent.set(i + 1, marker)
          raw.send(uintMessage(MessageType.durableQuery, i + 1))
          await new Promise((r) => setTimeout(r, random() * 4))
        }
      })
      await new Promise((r) => setTimeout(r, 100 + random() * 400))
      expect(await server.stop('SIGKILL')).toBe(null)
      stop = true
      await Promise.all(loops)
      server = await startServer({ dataDir: server.dataDir })
      const text = (await snapshotOf(server.wsUrl, 'crash-doc')).text
      const missing = [...confirmed].filter((m) => !text.includes(m))
      expect(missing, `seed ${seed}: confirmed but lost`).toEqual([])
    }
    expect(confirmed.size).toBeGreaterThan(20)
    expect(await server.stop()).toBe(0)
  })
})
