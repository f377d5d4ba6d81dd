import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import * as Y from 'yjs'
import { metric, startServer, type ServerProcess } from '../helpers/server.ts'
import { rawSync, syncMessage, untilDoc, yClient } from '../helpers/clients.ts'
import { CloseCode } from '../../src/protocol/messages.ts'

/**
 * An update whose first struct depends on one the server never got: `held`
 * (`structs` one-character items that cannot merge, about 11 bytes each) and
 * the tiny `missing` update it waits for.
 */
function heldUpdate(structs: number): { missing: Uint8Array; held: Uint8Array; clientID: number } {
  const doc = new Y.Doc()
  const text = doc.getText('text')
  text.insert(0, 'a')
  const missing = Y.encodeStateAsUpdate(doc)
  const sv = Y.encodeStateVector(doc)
  doc.transact(() => {
    for (let i = 0; i < structs; i++) text.insert(0, 'b') // prepending: no two items merge
  })
  return { missing, held: Y.encodeStateAsUpdate(doc, sv), clientID: doc.clientID }
}

/** Largest round trip (ms) a yClient pair on `docId` sees while `during` runs. */
async function worstRoundTrip(server: ServerProcess, docId: string, during: Promise<unknown>): Promise<number> {
  const [a, b] = [yClient(server.wsUrl, docId), yClient(server.wsUrl, docId)]
  await Promise.all([a.synced, b.synced])
  let worst = 0
  let done = false
  void during.finally(() => (done = true))
  for (let i = 0; !done || i < 3; i++) {
    const t0 = performance.now()
    a.text.insert(a.text.length, 'x')
    const n = a.text.length
    await untilDoc(b.doc, () => b.text.length === n, 'bystander round trip', 60_000)
    worst = Math.max(worst, performance.now() - t0)
  }
  a.destroy()
  b.destroy()
  return worst
}

describe('updates held for missing dependencies', () => {
  let server: ServerProcess

  beforeAll(async () => {
    server = await startServer({ args: ['--max-sync-rate', '100000'] })
  })

  afterAll(async () => {
    expect(await server?.stop()).toBe(0)
  })

  it('are decoded once, not again each time the room changes (no event-loop amplification)', async () => {
    const { missing, held, clientID } = heldUpdate(85_000)
    expect(held.byteLength).toBeLessThan(1024 * 1024) // under the per-socket bound, so it is held
    const decodedBefore = await metric(server, 'murmur_update_bytes_decoded_total')

    const attacker = await rawSync(server.wsUrl, '/sync/amplified')
    attacker.send(syncMessage(2, held))
    await expect.poll(() => metric(server, 'murmur_held_update_bytes'), { timeout: 20_000 }).toBe(held.byteLength)

    // 50 tiny updates from someone else: before the fix each one re-decoded the held megabyte.
    const writer = yClient(server.wsUrl, 'amplified')
    const observer = yClient(server.wsUrl, 'amplified')
    await Promise.all([writer.synced, observer.synced])
    const typing = (async () => {
      for (let i = 0; i < 50; i++) {
        writer.text.insert(0, 'w')
        await untilDoc(observer.doc, () => observer.text.length === i + 1, 'tiny update relayed')
      }
    })()
    const worst = await worstRoundTrip(server, 'bystander', typing)
    await typing
    const tinyBytes = 50 * 40 // each tiny update is well under 40 bytes
    const decoded = (await metric(server, 'murmur_update_bytes_decoded_total')) - decodedBefore
    console.log(`held ${held.byteLength} B + 50 tiny updates: ${decoded} B decoded; worst round trip on another document ${worst.toFixed(0)} ms`)
    expect(decoded).toBeLessThan(held.byteLength + tinyBytes)

    // When what it waits for arrives, it is applied (from the remembered needs) and released.
    attacker.send(syncMessage(2, missing))
    await untilDoc(observer.doc, () => observer.text.length === 50 + 1 + 85_000, 'held update applied', 30_000)
    expect(Y.encodeStateVector(observer.doc)).toBeDefined()
    expect(observer.doc.store.clients.has(clientID)).toBe(true)
    expect(await metric(server, 'murmur_held_update_bytes')).toBe(0)
    attacker.ws.close()
    writer.destroy()
    observer.destroy()
  })

  it('are bounded per socket: a held update above the bound closes the sender with 4509 and stores nothing', async () => {
    const { held } = heldUpdate(110_000)
    expect(held.byteLength).toBeGreaterThan(1024 * 1024)
    const attacker = await rawSync(server.wsUrl, '/sync/over-bound')
    attacker.send(syncMessage(2, held))
    expect((await attacker.closed).code).toBe(CloseCode.missingDependencies)
    expect(await metric(server, 'murmur_held_update_bytes')).toBe(0)
    const check = yClient(server.wsUrl, 'over-bound')
    await check.synced
    expect(check.text.length).toBe(0)
    check.destroy()
  })

  it('are bounded across sockets by --max-held-bytes-total', async () => {
    const small = await startServer({ args: ['--max-held-bytes-total', String(600 * 1024)] })
    try {
      const first = heldUpdate(40_000) // ~440 KB: held
      const second = heldUpdate(40_000) // would pass 600 KiB in total
      const a = await rawSync(small.wsUrl, '/sync/total-a')
      a.send(syncMessage(2, first.held))
      await expect.poll(() => metric(small, 'murmur_held_update_bytes'), { timeout: 20_000 }).toBe(first.held.byteLength)
      const b = await rawSync(small.wsUrl, '/sync/total-b')
      b.send(syncMessage(2, second.held))
      expect((await b.closed).code).toBe(CloseCode.missingDependencies)
      a.ws.close()
      await a.closed
      await expect.poll(() => metric(small, 'murmur_held_update_bytes'), { timeout: 10_000 }).toBe(0)
    } finally {
      expect(await small.stop()).toBe(0)
    }
  })
})
