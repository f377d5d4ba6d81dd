import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import * as Y from 'yjs'
import * as encoding from 'lib0/encoding'
import { startServer, type ServerProcess } from '../helpers/server.ts'
import { frameType, rawSync, snapshotOf, syncMessage, uintMessage, untilDoc, yClient } from '../helpers/clients.ts'
import { CloseCode, MessageType } from '../../src/protocol/messages.ts'

/** Hostile input on /sync: each case closes only the offending socket with a named code. */
describe('backup sync under hostile input', () => {
  let server: ServerProcess
  let victimBefore: Awaited<ReturnType<typeof snapshotOf>>
  let bystanders: [ReturnType<typeof yClient>, ReturnType<typeof yClient>]
  let round = 0

  beforeAll(async () => {
    server = await startServer({ args: ['--max-frame-bytes', '65536', '--max-pending-updates', '8', '--pending-timeout-ms', '1500', '--max-sync-rate', '50'] })
    const seed = await rawSync(server.wsUrl, '/sync/victim')
    const doc = new Y.Doc()
    doc.getText('text').insert(0, 'the stored document')
    seed.send(syncMessage(2, Y.encodeStateAsUpdate(doc)))
    seed.send(uintMessage(MessageType.durableQuery, 1))
    await seed.waitFor((f) => frameType(f) === MessageType.durableAck)
    seed.ws.close()
    victimBefore = await snapshotOf(server.wsUrl, 'victim')
    bystanders = [yClient(server.wsUrl, 'bystander'), yClient(server.wsUrl, 'bystander')]
    await Promise.all(bystanders.map((b) => b.synced))
  })

  afterAll(async () => {
    bystanders?.forEach((b) => b.destroy())
    const code = await server?.stop()
    expect(code).toBe(0)
  })

  /** Sends `frames` on a fresh socket to the victim room and returns the close code. */
  async function attack(frames: (Uint8Array | string)[], path = '/sync/victim'): Promise<number> {
    const raw = await rawSync(server.wsUrl, path)
    for (const f of frames) if (raw.ws.readyState === raw.ws.OPEN) raw.send(f)
    return (await raw.closed).code
  }

  async function expectUnharmed(): Promise<void> {
    const [a, b] = bystanders
    const marker = `ok${++round};`
    a.text.insert(a.text.length, marker)
    await untilDoc(b.doc, () => b.text.toString().includes(marker), 'bystander update')
    const after = await snapshotOf(server.wsUrl, 'victim')
    expect(after.text).toBe(victimBefore.text)
    expect(after.sv).toEqual(victimBefore.sv)
    expect((await fetch(`${server.url}/healthz`)).status).toBe(200)
  }

  it('closes a text frame with 4400', async () => {
    expect(await attack(['{"hello":1}'])).toBe(CloseCode.badMessage)
    await expectUnharmed()
  })

  it('closes an empty frame with 4400', async () => {
    expect(await attack([new Uint8Array(0)])).toBe(CloseCode.badMessage)
    await expectUnharmed()
  })

  it('closes an unknown message type and sync subtype with 4400', async () => {
    expect(await attack([new Uint8Array([42])])).toBe(CloseCode.badMessage)
    expect(await attack([new Uint8Array([0, 9, 0])])).toBe(CloseCode.badMessage)
    await expectUnharmed()
  })

  it('closes a lying length prefix with 4400', async () => {
    const enc = encoding.createEncoder()
    encoding.writeVarUint(enc, 0)
    encoding.writeVarUint(enc, 2)
    encoding.writeVarUint(enc, 1_000_000)
    encoding.writeUint8Array(enc, new Uint8Array([1, 2, 3]))
    expect(await attack([encoding.toUint8Array(enc)])).toBe(CloseCode.badMessage)
    await expectUnharmed()
  })

  it('closes a garbage state vector with 4400', async () => {
    expect(await attack([syncMessage(0, new Uint8Array([5, 255, 255, 255]))])).toBe(CloseCode.badMessage)
    await expectUnharmed()
  })

  it('closes truncated and corrupted Yjs updates with 4422 and stores nothing', async () => {
    const doc = new Y.Doc()
    doc.clientID = 2 ** 31 - 1 // a 5-byte varint, so the layout below is fixed (a random id may encode shorter)
    doc.getText('text').insert(0, 'a long enough insertion to truncate')
    const update = Y.encodeStateAsUpdate(doc)
    expect(await attack([syncMessage(2, update.slice(0, update.length - 7))])).toBe(CloseCode.badUpdate)
    const bad = update.slice()
    // [clients=1][structs=1][client id: 5 bytes][clock=0][info]: an info byte naming no content type.
    expect(bad[8]).toBe(4)
    bad[8] = 0x1f
    expect(await attack([syncMessage(1, bad)])).toBe(CloseCode.badUpdate)
    await expectUnharmed()
  })

  it('rejects an item that references itself with 4422, without resetting the room', async () => {
    // [clients=1][structs=1][client 7][clock 0][info 0x44: string, has right origin][right origin (7,0) = itself]["x"][empty delete set]
    const enc = encoding.createEncoder()
    for (const n of [1, 1, 7, 0]) encoding.writeVarUint(enc, n)
    encoding.writeUint8(enc, 0x44)
    encoding.writeVarUint(enc, 7)
    encoding.writeVarUint(enc, 0)
    encoding.writeVarString(enc, 'x')
    encoding.writeVarUint(enc, 0)
    const closes: number[] = []
    const member = yClient(server.wsUrl, 'victim')
    await member.synced
    member.provider.ws!.addEventListener('close', (e: { code: number }) => closes.push(e.code))
    expect(await attack([syncMessage(2, encoding.toUint8Array(enc))])).toBe(CloseCode.badUpdate)
    await expectUnharmed()
    expect(closes).toEqual([])
    member.destroy()
  })

  it('closes a client that keeps sending updates with missing dependencies (4509)', async () => {
    const doc = new Y.Doc()
    const updates: Uint8Array[] = []
    doc.on('update', (u: Uint8Array) => updates.push(u))
    for (let i = 0; i < 12; i++) doc.getText('text').insert(0, `${i}`)
    // Never send the first update: every later one depends on it.
    expect(await attack(updates.slice(1).map((u) => syncMessage(2, u)))).toBe(CloseCode.missingDependencies)
    // One held update that never resolves is closed after the timeout.
    expect(await attack([syncMessage(2, updates[5])])).toBe(CloseCode.missingDependencies)
    await expectUnharmed()
  })

  it('holds an out-of-order update until its dependency arrives, then acknowledges both', async () => {
    const doc = new Y.Doc()
    const updates: Uint8Array[] = []
    doc.on('update', (u: Uint8Array) => updates.push(u))
    doc.getText('text').insert(0, 'first ')
    doc.getText('text').insert(6, 'second')
    const raw = await rawSync(server.wsUrl, '/sync/out-of-order')
    raw.send(syncMessage(2, updates[1]))
    raw.send(uintMessage(MessageType.durableQuery, 1))
    raw.send(syncMessage(2, updates[0]))
    await raw.waitFor((f) => frameType(f) === MessageType.durableAck)
    raw.ws.close()
    expect((await snapshotOf(server.wsUrl, 'out-of-order')).text).toBe('first second')
  })

  it('closes oversized frames with 1009', async () => {
    expect(await attack([syncMessage(2, new Uint8Array(70_000))])).toBe(CloseCode.tooBig)
    // Closes made by ws itself are counted like the server's own.
    const metrics = await (await fetch(`${server.url}/metrics`)).text()
    expect(metrics).toMatch(/murmur_closed_by_server_total\{endpoint="sync",code="1009"\} [1-9]/)
    await expectUnharmed()
  })

  it('closes bad awareness JSON with 4400', async () => {
    const enc = encoding.createEncoder()
    encoding.writeVarUint(enc, MessageType.awareness)
    const inner = encoding.createEncoder()
    encoding.writeVarUint(inner, 1)
    encoding.writeVarUint(inner, 1234)
    encoding.writeVarUint(inner, 1)
    encoding.writeVarString(inner, '{not json')
    encoding.writeVarUint8Array(enc, encoding.toUint8Array(inner))
    expect(await attack([encoding.toUint8Array(enc)])).toBe(CloseCode.badMessage)
    await expectUnharmed()
  })

  it('bounds awareness: too many client ids (4429) or an oversized state (4400)', async () => {
    const awareness = (states: [number, string][]) => {
      const inner = encoding.createEncoder()
      encoding.writeVarUint(inner, states.length)
      for (const [id, json] of states) {
        encoding.writeVarUint(inner, id)
        encoding.writeVarUint(inner, 1)
        encoding.writeVarString(inner, json)
      }
      const enc = encoding.createEncoder()
      encoding.writeVarUint(enc, MessageType.awareness)
      encoding.writeVarUint8Array(enc, encoding.toUint8Array(inner))
      return encoding.toUint8Array(enc)
    }
    // 40 fresh ids per frame: the second frame passes the default cap of 64 per socket.
    const batch = (k: number) => awareness(Array.from({ length: 40 }, (_, i) => [k * 100 + i + 1, '{"user":{"name":"x"}}'] as [number, string]))
    expect(await attack([batch(1), batch(2)])).toBe(CloseCode.tooMany)
    expect(await attack([awareness([[7, JSON.stringify({ pad: 'x'.repeat(20_000) })]])])).toBe(CloseCode.badMessage)
    await expectUnharmed()
  })

  it('closes floods with 4529', async () => {
    const frames = Array.from({ length: 400 }, () => new Uint8Array([MessageType.queryAwareness]))
    expect(await attack(frames)).toBe(CloseCode.flood)
    await expectUnharmed()
  })

  it('refuses invalid document ids with 4404', async () => {
    expect(await attack([], '/sync/not%20valid!')).toBe(CloseCode.notFound)
    expect(await attack([], `/sync/${'x'.repeat(65)}`)).toBe(CloseCode.notFound)
    expect(await attack([], '/sync/%ZZ')).toBe(CloseCode.notFound)
    await expectUnharmed()
  })
})
