import { createHash } from 'node:crypto'
import pino from 'pino'
import { afterAll, describe, expect, test } from 'vitest'
import { openPostgresLogStore } from '../../server/store/postgres-log.ts'
import { freshPostgresDatabase } from '../helpers/services.ts'
import { logStoreContract } from './log-contract.ts'

const db = await freshPostgresDatabase()
afterAll(() => db.drop())

/** One schema per contract directory, so "reopen the same directory" reopens the same data. */
const schemaOf = (dir: string) => `l_${createHash('sha1').update(dir).digest('hex').slice(0, 16)}`
const log = pino({ level: 'silent' })
const hash = new Uint8Array(32).fill(3)

logStoreContract('postgres', (dir) => openPostgresLogStore(db.url, { log, schema: schemaOf(dir) }))

describe('PostgreSQL log store', () => {
  test('two instances appending to one log concurrently never lose or reorder an acknowledged entry, and a snapshot meanwhile keeps every later one', async () => {
    const a = await openPostgresLogStore(db.url, { log, schema: 'two_writers' })
    const b = await openPostgresLogStore(db.url, { log, schema: 'two_writers' })
    try {
      const acked = new Map<number, string>()
      const writes: Promise<unknown>[] = []
      for (let i = 0; i < 200; i++) {
        const store = i % 2 ? a : b
        const tag = `${i % 2 ? 'a' : 'b'}${i}`
        writes.push(store.append('doc', hash, [new TextEncoder().encode(tag)]).then((seq) => void acked.set(seq, tag)))
        // Instance b compacts up to what it has seen acknowledged, while both keep appending.
        if (i === 120) writes.push(Promise.all(writes.slice(0, 100)).then(() => b.replace('doc', hash, Math.max(...acked.keys()), new TextEncoder().encode('SNAP'))))
      }
      await Promise.all(writes)
      expect(acked.size, 'every append got its own seq').toBe(200)
      const r = await a.read('doc', 0)
      expect(r.lastSeq).toBe(200)
      const snap = r.entries[0]!
      expect(snap.snapshot).toBe(true)
      expect(new TextDecoder().decode(snap.data)).toBe('SNAP')
      // After the snapshot: exactly what was acknowledged with each later seq, in seq order.
      const rest = r.entries.slice(1)
      expect(rest.map((e) => e.seq)).toEqual([...acked.keys()].filter((k) => k > snap.seq).sort((x, y) => x - y))
      for (const e of rest) expect(new TextDecoder().decode(e.data)).toBe(acked.get(e.seq))
      // Each instance's own appends keep their issue order.
      const all = [...acked.entries()].sort((x, y) => x[0] - y[0]).map(([, t]) => t)
      for (const p of ['a', 'b']) {
        const mine = all.filter((t) => t.startsWith(p)).map((t) => Number(t.slice(1)))
        expect(mine).toEqual([...mine].sort((x, y) => x - y))
      }
    } finally {
      await a.close()
      await b.close()
    }
  })

  test('two instances racing to create one log: one hash wins, the other write is refused and stores nothing', async () => {
    const a = await openPostgresLogStore(db.url, { log, schema: 'first_write' })
    const b = await openPostgresLogStore(db.url, { log, schema: 'first_write' })
    try {
      const other = new Uint8Array(32).fill(9)
      const [ra, rb] = await Promise.allSettled([a.append('d', hash, [new Uint8Array([1])]), b.append('d', other, [new Uint8Array([2])])])
      const won = [ra, rb].filter((r) => r.status === 'fulfilled')
      expect(won).toHaveLength(1)
      expect([ra, rb].find((r) => r.status === 'rejected')).toMatchObject({ reason: { code: 'forbidden' } })
      const r = await a.read('d', 0)
      expect(r.entries).toHaveLength(1)
      expect(r.lastSeq).toBe(1)
    } finally {
      await a.close()
      await b.close()
    }
  })
})
