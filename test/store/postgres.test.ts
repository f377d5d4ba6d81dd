import { createHash } from 'node:crypto'
import pino from 'pino'
import { afterAll, describe, expect, test } from 'vitest'
import { openPostgresStore } from '../../server/store/postgres.ts'
import { freshPostgresDatabase } from '../helpers/services.ts'
import { storeContract } from './contract.ts'

const db = await freshPostgresDatabase()
afterAll(() => db.drop())

/** One schema per contract directory, so "reopen the same directory" reopens the same data. */
const schemaOf = (dir: string) => `s_${createHash('sha1').update(dir).digest('hex').slice(0, 16)}`
const log = pino({ level: 'silent' })

storeContract('postgres', (dir) => openPostgresStore(db.url, { log, schema: schemaOf(dir) }))

describe('PostgreSQL store', () => {
  test('two instances appending to one document concurrently never lose or reorder an acknowledged update', async () => {
    const a = await openPostgresStore(db.url, { log, schema: 'two_writers' })
    const b = await openPostgresStore(db.url, { log, schema: 'two_writers' })
    try {
      const acked = new Map<number, string>()
      const writes: Promise<void>[] = []
      for (let i = 0; i < 200; i++) {
        const store = i % 2 ? a : b
        const tag = `${i % 2 ? 'a' : 'b'}${i}`
        writes.push(store.append('doc', [new TextEncoder().encode(tag)]).then((seq) => void acked.set(seq, tag)))
      }
      await Promise.all(writes)
      expect(acked.size, 'every append got its own seq').toBe(200)
      const loaded = await a.load('doc')
      expect(loaded.lastSeq).toBe(200)
      const stored = loaded.updates.map((u) => new TextDecoder().decode(u))
      // Row k holds exactly what was acknowledged with seq k + 1.
      expect(stored).toEqual([...acked.keys()].sort((x, y) => x - y).map((k) => acked.get(k)))
      // Each instance's own appends keep their issue order.
      for (const p of ['a', 'b']) {
        const mine = stored.filter((t) => t.startsWith(p)).map((t) => Number(t.slice(1)))
        expect(mine).toEqual([...mine].sort((x, y) => x - y))
      }
    } finally {
      await a.close()
      await b.close()
    }
  })

  test('compactions from two instances take turns; appends made meanwhile are kept', async () => {
    const a = await openPostgresStore(db.url, { log, schema: 'two_compactors' })
    const b = await openPostgresStore(db.url, { log, schema: 'two_compactors' })
    try {
      for (let i = 1; i <= 10; i++) await a.append('doc', [new Uint8Array([i])])
      const results = await Promise.allSettled([a.compact('doc', 5, new Uint8Array([0xaa])), b.compact('doc', 8, new Uint8Array([0xbb])), b.append('doc', [new Uint8Array([11])])])
      expect(results[2]).toMatchObject({ status: 'fulfilled', value: 11 })
      const loaded = await a.load('doc')
      expect(loaded.lastSeq).toBe(11)
      // a then b: b's snapshot replaces a's; b first: a's upToSeq 5 lies inside b's snapshot and is refused.
      // Either way the same rows remain, and the append made meanwhile is kept.
      expect(loaded.updates.map((u) => [...u])).toEqual([[0xbb], [9], [10], [11]])
      if (results[0].status === 'rejected') expect(results[0].reason).toMatchObject({ code: 'invalid-argument' })
    } finally {
      await a.close()
      await b.close()
    }
  })

  test('a compaction that dies mid-way leaves the old rows', async () => {
    const store = await openPostgresStore(db.url, { log, schema: 'dies_mid_way' })
    try {
      for (let i = 1; i <= 4; i++) await store.append('doc', [new Uint8Array([i])])
      // A second session deletes the rows as a compaction would, then its connection dies before COMMIT.
      const { default: pg } = await import('pg')
      const c = new pg.Client({ connectionString: db.url })
      await c.connect()
      await c.query('BEGIN')
      await c.query(`DELETE FROM dies_mid_way.updates WHERE doc_id = 'doc' AND seq <= 3`)
      const pid = (await c.query<{ pid: number }>('SELECT pg_backend_pid() AS pid')).rows[0]!.pid
      c.on('error', () => {})
      const killer = new pg.Client({ connectionString: db.url })
      await killer.connect()
      await killer.query('SELECT pg_terminate_backend($1)', [pid])
      await killer.end()
      await c.end().catch(() => {})
      const loaded = await store.load('doc')
      expect(loaded.updates.map((u) => u[0])).toEqual([1, 2, 3, 4])
    } finally {
      await store.close()
    }
  })

  test('start-up refuses a schema written by a newer murmur', async () => {
    const store = await openPostgresStore(db.url, { log, schema: 'newer' })
    await store.close()
    const { default: pg } = await import('pg')
    const c = new pg.Client({ connectionString: db.url })
    await c.connect()
    await c.query(`UPDATE newer.meta SET value = '999' WHERE key = 'schema_version'`)
    await c.end()
    await expect(openPostgresStore(db.url, { log, schema: 'newer' })).rejects.toMatchObject({ code: 'newer-schema' })
  })

  test('an unreachable server fails start-up with an error, not a hang', async () => {
    await expect(openPostgresStore('postgres://postgres@127.0.0.1:1/none', { log, connectTimeoutMs: 1000 })).rejects.toThrow()
  })
})
