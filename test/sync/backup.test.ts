import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import * as Y from 'yjs'
import { startServer, type ServerProcess } from '../helpers/server.ts'
import { frameType, rawSync, snapshotOf, syncMessage, uintMessage, untilDoc, yClient } from '../helpers/clients.ts'
import { MessageType } from '../../src/protocol/messages.ts'
import * as decoding from 'lib0/decoding'

describe('backup sync with stock y-websocket clients', () => {
  let server: ServerProcess
  beforeAll(async () => {
    server = await startServer()
  })
  afterAll(async () => {
    await server?.stop()
  })

  it('syncs and relays between two clients, and a late client gets everything', async () => {
    const a = yClient(server.wsUrl, 'relay-doc')
    const b = yClient(server.wsUrl, 'relay-doc')
    await Promise.all([a.synced, b.synced])
    a.text.insert(0, 'hello from a. ')
    b.text.insert(0, 'hello from b. ')
    await untilDoc(a.doc, () => a.text.length === 28, 'a sees both')
    await untilDoc(b.doc, () => b.text.length === 28, 'b sees both')
    expect(a.text.toString()).toBe(b.text.toString())
    // Awareness is relayed too.
    a.provider.awareness.setLocalStateField('user', { name: 'Ada' })
    await new Promise<void>((res) => {
      const check = () => [...b.provider.awareness.getStates().values()].some((s) => s.user?.name === 'Ada') && res()
      b.provider.awareness.on('change', check)
      check()
    })
    const text = a.text.toString()
    a.destroy()
    b.destroy()
    const late = await snapshotOf(server.wsUrl, 'relay-doc')
    expect(late.text).toBe(text)
  })

  it('answers step 1 with exactly the missing updates', async () => {
    const writer = await rawSync(server.wsUrl, '/sync/diff-doc')
    const doc = new Y.Doc()
    doc.getText('text').insert(0, 'x'.repeat(1000))
    const first = Y.encodeStateVector(doc)
    doc.getText('text').insert(1000, 'tail')
    writer.send(syncMessage(2, Y.encodeStateAsUpdate(doc)))
    writer.send(uintMessage(MessageType.durableQuery, 1))
    await writer.waitFor((f) => frameType(f) === MessageType.durableAck)
    const stepTwo = async (sv: Uint8Array) => {
      const raw = await rawSync(server.wsUrl, '/sync/diff-doc')
      raw.send(syncMessage(0, sv))
      const f = await raw.waitFor((m) => m[0] === 0 && m[1] === 1)
      raw.ws.close()
      const dec = decoding.createDecoder(f)
      decoding.readVarUint(dec)
      decoding.readVarUint(dec)
      return decoding.readVarUint8Array(dec)
    }
    // Holding everything: the reply adds nothing.
    const none = Y.decodeUpdate(await stepTwo(Y.encodeStateVector(doc)))
    expect(none.structs).toHaveLength(0)
    // Holding the first 1000 characters: the reply is just the tail.
    const tail = await stepTwo(first)
    expect(Y.decodeUpdate(tail).structs.map((s) => s.length)).toEqual([4])
    writer.ws.close()
  })

  it('acknowledges durability only to clients that ask, after the update is stored', async () => {
    const raw = await rawSync(server.wsUrl, '/sync/ack-doc')
    const doc = new Y.Doc()
    doc.getText('text').insert(0, 'durable')
    raw.send(syncMessage(2, Y.encodeStateAsUpdate(doc)))
    raw.send(uintMessage(MessageType.durableQuery, 7))
    const ack = await raw.waitFor((f) => frameType(f) === MessageType.durableAck)
    const dec = decoding.createDecoder(ack)
    decoding.readVarUint(dec)
    expect(decoding.readVarUint(dec)).toBe(7)
    raw.ws.close()
    // A stock client never receives a type it does not know.
    const stock = await rawSync(server.wsUrl, '/sync/ack-doc')
    stock.send(syncMessage(0, new Uint8Array([0])))
    await stock.waitFor((f) => f[0] === 0 && f[1] === 1)
    expect(stock.frames.every((f) => [0, 1].includes(frameType(f)))).toBe(true)
    stock.ws.close()
  })

  it('keeps acknowledged updates across a restart', async () => {
    const raw = await rawSync(server.wsUrl, '/sync/restart-doc')
    const doc = new Y.Doc()
    doc.getText('text').insert(0, 'survives restarts')
    raw.send(syncMessage(2, Y.encodeStateAsUpdate(doc)))
    raw.send(uintMessage(MessageType.durableQuery, 1))
    await raw.waitFor((f) => frameType(f) === MessageType.durableAck)
    expect(await server.stop('SIGKILL')).toBe(null)
    server = await startServer({ dataDir: server.dataDir })
    expect((await snapshotOf(server.wsUrl, 'restart-doc')).text).toBe('survives restarts')
  })
})
