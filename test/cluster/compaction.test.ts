/**
 * Compaction on a shared store: an instance replaces the rows up to its last
 * sequence number by a snapshot of its in-memory document, so it must first
 * read what other instances stored that has not reached it through the
 * fan-out yet. Two rooms on one PostgreSQL schema whose fan-out delivers
 * nothing (a Redis message still in flight, forever) make that gap certain.
 */
import pino from 'pino'
import { afterAll, expect, test } from 'vitest'
import * as Y from 'yjs'
import { parseConfig } from '../../server/config.ts'
import type { Fanout } from '../../server/fanout/fanout.ts'
import { createMetrics } from '../../server/metrics.ts'
import { Room } from '../../server/rooms.ts'
import { openPostgresStore } from '../../server/store/postgres.ts'
import { freshPostgresDatabase } from '../helpers/services.ts'

const db = await freshPostgresDatabase()
afterAll(() => db.drop())

/** Another instance exists, but none of its messages arrive. */
const silentShared: Fanout = { shared: true, subscribe: () => ({ close() {} }), publish() {}, onInstanceGone: () => () => {}, healthy: () => true, close: async () => {} }

test('an instance compacting a shared document keeps rows another instance stored that it never heard about', async () => {
  const ctx = { config: parseConfig([], {}), log: pino({ level: 'silent' }), metrics: createMetrics() }
  const [storeA, storeB] = await Promise.all([openPostgresStore(db.url, { log: ctx.log, schema: 'gap' }), openPostgresStore(db.url, { log: ctx.log, schema: 'gap' })])
  try {
    const roomA = new Room('doc', ctx, storeA, silentShared)
    const roomB = new Room('doc', ctx, storeB, silentShared)
    await Promise.all([roomA.load(), roomB.load()])
    const edit = (room: Room, text: string) => {
      const d = new Y.Doc()
      d.getText('t').insert(0, text)
      expect(room.apply(Y.encodeStateAsUpdate(d), 'client')).toBe(true)
    }
    edit(roomA, 'from A. ')
    await roomA.flushed()
    edit(roomB, 'from B1. ')
    edit(roomB, 'from B2. ')
    await roomB.flushed()
    // B unloads: flush, then compact up to its last seq (which is after A's row).
    await roomB.close()
    expect((await ctx.metrics.compactions.get()).values[0]?.value).toBe(1)

    const stored = await storeA.load('doc')
    const doc = new Y.Doc()
    for (const u of stored.updates) Y.applyUpdate(doc, u)
    const text = doc.getText('t').toString()
    for (const part of ['from A. ', 'from B1. ', 'from B2. ']) expect(text, `stored text ${JSON.stringify(text)}`).toContain(part)
    expect(stored.updates.length, 'compacted into one snapshot').toBe(1)
    await roomA.close(false)
  } finally {
    await storeA.close()
    await storeB.close()
  }
})
