/**
 * Start-up never fails on what a crash can leave next to `murmur.db`: a WAL
 * with a torn tail or a torn header, an empty WAL, an empty, missing, stale or
 * garbage `-shm`. Each case builds the files from a real store (copied while
 * it is open, as `kill -9` leaves them), opens the store on them, checks that
 * exactly the committed rows load and that the store still takes writes.
 */
import { appendFileSync, copyFileSync, existsSync, readFileSync, rmSync, truncateSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import pino from 'pino'
import { afterEach, expect, test } from 'vitest'
import { openSqliteStore, SQLITE_FILE_NAME, type SqliteStore } from '../../server/store/sqlite.ts'
import { inspectWal } from '../../server/store/wal-inspect.ts'
import { expectSameUpdates } from './contract.ts'
import { tempDir } from './wal-fixtures.ts'

const dirs: string[] = []
const stores: SqliteStore[] = []
afterEach(async () => {
  for (const s of stores.splice(0)) await s.close()
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true })
})
function dir(): string {
  const d = tempDir('murmur-startup-')
  dirs.push(d)
  return d
}
function open(d: string) {
  const lines: { level: number; msg: string; [k: string]: unknown }[] = []
  const store = openSqliteStore(d, { log: pino({ level: 'warn' }, { write: (s: string) => lines.push(JSON.parse(s)) }) })
  stores.push(store)
  return { store, warnings: lines }
}
const u = (n: number) => new Uint8Array(300).fill(n)
const FILES = ['', '-wal', '-shm'].map((s) => SQLITE_FILE_NAME + s)

/** Copies the live store's files from `from` to a new dir, as a kill -9 at this moment would leave them. */
function crashCopy(from: string): string {
  const to = dir()
  for (const f of FILES) if (existsSync(join(from, f))) copyFileSync(join(from, f), join(to, f))
  return to
}

/** A live store with 3 committed appends of 10 rows on 'doc'; returns its dir and the rows. */
async function liveStore() {
  const d = dir()
  const { store } = open(d)
  const rows: Uint8Array[] = []
  for (let a = 0; a < 3; a++) {
    const batch = Array.from({ length: 10 }, (_, i) => u(a * 10 + i))
    await store.append('doc', batch)
    rows.push(...batch)
  }
  return { d, store, rows }
}

async function expectOpens(d: string, rows: Uint8Array[]) {
  const { store, warnings } = open(d)
  const loaded = await store.load('doc')
  expectSameUpdates(loaded.updates, rows)
  expect(await store.append('doc', [u(99)])).toBe(rows.length + 1) // still writable
  return warnings
}

test('missing -shm, empty -shm, garbage -shm: recovered from the WAL, every committed row there', async () => {
  const { d, rows } = await liveStore()
  const missing = crashCopy(d)
  rmSync(join(missing, `${SQLITE_FILE_NAME}-shm`), { force: true })
  await expectOpens(missing, rows)

  const empty = crashCopy(d)
  writeFileSync(join(empty, `${SQLITE_FILE_NAME}-shm`), '')
  await expectOpens(empty, rows)

  const garbage = crashCopy(d)
  writeFileSync(join(garbage, `${SQLITE_FILE_NAME}-shm`), Buffer.alloc(32768, 0xa5))
  await expectOpens(garbage, rows)
})

test('a stale -shm from an earlier moment of the killed process does not hide later commits', async () => {
  const d = dir()
  const { store } = open(d)
  await store.append('doc', [u(1), u(2)])
  const early = readFileSync(join(d, `${SQLITE_FILE_NAME}-shm`))
  await store.append('doc', [u(3), u(4)])
  await store.append('doc', [u(5)])
  const img = crashCopy(d)
  writeFileSync(join(img, `${SQLITE_FILE_NAME}-shm`), early)
  const warnings = await expectOpens(img, [1, 2, 3, 4, 5].map(u))
  expect(warnings.map((w) => w.msg)).toEqual([expect.stringMatching(/^store: unclean shutdown: WAL holds \d+ committed frames \(recovered\); no torn/)])
})

test('an empty -wal (and -shm) after a checkpoint: opens silently with everything', async () => {
  const { d, store, rows } = await liveStore()
  await store.close() // checkpoints into murmur.db and removes the WAL
  writeFileSync(join(d, `${SQLITE_FILE_NAME}-wal`), '')
  writeFileSync(join(d, `${SQLITE_FILE_NAME}-shm`), '')
  expect(await expectOpens(d, rows)).toEqual([])
})

test('a torn tail after the last commit is discarded with a warning; committed rows all load', async () => {
  const { d, rows } = await liveStore()
  const img = crashCopy(d)
  const wal = join(img, `${SQLITE_FILE_NAME}-wal`)
  const before = inspectWal(wal)
  appendFileSync(wal, Buffer.alloc(1500, 0x77)) // a sector-sized piece of a frame that never completed
  const warnings = await expectOpens(img, rows)
  expect(warnings).toHaveLength(1)
  expect(warnings[0]).toMatchObject({ level: 40, committedFrames: before.committedFrames, trailingBytes: 1500, discardedBytes: 1500 })
  expect(warnings[0]!.msg).toContain('discarding a torn/uncommitted tail of 0 frames / 1500 bytes')
})

test('a torn last transaction is rolled back (it was never acknowledged); earlier ones load', async () => {
  const { d, store, rows } = await liveStore()
  const img0 = crashCopy(d)
  const committedEnd = inspectWal(join(img0, `${SQLITE_FILE_NAME}-wal`)).committedEnd
  await store.append('doc', [u(200), u(201)]) // the transaction the crash tears
  const img = crashCopy(d)
  const wal = join(img, `${SQLITE_FILE_NAME}-wal`)
  const size = readFileSync(wal).length
  expect(size).toBeGreaterThan(committedEnd)
  truncateSync(wal, size - 100)
  const warnings = await expectOpens(img, rows)
  expect(warnings[0]).toMatchObject({ level: 40, discardedBytes: size - 100 - committedEnd })
})

test('a torn WAL header: SQLite ignores the whole log; the checkpointed rows load and a warning says so', async () => {
  const { d, store, rows } = await liveStore()
  await store.close()
  const { store: again } = open(d)
  await again.append('doc', [u(50)]) // a new log cycle holding one uncheckpointed transaction
  const img = crashCopy(d)
  truncateSync(join(img, `${SQLITE_FILE_NAME}-wal`), 20)
  const warnings = await expectOpens(img, rows)
  expect(warnings[0]).toMatchObject({ level: 40, discardedBytes: 20 })
  expect(warnings[0]!.msg).toContain('WAL header is torn or invalid')
})
