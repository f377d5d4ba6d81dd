/**
 * `LogStore` on SQLite: tables `log_docs` and `log_entries` in the same
 * `murmur.db` as the plain store (own connection, WAL, `synchronous=FULL`),
 * so one file holds everything and `--max-storage-bytes` counts both. Each
 * row carries a CRC-32 of its bytes like `updates` rows. Appends issued in
 * one event-loop turn share one transaction and one fsync (group commit);
 * none resolves before that commit. The write hash is compared in constant
 * time.
 */
import Database from 'better-sqlite3'
import { mkdirSync } from 'node:fs'
import { join } from 'node:path'
import { timingSafeEqual } from 'node:crypto'
import pino, { type Logger } from 'pino'
import { crc32, SQLITE_FILE_NAME } from './sqlite.ts'
import { checkAppendArgs, checkLogArgs, checkReplaceArgs, LogStoreError, type LogRead, type LogStore } from './log-store.ts'

const SCHEMA = `
  CREATE TABLE IF NOT EXISTS log_docs (
    doc_id       TEXT PRIMARY KEY,
    write_hash   BLOB NOT NULL,
    last_seq     INTEGER NOT NULL,
    snapshot_seq INTEGER NOT NULL
  ) WITHOUT ROWID;
  CREATE TABLE IF NOT EXISTS log_entries (
    doc_id TEXT NOT NULL,
    seq    INTEGER NOT NULL,
    crc    INTEGER NOT NULL,
    data   BLOB NOT NULL,
    PRIMARY KEY (doc_id, seq)
  ) WITHOUT ROWID;`

interface Pending {
  docId: string
  hash: Uint8Array
  entries: Uint8Array[]
  resolve: (seq: number) => void
  reject: (err: unknown) => void
}

interface DocRow {
  write_hash: Uint8Array
  last_seq: number
  snapshot_seq: number
}

const invalid = (m: string) => new LogStoreError('invalid-argument', m)


/** Opens the log store inside `<dir>/murmur.db` (creating its tables if needed). */
export function openSqliteLogStore(dir: string, opts: { log?: Logger; groupCommit?: boolean } = {}): LogStore {
  mkdirSync(dir, { recursive: true })
  const file = join(dir, SQLITE_FILE_NAME)
  const log = opts.log ?? pino({ name: 'log-store', level: 'warn' })
  const groupCommit = opts.groupCommit ?? true
  const db = new Database(file, { timeout: 5000 })
  db.pragma('journal_mode = WAL')
  db.pragma('synchronous = FULL')
  db.exec(SCHEMA)

  const docStmt = db.prepare<[string], DocRow>('SELECT write_hash, last_seq, snapshot_seq FROM log_docs WHERE doc_id = ?')
  const newDocStmt = db.prepare<[string, Uint8Array]>('INSERT INTO log_docs (doc_id, write_hash, last_seq, snapshot_seq) VALUES (?, ?, 0, 0)')
  const setLastStmt = db.prepare<[number, string]>('UPDATE log_docs SET last_seq = ? WHERE doc_id = ?')
  const setSnapStmt = db.prepare<[number, string]>('UPDATE log_docs SET snapshot_seq = ? WHERE doc_id = ?')
  const insertStmt = db.prepare<[string, number, number, Uint8Array]>('INSERT INTO log_entries (doc_id, seq, crc, data) VALUES (?, ?, ?, ?)')
  const deleteUpToStmt = db.prepare<[string, number]>('DELETE FROM log_entries WHERE doc_id = ? AND seq <= ?')
  const readStmt = db.prepare<[string, number], [number, number, unknown]>('SELECT seq, crc, data FROM log_entries WHERE doc_id = ? AND seq >= ? ORDER BY seq').raw()
  const countStmt = db.prepare<[string, number], number>('SELECT count(*) FROM log_entries WHERE doc_id = ? AND seq > ?').pluck()
  const bytesStmt = db.prepare<[string], number>('SELECT coalesce(sum(length(data)), 0) FROM log_entries WHERE doc_id = ?').pluck()

  const sameHash = (a: Uint8Array, b: Uint8Array) => a.byteLength === b.byteLength && timingSafeEqual(a, b)

  /** The document row, created with `hash` on its first write; throws `forbidden` on a different hash. */
  const authorize = (docId: string, hash: Uint8Array): DocRow => {
    let row = docStmt.get(docId)
    if (!row) {
      newDocStmt.run(docId, hash)
      row = { write_hash: hash, last_seq: 0, snapshot_seq: 0 }
    } else if (!sameHash(new Uint8Array(row.write_hash), hash)) throw new LogStoreError('forbidden', `wrong write capability for ${docId}`)
    return row
  }

  const appendRows = db.transaction((p: Pending): number => {
    const row = authorize(p.docId, p.hash)
    let seq = row.last_seq
    for (const e of p.entries) insertStmt.run(p.docId, ++seq, crc32(e), e)
    setLastStmt.run(seq, p.docId)
    return seq
  })

  const appendGroup = db.transaction((group: Pending[]): (number | Error)[] =>
    group.map((p) => {
      try {
        return appendRows(p)
      } catch (err) {
        if (!db.inTransaction) throw err
        return err instanceof Error ? err : new Error(String(err))
      }
    }),
  )

  const replaceRows = db.transaction((docId: string, hash: Uint8Array, upToSeq: number, snapshot: Uint8Array): boolean => {
    const row = docStmt.get(docId)
    if (!row) throw invalid(`replace ${docId}: no such log`)
    if (!sameHash(new Uint8Array(row.write_hash), hash)) throw new LogStoreError('forbidden', `wrong write capability for ${docId}`)
    if (upToSeq > row.last_seq) throw invalid(`replace ${docId}: upToSeq ${upToSeq} past the last seq ${row.last_seq}`)
    if (upToSeq <= row.snapshot_seq) return false
    deleteUpToStmt.run(docId, upToSeq)
    insertStmt.run(docId, upToSeq, crc32(snapshot), snapshot)
    setSnapStmt.run(upToSeq, docId)
    return true
  })

  let queue: Pending[] = []
  let scheduled: ReturnType<typeof setImmediate> | undefined
  let closed = false

  function flush(): void {
    if (scheduled) clearImmediate(scheduled)
    scheduled = undefined
    if (queue.length === 0) return
    const group = queue
    queue = []
    let results: (number | Error)[]
    try {
      results = group.length === 1 ? [appendRows.immediate(group[0]!)] : appendGroup.immediate(group)
    } catch (err) {
      if (group.length === 1) return group[0]!.reject(err)
      for (const p of group) p.reject(err)
      return
    }
    group.forEach((p, i) => {
      const r = results[i]!
      if (typeof r === 'number') p.resolve(r)
      else p.reject(r)
    })
  }

  function ensureOpen(): void {
    if (closed) throw new LogStoreError('closed', `log store ${file} is closed`)
  }

  return {
    async read(docId: string, afterSeq: number): Promise<LogRead> {
      ensureOpen()
      checkLogArgs(docId, undefined)
      flush()
      const row = docStmt.get(docId)
      if (!row) return { entries: [], lastSeq: 0, sinceSnapshot: 0 }
      const from = afterSeq < row.snapshot_seq ? row.snapshot_seq : afterSeq + 1
      const entries: LogRead['entries'] = []
      for (const [seq, crc, data] of readStmt.all(docId, from)) {
        if (!(data instanceof Uint8Array) || crc32(data) !== crc) {
          log.warn({ docId, seq }, 'log store: skipping a corrupt entry (checksum mismatch)')
          continue
        }
        entries.push({ seq, snapshot: seq === row.snapshot_seq, data: new Uint8Array(data.buffer, data.byteOffset, data.byteLength) })
      }
      return { entries, lastSeq: row.last_seq, sinceSnapshot: countStmt.get(docId, row.snapshot_seq) ?? 0 }
    },

    append(docId: string, writeHash: Uint8Array, entries: Uint8Array[]): Promise<number> {
      try {
        ensureOpen()
        checkAppendArgs(docId, writeHash, entries)
      } catch (err) {
        return Promise.reject(err)
      }
      return new Promise<number>((resolve, reject) => {
        queue.push({ docId, hash: writeHash.slice(), entries: entries.slice(), resolve, reject })
        if (!groupCommit) flush()
        else scheduled ??= setImmediate(flush)
      })
    },

    async replace(docId: string, writeHash: Uint8Array, upToSeq: number, snapshot: Uint8Array): Promise<boolean> {
      ensureOpen()
      checkReplaceArgs(docId, writeHash, upToSeq, snapshot)
      flush()
      return replaceRows.immediate(docId, writeHash, upToSeq, snapshot)
    },

    async exists(docId: string): Promise<boolean> {
      ensureOpen()
      flush()
      return docStmt.get(docId) !== undefined
    },

    async bytes(docId: string): Promise<number> {
      ensureOpen()
      flush()
      return bytesStmt.get(docId) ?? 0
    },

    async close(): Promise<void> {
      if (closed) return
      flush()
      closed = true
      db.close()
    },
  }
}
