/**
 * The `/log` hybrid path against a real server, with raw sockets: a
 * backup-only socket gets nothing live (entries, awareness) unless the
 * sender relays, `stateQuery` lists the tags of the entries after a seq, and
 * `fetch` returns just the entries asked for.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { newDocId } from '../../src/protocol/ids.ts'
import { LogMessage, type ServerLogFrame } from '../../src/protocol/log.ts'
import { newLinkKey } from '../../src/private/key.ts'
import { deriveDocKeys } from '../../src/private/crypto.ts'
import { startServer, type ServerProcess } from '../helpers/server.ts'
import { is, rawLog, type RawLog } from '../helpers/log-client.ts'

let server: ServerProcess
beforeAll(async () => {
  server = await startServer()
})
afterAll(async () => {
  await server?.stop()
})

type Ack = Extract<ServerLogFrame, { type: typeof LogMessage.stateAck }>
const isAck = (nonce: number) => (f: ServerLogFrame): f is Ack => f.type === LogMessage.stateAck && f.nonce === nonce
const isEntries = (f: ServerLogFrame): f is Extract<ServerLogFrame, { type: typeof LogMessage.entries }> => f.type === LogMessage.entries
const entrySeqs = (c: RawLog) => c.frames.flatMap((f) => (f.type === LogMessage.entries ? f.entries.map((e) => e.seq) : []))

describe('/log hybrid data path (raw sockets)', () => {
  it('backup-only sockets exchange nothing live; a relaying socket gets and gives everything; tags and fetch tell a backup-only socket what the log holds', async () => {
    const docId = newDocId()
    const keys = await deriveDocKeys(newLinkKey(), docId)
    const open = async (mode: 'backup' | 'relay') => {
      const c = await rawLog(server.wsUrl, mode === 'backup' ? `${docId}?link=backup` : docId)
      c.send({ type: LogMessage.subscribe, cursor: 0 })
      await c.until(is.caughtUp)
      return c
    }
    const a = await open('backup')
    const b = await open('backup')
    const r = await open('relay')
    const tag = (n: number) => new Uint8Array(8).fill(n)
    a.send({ type: LogMessage.append, nonce: 1, proof: keys.writeProof, data: new Uint8Array([1]), tag: tag(1) })
    a.send({ type: LogMessage.awareness, data: new Uint8Array([9]) })
    await a.until(is.appended)
    // The relaying socket got A's entry and presence live; B (backup-only) did not.
    await r.until((f): f is ServerLogFrame => f.type === LogMessage.awareness)
    expect(entrySeqs(r)).toEqual([1])
    r.send({ type: LogMessage.append, nonce: 1, proof: keys.writeProof, data: new Uint8Array([2]) })
    await r.until(is.appended)
    // A relaying sender reaches the backup-only sockets.
    await b.until(isEntries)
    expect(entrySeqs(b)).toEqual([2])
    expect(entrySeqs(a)).toEqual([2])
    expect(b.frames.some((f) => f.type === LogMessage.awareness)).toBe(false)

    // B asks what the log holds after seq 0: A's tag at 1, an untagged entry at 2.
    b.send({ type: LogMessage.stateQuery, nonce: 7, cursor: 0 })
    const ack = await b.until(isAck(7))
    expect(ack.complete).toBe(true)
    expect(ack.lastSeq).toBe(2)
    expect(ack.tags.map((t) => [t.seq, [...t.tag]])).toEqual([
      [1, [...tag(1)]],
      [2, []],
    ])
    b.send({ type: LogMessage.stateQuery, nonce: 8, cursor: 1 })
    expect((await b.until(isAck(8))).tags.map((t) => t.seq)).toEqual([2])
    // It fetches just the entry it does not recognise.
    const before = entrySeqs(b).length
    b.send({ type: LogMessage.fetch, from: 1, to: 1 })
    await b.until((f): f is ServerLogFrame => isEntries(f) && f.entries.some((e) => e.seq === 1))
    expect(entrySeqs(b).slice(before)).toEqual([1])

    // A switches to relay: from now on it gets B's appends live.
    a.send({ type: LogMessage.linkMode, mode: 0 })
    b.send({ type: LogMessage.append, nonce: 2, proof: keys.writeProof, data: new Uint8Array([3]) })
    await a.until((f): f is ServerLogFrame => isEntries(f) && f.entries.some((e) => e.seq === 3))
    for (const c of [a, b, r]) c.close()
  })
})
