import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import * as Y from 'yjs'
import * as decoding from 'lib0/decoding'
import { metric, startServer, type ServerProcess } from '../helpers/server.ts'
import { awarenessMessage, frameType, rawSync, syncMessage, uintMessage, untilDoc, yClient } from '../helpers/clients.ts'
import { CloseCode, MessageType } from '../../src/protocol/messages.ts'
import { applyStateVectorChanges, deleteSetDigest, encodeLinkMode, encodeStateQuery, LinkMode, readStateAck, readStateDelta, stateVectorDigest } from '../../src/protocol/hybrid.ts'

type Raw = Awaited<ReturnType<typeof rawSync>>

/** A raw murmur-style socket with its own Y.Doc; `link` is the URL parameter. */
async function peer(server: ServerProcess, docId: string, link: 'backup' | 'relay') {
  const raw = await rawSync(server.wsUrl, `/sync/${docId}?link=${link}`)
  const doc = new Y.Doc()
  let nonce = 0
  return {
    raw,
    doc,
    /** Edits, uploads and waits until the server committed it. */
    async type(text: string) {
      const sv = Y.encodeStateVector(doc)
      doc.getText('text').insert(0, text)
      raw.send(syncMessage(2, Y.encodeStateAsUpdate(doc, sv)))
      const n = ++nonce
      raw.send(uintMessage(MessageType.durableQuery, n))
      await raw.waitFor((f) => frameType(f) === MessageType.durableAck && f[1] === n)
    },
    /** Asks for the server's committed state. */
    async state() {
      const n = ++nonce
      raw.send(encodeStateQuery(n))
      const f = await raw.waitFor((m) => frameType(m) === MessageType.stateAck && stateAckOf(m).nonce === n)
      return { ack: stateAckOf(f) }
    },
  }
}

function stateAckOf(f: Uint8Array) {
  const dec = decoding.createDecoder(f)
  decoding.readVarUint(dec)
  return readStateAck(dec)
}

const isUpdate = (f: Uint8Array) => f[0] === MessageType.sync && f[1] === 2
const isAwareness = (f: Uint8Array) => frameType(f) === MessageType.awareness

describe('hybrid data path on /sync', () => {
  let server: ServerProcess
  beforeAll(async () => {
    server = await startServer()
  })
  afterAll(async () => {
    await server?.stop()
  })

  it('forwards nothing live between backup-only sockets, everything to and from relay and stock ones', async () => {
    const docId = 'hybrid-forwarding'
    const a = await peer(server, docId, 'backup')
    const b = await peer(server, docId, 'backup')
    const stock = yClient(server.wsUrl, docId)
    await stock.synced
    // Backup A → backup B: not forwarded; the stock client gets it.
    await a.type('from a. ')
    a.raw.send(awarenessMessage([[1001, 1, JSON.stringify({ user: { name: 'a' } })]]))
    await untilDoc(stock.doc, () => stock.text.toString().includes('from a'), 'stock sees a')
    await new Promise<void>((res) => {
      const check = () => stock.provider.awareness.getStates().has(1001) && res()
      stock.provider.awareness.on('change', check)
      check()
    })
    const seenByB = await b.state()
    expect(Y.decodeStateVector(seenByB.ack.stateVector).get(a.doc.clientID)).toBeGreaterThan(0)
    // Everything the server sent B so far (greeting included) came before this ack.
    expect(b.raw.frames.filter(isUpdate)).toEqual([])
    expect(b.raw.frames.filter(isAwareness)).toEqual([])
    // Stock → both backup sockets: relayed live.
    const sawStock = (r: Raw) => r.waitFor((f) => isUpdate(f))
    stock.text.insert(0, 'from stock. ')
    await Promise.all([sawStock(a.raw), sawStock(b.raw)])
    // B switches to relay: now A's updates reach it, and A's awareness is sent at once.
    const beforeSwitch = b.raw.frames.length
    b.raw.send(encodeLinkMode(LinkMode.relay, 0, 1))
    await b.raw.waitFor((f) => isAwareness(f) && b.raw.frames.indexOf(f) >= beforeSwitch)
    const n = b.raw.frames.length
    await a.type('again a. ')
    await b.raw.waitFor((f) => isUpdate(f) && b.raw.frames.indexOf(f) >= n)
    expect(await metric(server, 'murmur_sync_clients{mode="backup"}')).toBe(1)
    expect(await metric(server, 'murmur_sync_clients{mode="relay"}')).toBe(1)
    expect(await metric(server, 'murmur_sync_clients{mode="stock"}')).toBe(1)
    expect(await metric(server, 'murmur_sync_reported_peers{via="relayed"}')).toBe(1)
    expect(await metric(server, 'murmur_sync_update_bytes_total{kind="uploaded"}')).toBeGreaterThan(0)
    expect(await metric(server, 'murmur_sync_update_bytes_total{kind="relayed"}')).toBeGreaterThan(0)
    stock.destroy()
    a.raw.ws.close()
    b.raw.ws.close()
  })

  it('answers a state query with the committed state vector and a delete-set digest that sees delete-only updates', async () => {
    const docId = 'hybrid-state'
    const a = await peer(server, docId, 'backup')
    await a.type('hello world')
    const first = (await a.state()).ack
    expect(first.stateVector).toEqual(Y.encodeStateVector(a.doc))
    expect(first.digest).toBe(deleteSetDigest(a.doc))
    // A delete-only update leaves the state vector unchanged; the digest follows it.
    const sv = Y.encodeStateVector(a.doc)
    a.doc.getText('text').delete(0, 6)
    a.raw.send(syncMessage(2, Y.encodeStateAsUpdate(a.doc, sv)))
    const second = (await a.state()).ack
    expect(second.stateVector).toEqual(first.stateVector)
    expect(second.digest).not.toBe(first.digest)
    expect(second.digest).toBe(deleteSetDigest(a.doc))
    a.raw.ws.close()
  })

  it('answers a query that carries a state-vector digest compactly: "same", else only the entries changed since its last answer', async () => {
    const docId = 'hybrid-state-delta'
    const a = await peer(server, docId, 'backup')
    await a.type('a ')
    // Twenty writers the server has not seen yet: a whole state vector has twenty-one entries.
    for (let w = 0; w < 20; w++) {
      const d = new Y.Doc()
      d.getText('text').insert(0, `w${w} `)
      Y.applyUpdate(a.doc, Y.encodeStateAsUpdate(d))
    }
    let nonce = 100
    const ask = async (digest: number) => {
      const n = ++nonce
      a.raw.send(encodeStateQuery(n, digest))
      const f = await a.raw.waitFor((m) => frameType(m) === MessageType.stateDelta && readStateDelta(decoding.createDecoder(m.subarray(1))).nonce === n)
      return { bytes: f.byteLength, delta: readStateDelta(decoding.createDecoder(f.subarray(1))) }
    }
    // Not uploaded yet: the server lacks the twenty writers, so the digests differ.
    const mirror = new Map<number, number>()
    const first = await ask(stateVectorDigest(Y.encodeStateVector(a.doc)))
    expect(first.delta.same).toBe(false)
    applyStateVectorChanges(mirror, first.delta.changes)
    expect(mirror).toEqual(new Map([[a.doc.clientID, 2]]))
    // Upload everything: now the server's state vector has the digest of ours.
    a.raw.send(syncMessage(2, Y.encodeStateAsUpdate(a.doc)))
    const same = await ask(stateVectorDigest(Y.encodeStateVector(a.doc)))
    expect(same.delta).toMatchObject({ same: true, changes: [], digest: deleteSetDigest(a.doc) })
    // One writer types: the next answer (to a stale digest) carries only that entry, whatever the number of writers.
    await a.type('b ')
    const one = await ask(12345)
    expect(one.delta.same).toBe(false)
    expect(one.delta.changes).toEqual([[a.doc.clientID, 4]])
    const full = await a.state() // an older client's query: the whole state vector
    expect(Y.decodeStateVector(full.ack.stateVector).size).toBe(21)
    expect(one.bytes).toBeLessThan(full.ack.stateVector.byteLength / 4)
    a.raw.ws.close()
  })

  it('a socket that closes takes its awareness states with it, and backup-only sockets hear that at once', async () => {
    const docId = 'hybrid-departure'
    const a = await peer(server, docId, 'backup')
    const b = await peer(server, docId, 'backup')
    a.raw.send(awarenessMessage([[2001, 1, JSON.stringify({ user: { name: 'a' } })]]))
    await a.state() // A's state is in the room before it leaves
    expect(b.raw.frames.filter(isAwareness)).toEqual([]) // not relayed live between backup-only sockets
    a.raw.ws.close()
    const removal = await b.raw.waitFor(isAwareness)
    const dec = decoding.createDecoder(removal)
    decoding.readVarUint(dec)
    const inner = decoding.createDecoder(decoding.readVarUint8Array(dec))
    expect(decoding.readVarUint(inner)).toBe(1)
    expect(decoding.readVarUint(inner)).toBe(2001)
    decoding.readVarUint(inner)
    expect(decoding.readVarString(inner)).toBe('null')
    b.raw.ws.close()
  })

  it('closes a socket that asks for an unknown link mode with 4400', async () => {
    const raw = await rawSync(server.wsUrl, '/sync/hybrid-bad-mode')
    raw.send(uintMessage(MessageType.linkMode, 7, 0, 0))
    expect((await raw.closed).code).toBe(CloseCode.badMessage)
  })
})

describe('hybrid data path with access tokens', () => {
  const secret = 'hybrid-secret'
  let server: ServerProcess
  beforeAll(async () => {
    server = await startServer({ args: ['--auth-secret', secret] })
  })
  afterAll(async () => {
    await server?.stop()
  })

  it('a read-only link is relayed even when it asks for backup-only (it cannot join the mesh)', async () => {
    const { mintToken } = await import('../../server/auth.ts')
    const docId = 'hybrid-reader'
    const reader = await rawSync(server.wsUrl, `/sync/${docId}?link=backup&token=${mintToken(secret, docId, 'r', 60)}`)
    reader.send(encodeLinkMode(LinkMode.backup, 0, 0))
    const writer = await rawSync(server.wsUrl, `/sync/${docId}?link=backup&token=${mintToken(secret, docId, 'rw', 60)}`)
    const doc = new Y.Doc()
    doc.getText('text').insert(0, 'for the reader')
    writer.send(syncMessage(2, Y.encodeStateAsUpdate(doc)))
    // The backup-only writer's update reaches the reader live.
    await reader.waitFor(isUpdate)
    expect(await metric(server, 'murmur_sync_clients{mode="relay"}')).toBe(1)
    expect(await metric(server, 'murmur_sync_clients{mode="backup"}')).toBe(1)
    reader.ws.close()
    writer.ws.close()
  })
})
