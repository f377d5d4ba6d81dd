import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import * as decoding from 'lib0/decoding'
import { startServer, type ServerProcess } from '../helpers/server.ts'
import { awarenessMessage, frameType, rawSync, uintMessage } from '../helpers/clients.ts'
import { CloseCode, MessageType } from '../../src/protocol/messages.ts'

/** The awareness states (id → JSON) a newcomer to `docId` receives, read after a durable ack so nothing is still on its way. */
async function statesSeenByJoiner(server: ServerProcess, docId: string): Promise<Map<number, string>> {
  const raw = await rawSync(server.wsUrl, `/sync/${docId}`)
  raw.send(uintMessage(MessageType.queryAwareness))
  raw.send(uintMessage(MessageType.durableQuery, 1))
  await raw.waitFor((f) => frameType(f) === MessageType.durableAck)
  const states = new Map<number, string>()
  for (const f of raw.frames) {
    if (frameType(f) !== MessageType.awareness) continue
    const outer = decoding.createDecoder(f)
    decoding.readVarUint(outer)
    const dec = decoding.createDecoder(decoding.readVarUint8Array(outer))
    const n = decoding.readVarUint(dec)
    for (let i = 0; i < n; i++) {
      const id = decoding.readVarUint(dec)
      decoding.readVarUint(dec)
      const json = decoding.readVarString(dec)
      if (json === 'null') states.delete(id)
      else states.set(id, json)
    }
  }
  raw.ws.close()
  return states
}

describe('awareness from untrusted sockets', () => {
  let server: ServerProcess

  beforeAll(async () => {
    server = await startServer({ args: ['--max-sync-rate', '100000'] })
  })

  afterAll(async () => {
    expect(await server?.stop()).toBe(0)
  })

  it('refuses an update with more entries than the limit before applying any (4429); nothing stays behind', async () => {
    // 65 small entries for one id first, then big ones: before the fix only the first 65 were checked, all were applied.
    const small = Array.from({ length: 65 }, (_, i) => [1000, i + 1, '{"user":{"name":"s"}}'] as [number, number, string])
    const big = Array.from({ length: 85 }, (_, i) => [2000 + i, 1, JSON.stringify({ pad: 'x'.repeat(20_000) })] as [number, number, string])
    const attacker = await rawSync(server.wsUrl, '/sync/aw-count')
    attacker.send(awarenessMessage([...small, ...big]))
    expect((await attacker.closed).code).toBe(CloseCode.tooMany)
    expect((await statesSeenByJoiner(server, 'aw-count')).size).toBe(0)
  })

  it('measures a state in UTF-8 bytes, not characters (4400)', async () => {
    const attacker = await rawSync(server.wsUrl, '/sync/aw-bytes')
    // 6,000 characters but 18,000 bytes: above the default 16 KiB.
    attacker.send(awarenessMessage([[77, 1, JSON.stringify({ pad: '€'.repeat(6000) })]]))
    expect((await attacker.closed).code).toBe(CloseCode.badMessage)
    expect((await statesSeenByJoiner(server, 'aw-bytes')).size).toBe(0)
  })

  it("does not let a socket overwrite another socket's client id; the owner's state stays", async () => {
    const alice = await rawSync(server.wsUrl, '/sync/aw-hijack')
    alice.send(awarenessMessage([[4242, 1, '{"user":{"name":"alice"}}']]))
    const mallory = await rawSync(server.wsUrl, '/sync/aw-hijack')
    mallory.send(awarenessMessage([[4242, 50, '{"user":{"name":"mallory"}}'], [4343, 1, '{"user":{"name":"mallory"}}']]))
    mallory.send(uintMessage(MessageType.durableQuery, 1))
    await mallory.waitFor((f) => frameType(f) === MessageType.durableAck)
    const seen = await statesSeenByJoiner(server, 'aw-hijack')
    expect(seen.get(4242)).toContain('alice')
    expect(seen.get(4343)).toContain('mallory') // its own id is fine
    // When mallory leaves, only its own state goes.
    mallory.ws.close()
    await mallory.closed
    await expect.poll(async () => [...(await statesSeenByJoiner(server, 'aw-hijack')).keys()], { timeout: 10_000 }).toEqual([4242])
    alice.ws.close()
  })

  it("a relayed state belongs to its own socket once that connects, and goes when that socket closes", async () => {
    // Bob relays Carol's presence (he got it over WebRTC) before Carol's own socket speaks.
    const bob = await rawSync(server.wsUrl, '/sync/aw-relay')
    bob.send(awarenessMessage([[1111, 1, '{"user":{"name":"bob"}}']]))
    bob.send(awarenessMessage([[2222, 3, '{"user":{"name":"carol"}}']]))
    const carol = await rawSync(server.wsUrl, '/sync/aw-relay')
    carol.send(awarenessMessage([[2222, 4, '{"user":{"name":"carol"}}']]))
    carol.send(uintMessage(MessageType.durableQuery, 1))
    await carol.waitFor((f) => frameType(f) === MessageType.durableAck)
    expect([...(await statesSeenByJoiner(server, 'aw-relay')).keys()].sort()).toEqual([1111, 2222])
    // Carol closes her browser: her presence goes at once, although Bob relayed it first.
    carol.ws.close()
    await carol.closed
    await expect.poll(async () => [...(await statesSeenByJoiner(server, 'aw-relay')).keys()], { timeout: 10_000 }).toEqual([1111])
    bob.ws.close()
  })

  it('bounds the state bytes one document holds across sockets (4429), and frees them when the sockets close', async () => {
    const frameOf = (base: number) => awarenessMessage(Array.from({ length: 60 }, (_, i) => [base + i, 1, JSON.stringify({ pad: 'y'.repeat(10_000) })] as [number, number, string]))
    const a = await rawSync(server.wsUrl, '/sync/aw-room')
    a.send(frameOf(10_000)) // ~600 KB: within the default 1 MiB per document
    a.send(uintMessage(MessageType.durableQuery, 1))
    await a.waitFor((f) => frameType(f) === MessageType.durableAck)
    const b = await rawSync(server.wsUrl, '/sync/aw-room')
    b.send(frameOf(20_000)) // would make ~1.2 MB
    expect((await b.closed).code).toBe(CloseCode.tooMany)
    expect((await statesSeenByJoiner(server, 'aw-room')).size).toBe(60)
    a.ws.close()
    await a.closed
    await expect.poll(async () => (await statesSeenByJoiner(server, 'aw-room')).size, { timeout: 10_000 }).toBe(0)
  })
})
