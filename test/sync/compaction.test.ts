import { describe, expect, it } from 'vitest'
import * as Y from 'yjs'
import * as decoding from 'lib0/decoding'
import { metric, startServer } from '../helpers/server.ts'
import { frameType, rawSync, snapshotOf, syncMessage, uintMessage } from '../helpers/clients.ts'
import { MessageType } from '../../src/protocol/messages.ts'
import { openSqliteStore } from '../../server/store/sqlite.ts'

describe('compaction and unloading', () => {
  it('merges thousands of small updates into a snapshot and unloads idle documents', async () => {
    let server = await startServer({ args: ['--compact-after-updates', '200', '--idle-unload-ms', '300', '--max-sync-rate', '100000'] })
    const raw = await rawSync(server.wsUrl, '/sync/long-history')
    const doc = new Y.Doc()
    const text = doc.getText('text')
    let sent = 0
    let bytes = 0
    doc.on('update', (u: Uint8Array) => {
      raw.send(syncMessage(2, u))
      sent++
      bytes += u.byteLength
    })
    for (let i = 0; i < 5000; i++) {
      if (i % 7 === 6 && text.length > 0) text.delete(Math.floor((i * 31) % text.length), 1)
      else text.insert(Math.floor((i * 17) % (text.length + 1)), String.fromCharCode(97 + (i % 26)))
      // Every 500 edits, wait until the server has them on disk.
      if (i % 500 === 499) {
        raw.send(uintMessage(MessageType.durableQuery, i))
        await raw.waitFor((f) => frameType(f) === MessageType.durableAck && readNonce(f) === i)
      }
    }
    expect(sent).toBe(5000)
    expect(await metric(server, 'murmur_persisted_updates_total')).toBe(5000)
    expect(await metric(server, 'murmur_compactions_total')).toBeGreaterThanOrEqual(10)
    raw.ws.close()
    // Idle: the room is flushed, compacted and unloaded.
    await expect.poll(() => metric(server, 'murmur_rooms_loaded'), { timeout: 10_000 }).toBe(0)
    expect(await server.stop()).toBe(0)

    const store = openSqliteStore(server.dataDir)
    const stored = await store.load('long-history')
    await store.close()
    expect(stored.updates.length).toBe(1)
    expect(stored.bytes).toBeLessThan(bytes)

    server = await startServer({ dataDir: server.dataDir })
    const reloaded = await snapshotOf(server.wsUrl, 'long-history')
    expect(reloaded.text).toBe(text.toString())
    expect(reloaded.sv).toEqual(Y.encodeStateVector(doc))
    expect(await server.stop()).toBe(0)
  })
})

function readNonce(f: Uint8Array): number {
  const dec = decoding.createDecoder(f)
  decoding.readVarUint(dec)
  return decoding.readVarUint(dec)
}
