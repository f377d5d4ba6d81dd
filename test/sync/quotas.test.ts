import { describe, expect, it } from 'vitest'
import * as Y from 'yjs'
import { metric, startServer } from '../helpers/server.ts'
import { ackNonce, frameType, rawSync, snapshotOf, syncMessage, uintMessage } from '../helpers/clients.ts'
import { CloseCode, MessageType } from '../../src/protocol/messages.ts'

const KiB = 1024
const fast = ['--max-sync-rate', '100000', '--sync-bytes-per-second', String(1024 * 1024 * 1024), '--sync-bytes-per-second-per-ip', String(1024 * 1024 * 1024)]

/** A valid update from a fresh client inserting `n` copies of `ch`. */
function insert(n: number, ch: string): Uint8Array {
  const doc = new Y.Doc()
  doc.getText('text').insert(0, ch.repeat(n))
  return Y.encodeStateAsUpdate(doc)
}

/** Opens a socket on `docId`, sends `update` as its first sync and waits for the durable ack (or the close). */
async function write(wsUrl: string, docId: string, update: Uint8Array) {
  const raw = await rawSync(wsUrl, `/sync/${docId}`)
  raw.send(syncMessage(1, update))
  raw.send(uintMessage(MessageType.durableQuery, 1))
  const acked = await Promise.race([raw.waitFor((f) => frameType(f) === MessageType.durableAck, 30_000).then(() => true), raw.closed.then(() => false)])
  return { raw, acked }
}

describe('storage and memory quotas', () => {
  it('refuses an update that would pass --max-document-bytes with 4413 and keeps what was stored', async () => {
    const server = await startServer({ args: [...fast, '--max-document-bytes', String(300 * KiB)] })
    try {
      const first = await write(server.wsUrl, 'quota-doc', insert(200 * KiB, 'a'))
      expect(first.acked).toBe(true)
      first.raw.send(syncMessage(2, insert(150 * KiB, 'b')))
      expect((await first.raw.closed).code).toBe(CloseCode.documentTooLarge)
      const other = await write(server.wsUrl, 'quota-doc', insert(150 * KiB, 'c'))
      expect(other.acked).toBe(false)
      expect((await other.raw.closed).code).toBe(CloseCode.documentTooLarge)
      expect((await snapshotOf(server.wsUrl, 'quota-doc')).text).toBe('a'.repeat(200 * KiB))
      // Another document is not affected.
      expect((await write(server.wsUrl, 'quota-other', insert(100 * KiB, 'd'))).acked).toBe(true)
    } finally {
      expect(await server.stop()).toBe(0)
    }
  })

  it('refuses an update that would pass --max-document-structs with 4413 (memory follows structs, not bytes)', async () => {
    const server = await startServer({ args: [...fast, '--max-document-structs', '1000'] })
    try {
      const doc = new Y.Doc()
      const text = doc.getText('text')
      doc.transact(() => {
        for (let i = 0; i < 2000; i++) text.insert(0, 'p') // prepends: 2,000 structs in ~22 KB
      })
      const w = await write(server.wsUrl, 'structs', Y.encodeStateAsUpdate(doc))
      expect(w.acked).toBe(false)
      expect((await w.raw.closed).code).toBe(CloseCode.documentTooLarge)
      // Typing a long text is one struct: fine.
      expect((await write(server.wsUrl, 'structs', insert(100 * KiB, 't'))).acked).toBe(true)
    } finally {
      expect(await server.stop()).toBe(0)
    }
  })

  it('refuses updates with 4507 once the database passes --max-storage-bytes; stored documents stay readable', async () => {
    const server = await startServer({ args: [...fast, '--max-storage-bytes', String(1024 * KiB)] })
    try {
      for (let i = 0; i < 4; i++) expect((await write(server.wsUrl, `full-${i}`, insert(300 * KiB, String(i)))).acked).toBe(true)
      // The size is read once a second: the next writer is refused within about that.
      await expect
        .poll(async () => {
          const w = await write(server.wsUrl, 'full-next', insert(10 * KiB, 'n'))
          if (w.acked) w.raw.ws.close()
          return w.acked ? 'acked' : (await w.raw.closed).code
        }, { timeout: 10_000, interval: 300 })
        .toBe(CloseCode.storageFull)
      for (let i = 0; i < 4; i++) expect((await snapshotOf(server.wsUrl, `full-${i}`)).text).toBe(String(i).repeat(300 * KiB))
    } finally {
      expect(await server.stop()).toBe(0)
    }
  })

  it('holds at most --max-loaded-documents in memory: idle ones are unloaded first, then new ones get 4503', async () => {
    const server = await startServer({ args: [...fast, '--max-loaded-documents', '3', '--idle-unload-ms', '600000'] })
    try {
      const open = await Promise.all(['cap-a', 'cap-b', 'cap-c'].map((d) => write(server.wsUrl, d, insert(10, d))))
      expect(open.every((o) => o.acked)).toBe(true)
      const refused = await rawSync(server.wsUrl, '/sync/cap-d')
      expect((await refused.closed).code).toBe(CloseCode.busy)
      open[0].raw.ws.close() // cap-a becomes idle (it would stay loaded for 10 minutes)
      await open[0].raw.closed
      const d = await write(server.wsUrl, 'cap-d', insert(10, 'd'))
      expect(d.acked).toBe(true)
      expect(await metric(server, 'murmur_rooms_loaded')).toBeLessThanOrEqual(3)
      d.raw.ws.close()
      open[1].raw.ws.close()
      expect((await snapshotOf(server.wsUrl, 'cap-a')).text).toBe('cap-a'.repeat(10))
    } finally {
      expect(await server.stop()).toBe(0)
    }
  })

  it('closes a socket that does not read with 1013 once --max-send-buffer-bytes wait for it', async () => {
    const server = await startServer({ args: [...fast, '--max-send-buffer-bytes', String(256 * KiB)] })
    try {
      const reader = await rawSync(server.wsUrl, '/sync/stalled')
      await reader.waitFor((f) => frameType(f) === MessageType.sync)
      ;(reader.ws as unknown as { _socket: { pause(): void } })._socket.pause() // never reads again
      const writer = await rawSync(server.wsUrl, '/sync/stalled')
      const doc = new Y.Doc()
      const text = doc.getText('text')
      let sent = 0
      doc.on('update', (u: Uint8Array) => {
        writer.send(syncMessage(2, u))
        sent += u.byteLength
      })
      // Each 100 KiB update is relayed to the stalled reader; loopback buffers absorb a few MiB first.
      for (let i = 0; i < 300 && (await metric(server, 'murmur_closed_by_server_total{endpoint="sync",code="1013"}')) !== 1; i++) {
        text.insert(text.length, 'x'.repeat(100 * KiB))
        writer.send(uintMessage(MessageType.durableQuery, i + 1))
        await writer.waitFor((f) => ackNonce(f) === i + 1)
      }
      console.log(`stalled reader closed after ${(sent / 1024 / 1024).toFixed(1)} MiB relayed to it`)
      expect(await metric(server, 'murmur_closed_by_server_total{endpoint="sync",code="1013"}')).toBe(1)
      expect(sent).toBeLessThan(24 * 1024 * 1024)
      writer.ws.close()
      reader.ws.terminate()
    } finally {
      expect(await server.stop()).toBe(0)
    }
  })
})
