/**
 * The embedded default `Store`: one SQLite file `<dir>/murmur.db` through
 * better-sqlite3, in WAL mode with `synchronous=FULL`, so an append resolves
 * only once its commit is on disk (a power loss keeps every acknowledged
 * update).
 *
 * Layout: one `updates` row per stored Yjs update, keyed by
 * `(doc_id, seq)` in a WITHOUT ROWID table, so a document's rows are one
 * contiguous range of the primary B-tree: appending touches its right edge
 * and loading is one range scan, with no second index to maintain or chase.
 * Each row carries a CRC-32 of its bytes; `load` skips (and logs) a row whose
 * bytes no longer match, so a damaged row never stops start-up.
 *
 * Crash recovery: before opening, the `-wal` left by an unclean shutdown is
 * read (`wal-inspect.ts`) and one warning says how many committed frames
 * SQLite replays and what torn or uncommitted tail it discards.
 *
 * Group commit: appends issued in the same event-loop turn (typically updates
 * of many rooms arriving together) are written in one transaction, one
 * savepoint each, and share a single fsync. Each append still succeeds or fails
 * on its own, and none resolves before the shared commit is durable.
 *
 * Writer thread (default, `writer: 'worker'`): the commits run on a worker
 * thread with its own connection (`sqlite-writer.ts`), one group at a time;
 * appends arriving meanwhile form the next group. Under load the fsync held
 * the event loop 15–37% of the time (bench/README.md, "SQLite commit"). Reads,
 * compaction, the writability probe and backups stay on the main connection,
 * each after the writer has committed everything issued before it.
 */
import Database from 'better-sqlite3'
import { mkdirSync } from 'node:fs'
import { join } from 'node:path'
import * as zlib from 'node:zlib'
import pino, { type Logger } from 'pino'
import { StoreError, type Store, type StoredDoc } from './store.ts'
import { reportWalRecovery } from './wal-inspect.ts'
import { startSqliteWriter, writerError, type WriterResult } from './sqlite-writer.ts'

/** Name of the database file inside the data directory. */
export const SQLITE_FILE_NAME = 'murmur.db'

/** Schema version kept in `PRAGMA user_version`; bump it and add a step to `MIGRATIONS` to change the schema. */
export const SQLITE_SCHEMA_VERSION = 1

/** Options of `openSqliteStore`. */
export interface SqliteStoreOptions {
  /** Receives warnings (skipped corrupt rows) and debug lines. Default: pino at level `warn` on stdout. */
  log?: Logger
  /**
   * Write the appends issued in one event-loop turn in one transaction (one
   * fsync). Default `true`; `false` commits every append on its own, which is
   * only useful to measure the difference.
   */
  groupCommit?: boolean
  /**
   * How long a write waits for another connection's lock on the file before
   * failing. Default 5000 ms: only an online backup or an operator's sqlite3
   * shell ever holds one, and both finish well within that.
   */
  busyTimeoutMs?: number
  /**
   * `synchronous` pragma. Default `'FULL'`: a commit is fsynced before the
   * append resolves. `'NORMAL'` survives a process crash but may lose the last
   * commits on power loss; it exists to measure the cost of durability.
   */
  synchronous?: 'FULL' | 'NORMAL'
  /** Told how long each commit of appends took (ms: the transaction and its fsync) and how many appends it carried. */
  onCommit?: (ms: number, appends: number) => void
  /**
   * Where group commits run: `'worker'` (default) on a writer thread, off the
   * event loop; `'main'` on the event loop, as before (for comparison).
   */
  writer?: 'worker' | 'main'
}

/** A `Store` on SQLite, with what is specific to it. */
export interface SqliteStore extends Store {
  /** Absolute or relative path of the database file. */
  readonly file: string
  /**
   * Writes a consistent copy of the live database to `destFile` without
   * stopping writers: 100 pages per event-loop turn, and appends made through
   * this store meanwhile are carried into the copy.
   */
  backup(destFile: string): Promise<void>
  /** Settings and sizes of the open database, for tests, logs and metrics. */
  stats(): SqliteStats
}

/** What `SqliteStore.stats` reports. */
export interface SqliteStats {
  /** `wal` when the write-ahead log is on (always, unless the file system refused it). */
  journalMode: string
  /** The connection's `synchronous` level: `FULL` by default. */
  synchronous: 'OFF' | 'NORMAL' | 'FULL' | 'EXTRA'
  /** `PRAGMA user_version`. */
  schemaVersion: number
  /** Bytes of the database file in use (pages minus free pages), not counting the WAL. */
  usedBytes: number
  /** Bytes of free pages inside the file, reused by later writes. */
  freeBytes: number
}

/** Schema steps: `MIGRATIONS[v]` upgrades a database from version `v` to `v + 1`. */
const MIGRATIONS: readonly string[] = [
  `CREATE TABLE IF NOT EXISTS updates (
     doc_id TEXT NOT NULL,
     seq    INTEGER NOT NULL,
     crc    INTEGER NOT NULL,
     data   BLOB NOT NULL,
     PRIMARY KEY (doc_id, seq)
   ) WITHOUT ROWID;
   CREATE TABLE IF NOT EXISTS meta (
     key   TEXT PRIMARY KEY,
     value ANY
   ) WITHOUT ROWID;`,
]

/**
 * CRC-32 of `data`, as stored in each row's `crc` column (Node's native
 * `zlib.crc32` when present: Node ≥ 20.15). Exported for tools that check a
 * database file from outside the store.
 */
export const crc32: (data: Uint8Array) => number = typeof zlib.crc32 === 'function' ? (d) => zlib.crc32(d) : crc32Js

let crcTable: Uint32Array | undefined
function crc32Js(data: Uint8Array): number {
  if (!crcTable) {
    crcTable = new Uint32Array(256)
    for (let n = 0; n < 256; n++) {
      let c = n
      for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1
      crcTable[n] = c >>> 0
    }
  }
  let c = 0xffffffff
  for (let i = 0; i < data.length; i++) c = crcTable[(c ^ data[i]!) & 0xff]! ^ (c >>> 8)
  return (c ^ 0xffffffff) >>> 0
}

function openDatabase(file: string, busyTimeoutMs: number, synchronous: string, log: Logger): Database.Database {
  // SQLite replays the committed part of a WAL left by a crash and ignores a torn or
  // uncommitted tail without a word; say what it is about to do (never fatal).
  reportWalRecovery(`${file}-wal`, log)
  const db = new Database(file, { timeout: busyTimeoutMs })
  try {
    const mode = db.pragma('journal_mode = WAL', { simple: true })
    // Some file systems (network mounts) cannot share the WAL index; SQLite then keeps its rollback journal.
    if (mode !== 'wal') log.warn({ file, mode }, 'store: WAL mode unavailable, using the rollback journal (slower, still durable)')
    db.pragma(`synchronous = ${synchronous}`)
    // Keep the WAL from staying huge after one big transaction (e.g. a first sync of a large document).
    db.pragma('journal_size_limit = 67108864')
    migrate(db)
    return db
  } catch (err) {
    db.close()
    throw err
  }
}

function migrate(db: Database.Database): void {
  const version = db.pragma('user_version', { simple: true }) as number
  if (version > SQLITE_SCHEMA_VERSION) {
    throw new StoreError('newer-schema', `${db.name} has schema version ${version}; this murmur understands up to ${SQLITE_SCHEMA_VERSION}`)
  }
  if (version === SQLITE_SCHEMA_VERSION) return
  db.transaction(() => {
    for (let v = version; v < SQLITE_SCHEMA_VERSION; v++) db.exec(MIGRATIONS[v]!)
    db.pragma(`user_version = ${SQLITE_SCHEMA_VERSION}`)
  }).immediate()
}

function invalid(message: string): StoreError {
  return new StoreError('invalid-argument', message)
}

function checkDocId(docId: unknown): asserts docId is string {
  if (typeof docId !== 'string' || docId.length === 0) throw invalid('docId must be a non-empty string')
}

interface PendingAppend {
  docId: string
  updates: Uint8Array[]
  resolve: (seq: number) => void
  reject: (err: unknown) => void
}

/**
 * Opens (creating if needed) the store in `dir`: the directory is created
 * recursively and the database file is `<dir>/murmur.db`. Throws a
 * `StoreError` (code `newer-schema`) when the file was written by a newer
 * murmur, and SQLite's own error when the file is not a database at all:
 * that needs an operator, not a silent fresh start.
 */
export function openSqliteStore(dir: string, opts: SqliteStoreOptions = {}): SqliteStore {
  mkdirSync(dir, { recursive: true })
  const file = join(dir, SQLITE_FILE_NAME)
  const log = opts.log ?? pino({ name: 'store', level: 'warn' })
  const db = openDatabase(file, opts.busyTimeoutMs ?? 5000, opts.synchronous ?? 'FULL', log)
  const groupCommit = opts.groupCommit ?? true

  const lastSeqStmt = db.prepare<[string], number>('SELECT max(seq) FROM updates WHERE doc_id = ?').pluck()
  const firstSeqStmt = db.prepare<[string], number>('SELECT min(seq) FROM updates WHERE doc_id = ?').pluck()
  const insertStmt = db.prepare<[string, number, number, Uint8Array]>('INSERT INTO updates (doc_id, seq, crc, data) VALUES (?, ?, ?, ?)')
  const loadStmt = db.prepare<[string], [number, unknown, unknown]>('SELECT seq, crc, data FROM updates WHERE doc_id = ? ORDER BY seq').raw()
  const deleteUpToStmt = db.prepare<[string, number]>('DELETE FROM updates WHERE doc_id = ? AND seq <= ?')
  const touchStmt = db.prepare<[number]>(
    "INSERT INTO meta (key, value) VALUES ('write_check', ?) ON CONFLICT (key) DO UPDATE SET value = excluded.value",
  )

  const lastSeqOf = (docId: string): number => lastSeqStmt.get(docId) ?? 0

  /** Inserts one batch; runs inside a transaction or savepoint. */
  const appendRows = db.transaction((docId: string, updates: Uint8Array[]): number => {
    let seq = lastSeqOf(docId)
    for (const u of updates) insertStmt.run(docId, ++seq, crc32(u), u)
    return seq
  })

  /** Runs a group of appends in one transaction; returns each one's seq or error. */
  const appendGroup = db.transaction((group: PendingAppend[]): (number | Error)[] => {
    return group.map((p) => {
      try {
        return appendRows(p.docId, p.updates)
      } catch (err) {
        // Some errors (disk full, I/O) make SQLite roll back the whole transaction:
        // then nothing of the group is written and every member must fail.
        if (!db.inTransaction) throw err
        return err instanceof Error ? err : new Error(String(err))
      }
    })
  })

  /** Replaces rows ≤ `upToSeq` by `snapshot` at `upToSeq`, in one transaction. */
  const compactRows = db.transaction((docId: string, upToSeq: number, snapshot: Uint8Array): void => {
    const first = firstSeqStmt.get(docId)
    const last = lastSeqOf(docId)
    if (first == null || upToSeq < first || upToSeq > last) {
      throw invalid(`compact ${docId}: upToSeq ${upToSeq} outside the stored range ${first ?? 0}..${last}`)
    }
    const removed = deleteUpToStmt.run(docId, upToSeq).changes
    insertStmt.run(docId, upToSeq, crc32(snapshot), snapshot)
    log.debug({ docId, upToSeq, removed, bytes: snapshot.byteLength }, 'store: compacted')
  })

  let queue: PendingAppend[] = []
  let scheduled: ReturnType<typeof setImmediate> | undefined
  let closed = false
  const writer = groupCommit && (opts.writer ?? 'worker') === 'worker' ? startSqliteWriter(file, { busyTimeoutMs: opts.busyTimeoutMs ?? 5000, synchronous: opts.synchronous ?? 'FULL' }) : null
  /** The group the writer thread is committing, if any. */
  let inFlight: Promise<void> | null = null
  /** While a backup copies the file, commits run on the main connection (writes from another connection would restart the copy). */
  let backingUp = false

  /** Resolves or rejects each append of `group` with its result. */
  function settle(group: PendingAppend[], results: readonly (number | Error | Exclude<WriterResult, number>)[]): void {
    group.forEach((p, i) => {
      const r = results[i]!
      if (typeof r === 'number') p.resolve(r)
      else p.reject(r instanceof Error ? r : writerError(r))
    })
  }

  /** Resolves once every append issued so far is committed (or failed). */
  async function drained(): Promise<void> {
    while (inFlight || queue.length > 0) {
      if (!inFlight) flush()
      if (inFlight) await inFlight
    }
  }

  /**
   * Commits the queued appends: hands them to the writer thread (unless it
   * is busy: they go when its commit returns), or commits them here.
   */
  function flush(): void {
    if (scheduled) clearImmediate(scheduled)
    scheduled = undefined
    if (queue.length === 0) return
    if (writer && !backingUp) {
      if (inFlight) return
      const group = queue
      queue = []
      inFlight = writer
        .commit(group.map((p) => ({ docId: p.docId, updates: p.updates })))
        .then(
          ({ results, ms }) => {
            opts.onCommit?.(ms, group.length)
            settle(group, results)
          },
          (err) => {
            for (const p of group) p.reject(err)
          },
        )
        .finally(() => {
          inFlight = null
          if (queue.length) flush()
        })
      return
    }
    const group = queue
    queue = []
    let results: (number | Error)[]
    const started = performance.now()
    try {
      results = group.length === 1 ? [appendRows.immediate(group[0]!.docId, group[0]!.updates)] : appendGroup.immediate(group)
    } catch (err) {
      for (const p of group) p.reject(err)
      return
    } finally {
      opts.onCommit?.(performance.now() - started, group.length)
    }
    settle(group, results)
  }

  function ensureOpen(): void {
    if (closed) throw new StoreError('closed', `store ${file} is closed`)
  }

  return {
    file,

    async load(docId: string): Promise<StoredDoc> {
      ensureOpen()
      checkDocId(docId)
      await drained()
      const rows = loadStmt.all(docId)
      const updates: Uint8Array[] = []
      let bytes = 0
      for (const [seq, crc, data] of rows) {
        if (!(data instanceof Uint8Array) || crc32(data) !== crc) {
          log.warn({ docId, seq, file }, 'store: skipping a corrupt row (checksum mismatch)')
          continue
        }
        updates.push(new Uint8Array(data.buffer, data.byteOffset, data.byteLength))
        bytes += data.byteLength
      }
      return { updates, lastSeq: rows.length ? rows[rows.length - 1]![0] : 0, bytes }
    },

    append(docId: string, updates: Uint8Array[]): Promise<number> {
      try {
        ensureOpen()
        checkDocId(docId)
        if (!Array.isArray(updates)) throw invalid('updates must be an array')
        for (const u of updates) {
          if (!(u instanceof Uint8Array)) throw invalid('every update must be a Uint8Array')
          if (u.byteLength === 0) throw invalid('an empty update is not a valid Yjs update')
        }
        if (updates.length === 0) return drained().then(() => lastSeqOf(docId))
        if (!groupCommit) return Promise.resolve(appendRows.immediate(docId, updates))
      } catch (err) {
        return Promise.reject(err)
      }
      return new Promise<number>((resolve, reject) => {
        queue.push({ docId, updates: updates.slice(), resolve, reject })
        scheduled ??= setImmediate(flush)
      })
    },

    async compact(docId: string, upToSeq: number, snapshot: Uint8Array): Promise<void> {
      ensureOpen()
      checkDocId(docId)
      if (!Number.isSafeInteger(upToSeq) || upToSeq < 1) throw invalid(`upToSeq must be a positive integer, got ${upToSeq}`)
      if (!(snapshot instanceof Uint8Array) || snapshot.byteLength === 0) throw invalid('snapshot must be a non-empty Uint8Array')
      await drained()
      compactRows.immediate(docId, upToSeq, snapshot)
    },

    async usedBytes(): Promise<number> {
      ensureOpen()
      await drained()
      return this.stats().usedBytes
    },

    async checkWritable(): Promise<void> {
      ensureOpen()
      await drained()
      touchStmt.run(Date.now())
    },

    async backup(destFile: string): Promise<void> {
      ensureOpen()
      backingUp = true
      try {
        await drained()
        await db.backup(destFile)
      } finally {
        backingUp = false
        flush()
      }
    },

    stats(): SqliteStats {
      ensureOpen()
      const pageSize = db.pragma('page_size', { simple: true }) as number
      const pages = db.pragma('page_count', { simple: true }) as number
      const free = db.pragma('freelist_count', { simple: true }) as number
      return {
        journalMode: db.pragma('journal_mode', { simple: true }) as string,
        synchronous: (['OFF', 'NORMAL', 'FULL', 'EXTRA'] as const)[db.pragma('synchronous', { simple: true }) as number]!,
        schemaVersion: db.pragma('user_version', { simple: true }) as number,
        usedBytes: (pages - free) * pageSize,
        freeBytes: free * pageSize,
      }
    },

    async close(): Promise<void> {
      if (closed) return
      await drained()
      closed = true
      await writer?.close()
      db.close()
    },
  }
}

/**
 * Copies the live database of the store in `dir` to `destFile` while the
 * server keeps running (SQLite's online backup: the copy is one consistent
 * snapshot, writers are not blocked). For the CLI and the README's backup
 * section; the result is a plain `murmur.db` that `openSqliteStore` opens.
 *
 * The copy is made in a single step: a backup from a second connection starts
 * over whenever another connection writes between steps, so a stepwise copy of
 * a busy server's database may never finish. One step holds a read snapshot,
 * which in WAL mode does not block the server's writes; it blocks only the
 * calling process's event loop (~20 ms per MB measured), which is why the
 * in-server `SqliteStore.backup` steps instead (writes through its own
 * connection do not restart the copy).
 */
export async function backupSqliteStore(dir: string, destFile: string): Promise<void> {
  const db = new Database(join(dir, SQLITE_FILE_NAME), { fileMustExist: true, timeout: 5000 })
  try {
    await db.backup(destFile, { progress: () => 0x7fffffff })
  } finally {
    db.close()
  }
}
