/**
 * Client compaction of private documents: concurrent writers lose nothing
 * while clients replace the log by encrypted snapshots, and a server killed
 * with SIGKILL in the middle of a compaction keeps every acknowledged entry
 * (on SQLite and on PostgreSQL).
 * Seeded: the seed is printed; re-run with `MURMUR_SEED=<seed>`.
 */
import 'fake-indexeddb/auto'
import { afterAll, afterEach, describe, expect, it } from 'vitest'
import * as Y from 'yjs'
import type { SessionCore } from '../../src/session/core.ts'
import { newDocId } from '../../src/protocol/ids.ts'
import { LogMessage } from '../../src/protocol/log.ts'
import { newLinkKey } from '../../src/private/key.ts'
import { deriveDocKeys, open, seal, type DocKeys } from '../../src/private/crypto.ts'
import { startServer, type ServerProcess } from '../helpers/server.ts'
import { backupSession, untilFacts } from '../helpers/session.ts'
import { is, rawLog, readLog, type RawLog } from '../helpers/log-client.ts'
import { prng, SEED } from '../store/contract.ts'
import { freshPostgresDatabase } from '../helpers/services.ts'

// The crash test runs on both log stores; PostgreSQL gets a fresh database.
const pg = await freshPostgresDatabase()
const pgUrl = pg.url
afterAll(() => pg.drop())

const servers: ServerProcess[] = []
const sessions: SessionCore[] = []
afterEach(async () => {
  await Promise.all(sessions.splice(0).map((s) => s.destroy()))
  await Promise.all(servers.splice(0).map((s) => s.stop('SIGKILL')))
})

/** The text a client with `keys` rebuilds from the server's log alone. */
async function textFromLog(wsUrl: string, docId: string, keys: DocKeys): Promise<{ text: string; entries: number; snapshots: number }> {
  const log = await readLog(wsUrl, docId)
  const doc = new Y.Doc()
  for (const e of log.entries) Y.applyUpdate(doc, await open(keys.content, e.data))
  return { text: doc.getText('text').toString(), entries: log.entries.length, snapshots: log.entries.filter((e) => e.snapshot).length }
}

describe('private log compaction', () => {
  it('two sessions typing at once while they compact every 20 entries: nothing is lost and the log stays short', async () => {
    const server = await startServer()
    servers.push(server)
    const docId = newDocId()
    const key = newLinkKey()
    const keys = await deriveDocKeys(key, docId)
    const a = backupSession(server, docId, { linkKey: key, compactAfter: 20, createdHere: true })
    const b = backupSession(server, docId, { linkKey: key, compactAfter: 20, createdHere: true })
    sessions.push(a, b)
    await Promise.all([untilFacts(a, (f) => f.link === 'synced', 'A synced'), untilFacts(b, (f) => f.link === 'synced', 'B synced')])
    const words: string[] = []
    for (let i = 0; i < 120; i++) {
      const [s, w] = i % 2 ? [a, `a${i};`] : [b, `b${i};`]
      words.push(w)
      s.text.insert(s.text.length, w)
      if (i % 7 === 0) await new Promise((r) => setTimeout(r, 5))
    }
    await Promise.all([untilFacts(a, (f) => f.backedUp, 'A backed up'), untilFacts(b, (f) => f.backedUp, 'B backed up')])
    // Compaction runs behind the typing: wait for compactions (events, not time) until the log is short.
    const nextCompaction = () =>
      new Promise<void>((res, rej) => {
        const timer = setTimeout(() => rej(new Error('no compaction came')), 20_000)
        const done = () => (clearTimeout(timer), res())
        a.privateLog!.once('compacted', done)
        b.privateLog!.once('compacted', done)
      })
    let next = nextCompaction()
    let log = await textFromLog(server.wsUrl, docId, keys)
    while (log.entries > 2 * 20) {
      await next
      next = nextCompaction()
      log = await textFromLog(server.wsUrl, docId, keys)
    }
    next.catch(() => {})
    for (const w of words) expect(log.text).toContain(w)
    expect(log.snapshots).toBe(1)
    expect(log.entries).toBeLessThanOrEqual(40)
  })

  it.each([['SQLite', () => []], ['PostgreSQL', () => ['--store', pgUrl]]] as const)(`kill -9 during compaction keeps every acknowledged entry (%s, seed ${SEED})`, async (_name, storeArgs) => {
    console.log(`compaction crash seed ${SEED} (re-run: MURMUR_SEED=${SEED})`)
    const rand = prng(SEED)
    const args = [...storeArgs()]
    let server = await startServer({ args })
    servers.push(server)
    const docId = newDocId()
    const keys = await deriveDocKeys(newLinkKey(), docId)
    const acked: string[] = []
    for (let round = 0; round < 4; round++) {
      // Two writers append sealed one-word updates; a third compacts; the server is killed meanwhile.
      const writers: RawLog[] = [await rawLog(server.wsUrl, docId), await rawLog(server.wsUrl, docId)]
      const sent = new Map<string, number>()
      let stop = false
      const writing = writers.map(async (w, wi) => {
        const doc = new Y.Doc()
        let n = 0
        const words = new Map<number, string>()
        w.ws.on('message', () => {
          for (const f of w.frames.splice(0)) if (f.type === LogMessage.appended && words.has(f.nonce)) acked.push(words.get(f.nonce)!)
        })
        while (!stop && w.ws.readyState === w.ws.OPEN) {
          const word = `r${round}w${wi}n${n++};`
          let update!: Uint8Array
          doc.once('update', (u: Uint8Array) => (update = u))
          doc.getText('text').insert(0, word)
          words.set(n, word)
          sent.set(word, round)
          w.send({ type: LogMessage.append, nonce: n, proof: keys.writeProof, data: await seal(keys.content, update) })
          await new Promise((r) => setTimeout(r, 1 + rand() * 3))
        }
      })
      await new Promise((r) => setTimeout(r, 30 + rand() * 50))
      const log = await readLog(server.wsUrl, docId)
      const doc = new Y.Doc()
      for (const e of log.entries) Y.applyUpdate(doc, await open(keys.content, e.data))
      const compactor = await rawLog(server.wsUrl, docId)
      compactor.send({ type: LogMessage.snapshot, nonce: 1, proof: keys.writeProof, upToSeq: log.lastSeq, data: await seal(keys.content, Y.encodeStateAsUpdate(doc)) })
      await new Promise((r) => setTimeout(r, rand() * 20))
      await server.stop('SIGKILL')
      stop = true
      await Promise.all(writing)
      server = await startServer({ dataDir: server.dataDir, args })
      servers.push(server)
      const { text } = await textFromLog(server.wsUrl, docId, keys)
      for (const w of acked) expect(text, `acked ${w} lost (seed ${SEED})`).toContain(w)
    }
    expect(acked.length).toBeGreaterThan(10)
    // After the crashes, a compaction with the server alive still applies and keeps everything.
    // (Whether one landed between kills depends on timing: on PostgreSQL the kill usually wins.)
    const before = await readLog(server.wsUrl, docId)
    const doc = new Y.Doc()
    for (const e of before.entries) Y.applyUpdate(doc, await open(keys.content, e.data))
    const compactor = await rawLog(server.wsUrl, docId)
    compactor.send({ type: LogMessage.snapshot, nonce: 1, proof: keys.writeProof, upToSeq: before.lastSeq, data: await seal(keys.content, Y.encodeStateAsUpdate(doc)) })
    await compactor.until(is.snapshotDone)
    compactor.close()
    const final = await readLog(server.wsUrl, docId)
    expect(final.entries.filter((e) => e.snapshot).length).toBe(1)
    const { text } = await textFromLog(server.wsUrl, docId, keys)
    for (const w of acked) expect(text, `acked ${w} lost after the last compaction (seed ${SEED})`).toContain(w)
  })

  it('a snapshot at or before the current one is answered as not applied and changes nothing', async () => {
    const server = await startServer()
    servers.push(server)
    const docId = newDocId()
    const keys = await deriveDocKeys(newLinkKey(), docId)
    const c = await rawLog(server.wsUrl, docId)
    for (let i = 1; i <= 3; i++) c.send({ type: LogMessage.append, nonce: i, proof: keys.writeProof, data: new Uint8Array([i]) })
    await c.until((f): f is Extract<typeof f, { type: 12 }> => is.appended(f) && f.seq === 3)
    c.send({ type: LogMessage.snapshot, nonce: 7, proof: keys.writeProof, upToSeq: 2, data: new Uint8Array([20]) })
    expect((await c.until(is.snapshotDone)).applied).toBe(true)
    c.frames.length = 0
    c.send({ type: LogMessage.snapshot, nonce: 8, proof: keys.writeProof, upToSeq: 1, data: new Uint8Array([10]) })
    expect((await c.until(is.snapshotDone)).applied).toBe(false)
    c.close()
    expect((await readLog(server.wsUrl, docId)).entries.map((e) => [...e.data])).toEqual([[20], [3]])
  })
})
