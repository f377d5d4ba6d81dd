import Database from 'better-sqlite3'
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { dirname, join } from 'node:path'
import pino from 'pino'
import { afterEach, describe, expect, test } from 'vitest'
import * as Y from 'yjs'
import { backupSqliteStore, openSqliteStore, SQLITE_FILE_NAME, SQLITE_SCHEMA_VERSION, type SqliteStore, type SqliteStoreOptions } from '../../server/store/sqlite.ts'
import { expectSameUpdates, prng, SEED, storeContract } from './contract.ts'

storeContract('sqlite', (dir) => openSqliteStore(dir, { log: pino({ level: 'silent' }) }))
storeContract('sqlite without group commit', (dir) => openSqliteStore(dir, { log: pino({ level: 'silent' }), groupCommit: false }))

/** A pino logger whose lines are collected as parsed objects. */
function captureLog() {
  const lines: Record<string, unknown>[] = []
  const log = pino({ level: 'debug' }, { write: (s: string) => lines.push(JSON.parse(s)) })
  return { log, lines }
}

/**
 * A seeded typing session on one Y.Doc: mostly single-character inserts near
 * a moving cursor, some deletions, one transaction (= one update) per keystroke.
 */
export function typingSession(seed: number, keystrokes: number): { doc: Y.Doc; updates: Uint8Array[] } {
  const rand = prng(seed)
  const doc = new Y.Doc()
  doc.clientID = 1 + (seed % 1_000_000)
  const text = doc.getText('t')
  const updates: Uint8Array[] = []
  doc.on('update', (u: Uint8Array) => updates.push(u))
  let cursor = 0
  const letters = 'abcdefghijklmnopqrstuvwxyz     \n.,'
  for (let i = 0; i < keystrokes; i++) {
    if (rand() < 0.05) cursor = Math.floor(rand() * (text.length + 1)) // click elsewhere
    cursor = Math.min(cursor, text.length)
    if (rand() < 0.15 && cursor > 0) {
      text.delete(--cursor, 1) // backspace
    } else {
      text.insert(cursor++, letters[Math.floor(rand() * letters.length)]!)
    }
  }
  expect(updates.length).toBe(keystrokes)
  return { doc, updates }
}

describe('SQLite store', () => {
  const dirs: string[] = []
  const stores: SqliteStore[] = []
  const others: Database.Database[] = []
  function tempDir(): string {
    const dir = mkdtempSync(join(tmpdir(), 'murmur-sqlite-'))
    dirs.push(dir)
    return dir
  }
  function open(dir: string, opts: SqliteStoreOptions = {}): SqliteStore {
    const s = openSqliteStore(dir, { log: pino({ level: 'silent' }), ...opts })
    stores.push(s)
    return s
  }
  /** A second, independent connection to the store's file (what an operator's sqlite3 shell would be). */
  function rawDb(dir: string): Database.Database {
    const db = new Database(join(dir, SQLITE_FILE_NAME))
    others.push(db)
    return db
  }
  afterEach(async () => {
    for (const s of stores.splice(0)) await s.close()
    for (const db of others.splice(0)) db.close()
    for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true })
  })

  test('creates the directory recursively, uses WAL with synchronous=FULL and records the schema version', async () => {
    const dir = join(tempDir(), 'nested', 'data')
    const store = open(dir)
    expect(store.file).toBe(join(dir, 'murmur.db'))
    const stats = store.stats()
    expect(stats.journalMode).toBe('wal')
    expect(stats.synchronous).toBe('FULL')
    expect(stats.schemaVersion).toBe(SQLITE_SCHEMA_VERSION)
    // Persistent settings as another connection sees them.
    const db = rawDb(dir)
    expect(db.pragma('journal_mode', { simple: true })).toBe('wal')
    expect(db.pragma('user_version', { simple: true })).toBe(SQLITE_SCHEMA_VERSION)
  })

  test('a row whose bytes no longer match their checksum is skipped with a warning; the rest loads', async () => {
    const dir = tempDir()
    const { log, lines } = captureLog()
    const store = open(dir, { log })
    const u = (b: number) => new Uint8Array([b, b, b, b])
    await store.append('doc', [u(1), u(2), u(3), u(4), u(5)])
    await store.append('other', [u(9)])
    const db = rawDb(dir)
    // Garbage of the same length in row 2, a different length in row 4: the crc column is left as it was.
    expect(db.prepare('UPDATE updates SET data = ? WHERE doc_id = ? AND seq = ?').run(Buffer.from([2, 2, 2, 3]), 'doc', 2).changes).toBe(1)
    expect(db.prepare('UPDATE updates SET data = ? WHERE doc_id = ? AND seq = ?').run(Buffer.from('garbage'), 'doc', 4).changes).toBe(1)
    // A value that is not even a blob.
    expect(db.prepare('UPDATE updates SET data = ? WHERE doc_id = ? AND seq = ?').run('text, not bytes', 'doc', 5).changes).toBe(1)

    const loaded = await store.load('doc')
    expectSameUpdates(loaded.updates, [u(1), u(3)])
    expect(loaded.bytes).toBe(8)
    expect(loaded.lastSeq).toBe(5) // still counted: the next append must not reuse 5
    const warnings = lines.filter((l) => l.level === 40)
    expect(warnings.map((w) => [w.docId, w.seq])).toEqual([['doc', 2], ['doc', 4], ['doc', 5]])
    expectSameUpdates((await store.load('other')).updates, [u(9)])

    expect(await store.append('doc', [u(6)])).toBe(6)
    // Compacting up to lastSeq removes the damaged rows for good.
    await store.compact('doc', 6, new Uint8Array([0xaa]))
    lines.length = 0
    const after = await store.load('doc')
    expectSameUpdates(after.updates, [new Uint8Array([0xaa])])
    expect(lines.filter((l) => l.level === 40)).toEqual([])
  })

  test('refuses a database written by a newer schema, and a file that is not a database', async () => {
    const dir = tempDir()
    const store = open(dir)
    await store.append('doc', [new Uint8Array([1])])
    await store.close()
    const db = new Database(join(dir, SQLITE_FILE_NAME))
    db.pragma(`user_version = ${SQLITE_SCHEMA_VERSION + 1}`)
    db.close()
    expect(() => open(dir)).toThrow(expect.objectContaining({ name: 'StoreError', code: 'newer-schema' }))

    const junk = tempDir()
    writeFileSync(join(junk, SQLITE_FILE_NAME), Buffer.alloc(8192, 0x42))
    expect(() => open(junk)).toThrow(/not a database/)
  })

  test('checkWritable does a real write: it fails while another connection holds the write lock', async () => {
    const dir = tempDir()
    const store = open(dir, { busyTimeoutMs: 50 })
    await store.checkWritable()
    const db = rawDb(dir)
    db.exec('BEGIN IMMEDIATE')
    await expect(store.checkWritable()).rejects.toMatchObject({ code: 'SQLITE_BUSY' })
    await expect(store.append('doc', [new Uint8Array([1])])).rejects.toMatchObject({ code: 'SQLITE_BUSY' })
    db.exec('ROLLBACK')
    await store.checkWritable()
    expect(await store.append('doc', [new Uint8Array([1])])).toBe(1)
  })

  test('group commit: when one append of a batch fails, it rolls back whole and alone; the others commit and survive a reopen', async () => {
    const dir = tempDir()
    const store = open(dir)
    const u = (b: number) => new Uint8Array([b, b])
    expect(await store.append('a', [u(1)])).toBe(1)
    // A real SQLite failure in the middle of one append: its second row is refused.
    rawDb(dir).exec(`CREATE TRIGGER refuse BEFORE INSERT ON updates WHEN NEW.doc_id = 'refused' AND NEW.seq = 2
                     BEGIN SELECT RAISE(ABORT, 'injected failure'); END`)
    // Issued in one event-loop turn: one group, one transaction.
    const results = await Promise.allSettled([store.append('a', [u(2)]), store.append('refused', [u(3), u(4)]), store.append('b', [u(5)])])
    expect(results.map((r) => r.status)).toEqual(['fulfilled', 'rejected', 'fulfilled'])
    expect((results[1] as PromiseRejectedResult).reason.message).toMatch(/injected failure/)
    expect(results.map((r) => (r.status === 'fulfilled' ? r.value : null))).toEqual([2, null, 1])
    await store.close()
    const again = open(dir)
    expectSameUpdates((await again.load('a')).updates, [u(1), u(2)], 'a:')
    expect((await again.load('refused')).updates, 'the failed append left no row behind').toEqual([])
    expectSameUpdates((await again.load('b')).updates, [u(5)], 'b:')
  })

  test('online backups finish and are consistent while another writer keeps appending', async () => {
    const dir = tempDir()
    const store = open(dir)
    const big = (i: number) => new Uint8Array(2048).fill(i)
    for (let i = 0; i < 300; i += 10) await store.append('doc', Array.from({ length: 10 }, (_, k) => big(i + k)))
    const live = (i: number) => new Uint8Array([i & 0xff, i >> 8])
    let n = 0 // live rows issued so far
    let acked = 0 // live rows the store has confirmed committed
    /**
     * Runs `job` while appending; returns rows issued in all, rows issued (and rows acknowledged)
     * before the job started, and rows issued after it started that were committed before it
     * finished (row i has seq i).
     */
    async function whileWriting<T>(job: () => Promise<T>): Promise<{ issued: number; before: number; ackedBefore: number; landedDuring: number }> {
      let done = false
      const writer = (async () => {
        while (!done) acked = await store.append('live', [live(++n)])
      })()
      const timeout = new Promise<never>((_, rej) => setTimeout(() => rej(new Error('backup did not finish within 10 s of continuous writes')), 10_000))
      let landedDuring = 0
      const ackedBefore = acked
      const running = job() // its synchronous start (flushing what is queued) runs now
      const before = n
      try {
        await Promise.race([running, timeout])
        landedDuring = Math.max(0, acked - before)
      } finally {
        done = true
        await writer
      }
      return { issued: n, before, ackedBefore, landedDuring }
    }
    /** Opens a copy as a store and checks it is a consistent prefix of what was written. */
    async function checkCopy(file: string, writtenLive: number) {
      const check = new Database(file, { readonly: true })
      expect(check.pragma('integrity_check', { simple: true })).toBe('ok')
      check.close()
      const copy = open(dirname(file))
      expectSameUpdates((await copy.load('doc')).updates, Array.from({ length: 300 }, (_, i) => big(i)), 'copy of doc:')
      const l = await copy.load('live')
      expect(l.lastSeq).toBeLessThanOrEqual(writtenLive)
      expectSameUpdates(l.updates, Array.from({ length: l.lastSeq }, (_, i) => live(i + 1)), 'copy of live:')
      return l.lastSeq
    }

    // From a second connection (what a CLI does while the server runs): it cannot know of appends
    // still on their way to the store's writer thread, so only acknowledged ones must be in the copy.
    const file1 = join(tempDir(), SQLITE_FILE_NAME)
    const w1 = await whileWriting(() => backupSqliteStore(dir, file1))
    expect(await checkCopy(file1, w1.issued)).toBeGreaterThanOrEqual(w1.ackedBefore)
    // Through the store itself: a stepwise copy, so appends commit while it runs and are carried into it.
    const file2 = join(tempDir(), SQLITE_FILE_NAME)
    const w2 = await whileWriting(() => store.backup(file2))
    expect(w2.landedDuring, 'appends committed while the online backup ran').toBeGreaterThan(0)
    expect(await checkCopy(file2, w2.issued), 'the copy holds the appends committed during the backup').toBeGreaterThanOrEqual(w2.before + w2.landedDuring)
  })

  test(`compacting 5,000 real Yjs updates into one snapshot keeps the document identical (seed ${SEED})`, async () => {
    const dir = tempDir()
    const store = open(dir)
    const { doc, updates } = typingSession(SEED, 5000)
    const keepLater = 10
    // Appended as a live room would: in batches of whatever arrived during the previous commit.
    const rand = prng(SEED + 7)
    for (let i = 0; i < updates.length; ) {
      const n = 1 + Math.floor(rand() * 20)
      await store.append('doc', updates.slice(i, i + n))
      i += n
    }
    const db = rawDb(dir)
    const rows = db.prepare('SELECT count(*) FROM updates WHERE doc_id = ?').pluck()
    expect(rows.get('doc')).toBe(5000)
    const before = { stats: store.stats(), loaded: await store.load('doc') }
    const t0 = performance.now()
    await store.load('doc')
    const loadLogMs = performance.now() - t0

    // The room would build the snapshot from what it loaded: here the first 4,990 rows.
    const upTo = 5000 - keepLater
    const partial = new Y.Doc()
    for (const u of before.loaded.updates.slice(0, upTo)) Y.applyUpdate(partial, u)
    const snapshot = Y.encodeStateAsUpdate(partial)
    await store.compact('doc', upTo, snapshot)
    expect(rows.get('doc')).toBe(1 + keepLater)

    const after = { stats: store.stats(), loaded: await store.load('doc') }
    const t1 = performance.now()
    await store.load('doc')
    const loadSnapshotMs = performance.now() - t1
    expect(after.loaded.lastSeq).toBe(5000)
    expect(after.loaded.updates.length).toBe(1 + keepLater)
    expect(after.loaded.bytes).toBeLessThan(before.loaded.bytes)

    const restored = new Y.Doc()
    Y.applyUpdate(restored, Y.mergeUpdates(after.loaded.updates))
    expect(restored.getText('t').toString()).toBe(doc.getText('t').toString())
    expect(Buffer.from(Y.encodeStateVector(restored)).equals(Buffer.from(Y.encodeStateVector(doc)))).toBe(true)
    // Appends continue after the kept rows.
    expect(await store.append('doc', [new Uint8Array([0, 0])])).toBe(5001)

    // Freed pages are reused by later writes; the used part of the file shrinks.
    expect(after.stats.usedBytes).toBeLessThan(before.stats.usedBytes)
    console.log(
      `[sqlite compaction, seed ${SEED}] text ${doc.getText('t').length} chars; ` +
        `rows 5000 → ${1 + keepLater}; stored update bytes ${before.loaded.bytes} → ${after.loaded.bytes}; ` +
        `used file bytes ${before.stats.usedBytes} → ${after.stats.usedBytes} (free ${after.stats.freeBytes}); ` +
        `load ${loadLogMs.toFixed(2)} ms → ${loadSnapshotMs.toFixed(2)} ms`,
    )
  })
})
