/**
 * Private documents on two real murmur instances sharing one PostgreSQL
 * database and one Redis (`--store postgres://… --redis redis://…`): the
 * encrypted log lives in PostgreSQL (only ciphertext), appends and presence
 * on one instance reach `/log` clients on the other live, a fresh client on
 * the other instance restores from the shared log, and concurrent appends
 * through both instances never lose or reorder an acknowledged entry.
 */
import 'fake-indexeddb/auto'
import { existsSync, readdirSync, readFileSync } from 'node:fs'
import { join } from 'node:path'
import pg from 'pg'
import { afterAll, beforeAll, describe, expect, test } from 'vitest'
import type { SessionCore } from '../../src/session/core.ts'
import { newDocId } from '../../src/protocol/ids.ts'
import { LogMessage, type ServerLogFrame } from '../../src/protocol/log.ts'
import { newLinkKey } from '../../src/private/key.ts'
import { deriveDocKeys } from '../../src/private/crypto.ts'
import { startServer, type ServerProcess } from '../helpers/server.ts'
import { checkRedis, freshPostgresDatabase, REDIS_URL } from '../helpers/services.ts'
import { backupSession, untilFacts } from '../helpers/session.ts'
import { is, rawLog, readLog } from '../helpers/log-client.ts'

const db = await freshPostgresDatabase()
const prefix = await checkRedis()
const servers: ServerProcess[] = []

beforeAll(async () => {
  const args = ['--store', db.url, '--redis', REDIS_URL, '--redis-prefix', prefix]
  servers.push(...(await Promise.all([startServer({ args }), startServer({ args })])))
})
afterAll(async () => {
  await Promise.all(servers.map((s) => s.stop()))
  await db.drop()
})

function forget(docId: string): Promise<void> {
  return new Promise((res, rej) => {
    const req = indexedDB.deleteDatabase(docId)
    req.onsuccess = () => res()
    req.onerror = () => rej(req.error)
  })
}

describe('private documents on two instances (PostgreSQL + Redis)', () => {
  test('the log lives in PostgreSQL as ciphertext; edits and presence reach a client on the other instance live; a fresh client there restores it', async () => {
    const docId = newDocId()
    const key = newLinkKey()
    const marker = `cluster-marker-${Math.random().toString(36).slice(2)}`
    const sessions: SessionCore[] = []
    try {
      // No WebRTC in these sessions: their /log links relay, so the server forwards everything to them.
      const a = backupSession(servers[0]!, docId, { linkKey: key, createdHere: true, identity: { name: 'ada-on-0', color: '#123456', colorLight: '#12345633' } })
      const b = backupSession(servers[1]!, docId, { linkKey: key, identity: { name: 'bob-on-1', color: '#654321', colorLight: '#65432133' } })
      sessions.push(a, b)
      await Promise.all([untilFacts(a, (f) => f.link === 'synced', 'A synced'), untilFacts(b, (f) => f.link === 'synced', 'B synced')])
      a.text.insert(0, marker)
      await untilFacts(b, () => b.text.toString().includes(marker), 'B (instance 1) gets A\'s edit (instance 0) live')
      b.text.insert(b.text.length, ' and bob')
      await untilFacts(a, () => a.text.toString().endsWith(' and bob'), 'A gets B\'s edit live')
      const names = (s: SessionCore) => [...s.awareness.getStates().values()].map((st) => (st as { user?: { name?: string } }).user?.name)
      await untilFacts(a, (f) => names(a).includes('bob-on-1') && f.peerList.length > 0, 'A sees B\'s presence through the other instance')
      await Promise.all([untilFacts(a, (f) => f.backedUp, 'A backed up'), untilFacts(b, (f) => f.backedUp, 'B backed up')])
      const text = a.text.toString()

      // Stored in PostgreSQL, as ciphertext only; nothing in either instance's SQLite data dir.
      const c = new pg.Client({ connectionString: db.url })
      await c.connect()
      try {
        const rows = await c.query<{ data: Buffer }>('SELECT data FROM murmur.log_entries WHERE doc_id = $1', [docId])
        expect(rows.rows.length).toBeGreaterThan(0)
        for (const r of rows.rows) expect(r.data.includes(Buffer.from(marker))).toBe(false)
      } finally {
        await c.end()
      }
      for (const s of servers) {
        for (const f of existsSync(s.dataDir) ? readdirSync(s.dataDir) : []) expect(readFileSync(join(s.dataDir, f)).includes(Buffer.from(marker))).toBe(false)
      }

      await Promise.all(sessions.splice(0).map((s) => s.destroy()))
      await forget(docId)
      const fresh = backupSession(servers[1]!, docId, { linkKey: key })
      sessions.push(fresh)
      await untilFacts(fresh, (f) => f.link === 'synced', 'fresh client synced')
      expect(fresh.text.toString()).toBe(text)
    } finally {
      await Promise.all(sessions.map((s) => s.destroy()))
    }
  })

  test('appends through both instances at once: every acknowledged entry is stored once, at its seq, and relayed to the other instance', async () => {
    const docId = newDocId()
    const keys = await deriveDocKeys(newLinkKey(), docId)
    const writers = await Promise.all(servers.map((s) => rawLog(s.wsUrl, docId)))
    // A relay-mode listener on instance 1 sees instance 0's appends live.
    const listener = await rawLog(servers[1]!.wsUrl, docId)
    listener.send({ type: LogMessage.subscribe, cursor: 0 })
    await listener.until(is.caughtUp)
    const n = 40
    for (let i = 0; i < n; i++) {
      writers.forEach((w, k) => w.send({ type: LogMessage.append, nonce: i + 1, proof: keys.writeProof, data: new TextEncoder().encode(`w${k}-${i}`) }))
    }
    const acked = new Map<number, string>()
    await Promise.all(
      writers.map(async (w, k) => {
        await w.until((f): f is Extract<ServerLogFrame, { type: 12 }> => f.type === LogMessage.appended && f.nonce === n)
        for (const f of w.frames) if (f.type === LogMessage.appended) acked.set(f.seq, `w${k}-${f.nonce - 1}`)
      }),
    )
    expect(acked.size).toBe(2 * n)
    const stored = await readLog(servers[0]!.wsUrl, docId)
    expect(stored.lastSeq).toBe(2 * n)
    expect(stored.entries.map((e) => [e.seq, new TextDecoder().decode(e.data)])).toEqual([...acked.entries()].sort((x, y) => x[0] - y[0]))
    // Instance 0's writer's entries reached the listener on instance 1 through Redis.
    const fromZero = [...acked.entries()].filter(([, t]) => t.startsWith('w0-')).map(([seq]) => seq)
    await listener.until((f): f is Extract<ServerLogFrame, { type: 10 }> => f.type === LogMessage.entries && f.entries.some((e) => e.seq === Math.max(...fromZero)))
    const heard = new Set(listener.frames.flatMap((f) => (f.type === LogMessage.entries ? f.entries.map((e) => e.seq) : [])))
    for (const seq of fromZero) expect(heard.has(seq)).toBe(true)
    for (const w of [...writers, listener]) w.close()
  })
})
