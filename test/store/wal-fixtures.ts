/**
 * Real WAL files for the recovery tests: a database written by SQLite in WAL
 * mode whose files are copied while its connection is still open (as a
 * `kill -9` would leave them), plus helpers to tear or re-encode the copy.
 */
import Database from 'better-sqlite3'
import { copyFileSync, existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'

/** Page size of every fixture database. */
export const PAGE = 4096
/** Bytes of one WAL frame (header + page) in the fixtures. */
export const FRAME = 24 + PAGE

/** A crash image: the copied database and its `-wal`, and what each transaction wrote. */
export interface WalImage {
  dir: string
  db: string
  wal: string
  /** Row ids written by each committed transaction, in commit order (the table-creating one included, with none). */
  txnRows: number[][]
  /** WAL size after each transaction (index i: after txnRows[i]). */
  walSizeAfter: number[]
}

/** A new temp dir. */
export function tempDir(prefix = 'murmur-wal-'): string {
  return mkdtempSync(join(tmpdir(), prefix))
}

/**
 * Writes `sizes.length` transactions into a fresh WAL database — transaction
 * i inserts one row of `sizes[i]` bytes (large ones span overflow pages, so
 * several frames) — and copies the files before any checkpoint. With
 * `restartAfter`, the log is checkpointed and restarted after that many
 * transactions, so the copy also holds stale frames of the earlier cycle.
 */
export function walImage(sizes: number[], opts: { restartAfter?: number; keepShm?: boolean } = {}): WalImage {
  const src = tempDir()
  const file = join(src, 'x.db')
  const db = new Database(file)
  db.pragma(`page_size = ${PAGE}`)
  db.pragma('journal_mode = WAL')
  db.pragma('wal_autocheckpoint = 0')
  db.exec('CREATE TABLE t (id INTEGER PRIMARY KEY, data BLOB NOT NULL)')
  const txnRows: number[][] = [[]]
  const walSizeAfter = [readFileSync(`${file}-wal`).length]
  const insert = db.prepare('INSERT INTO t (id, data) VALUES (?, ?)')
  sizes.forEach((size, i) => {
    if (opts.restartAfter === i) {
      db.pragma('wal_checkpoint(RESTART)')
      txnRows.length = 0
      walSizeAfter.length = 0
    }
    const id = i + 1
    insert.run(id, Buffer.alloc(size, id & 0xff))
    txnRows.push([id])
    walSizeAfter.push(readFileSync(`${file}-wal`).length)
  })
  const dir = tempDir()
  copyFileSync(file, join(dir, 'x.db'))
  copyFileSync(`${file}-wal`, join(dir, 'x.db-wal'))
  if (opts.keepShm && existsSync(`${file}-shm`)) copyFileSync(`${file}-shm`, join(dir, 'x.db-shm'))
  db.close()
  return { dir, db: join(dir, 'x.db'), wal: join(dir, 'x.db-wal'), txnRows, walSizeAfter }
}

/**
 * Ids of the rows SQLite sees in the image. Opens a copy (recovery runs
 * there, and closing it checkpoints and deletes that copy's WAL), so the
 * image itself stays as it was for further tearing.
 */
export function rowsOf(dbFile: string): number[] {
  const dir = tempDir('murmur-walcopy-')
  const copy = join(dir, 'x.db')
  copyFileSync(dbFile, copy)
  if (existsSync(`${dbFile}-wal`)) copyFileSync(`${dbFile}-wal`, `${copy}-wal`)
  const db = new Database(copy)
  try {
    return db.prepare('SELECT id FROM t ORDER BY id').pluck().all() as number[]
  } finally {
    db.close()
    rmSync(dir, { recursive: true, force: true })
  }
}

function sums(buf: Buffer, off: number, len: number, s: [number, number]): void {
  for (let i = off; i < off + len; i += 8) {
    s[0] = (s[0] + buf.readUInt32BE(i) + s[1]) >>> 0
    s[1] = (s[1] + buf.readUInt32BE(i + 4) + s[0]) >>> 0
  }
}

/**
 * Rewrites `walFile` with the big-endian magic (0x377f0683) and recomputes
 * every checksum over big-endian words, independently of `wal-inspect.ts`;
 * SQLite reads either byte order, so the result must recover the same rows.
 */
export function toBigEndianWal(walFile: string): void {
  const b = readFileSync(walFile)
  const pageSize = b.readUInt32BE(8)
  b.writeUInt32BE(0x377f0683, 0)
  const s: [number, number] = [0, 0]
  sums(b, 0, 24, s)
  b.writeUInt32BE(s[0], 24)
  b.writeUInt32BE(s[1], 28)
  for (let off = 32; off + 24 + pageSize <= b.length; off += 24 + pageSize) {
    sums(b, off, 8, s)
    sums(b, off + 24, pageSize, s)
    b.writeUInt32BE(s[0], off + 16)
    b.writeUInt32BE(s[1], off + 20)
  }
  writeFileSync(walFile, b)
}
