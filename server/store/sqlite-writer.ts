/**
 * The SQLite store's writer thread: group commits (the transaction and its
 * fsync) run on a `worker_threads` worker with its own connection to the
 * file, so the event loop keeps reading sockets and relaying while a commit
 * waits for the disk. The main connection still reads, migrates, compacts
 * and backs up; `sqlite.ts` never lets both write at once (it waits for the
 * writer to be idle first).
 *
 * The worker is plain JavaScript evaluated from a string, so it runs the same
 * under `node --import tsx`, vitest and a bundler (no TypeScript loader needed
 * in the thread).
 */
import { Worker } from 'node:worker_threads'
import { createRequire } from 'node:module'

/** One append of a group: a document and its updates. */
export interface WriterAppend {
  docId: string
  updates: Uint8Array[]
}

/** Per append: its last seq, or the error SQLite raised for it. */
export type WriterResult = number | { message: string; code?: string }

/** A running writer thread. */
export interface SqliteWriter {
  /** Commits `group` in one transaction (one savepoint per append, as on the main thread); resolves with each result and the commit time (ms). Rejects when the whole transaction failed. */
  commit(group: WriterAppend[]): Promise<{ results: WriterResult[]; ms: number }>
  /** Closes the connection and ends the thread. */
  close(): Promise<void>
}

const SOURCE = `
const { parentPort, workerData } = require('node:worker_threads')
const zlib = require('node:zlib')
const Database = require(workerData.betterSqlite3)
const db = new Database(workerData.file, { timeout: workerData.busyTimeoutMs, fileMustExist: true })
db.pragma('synchronous = ' + workerData.synchronous)
const lastSeq = db.prepare('SELECT max(seq) FROM updates WHERE doc_id = ?').pluck()
const insert = db.prepare('INSERT INTO updates (doc_id, seq, crc, data) VALUES (?, ?, ?, ?)')
const appendRows = db.transaction((docId, updates) => {
  let seq = lastSeq.get(docId) ?? 0
  for (const u of updates) insert.run(docId, ++seq, zlib.crc32(u), u)
  return seq
})
const appendGroup = db.transaction((group) => group.map((p) => {
  try {
    return appendRows(p.docId, p.updates)
  } catch (err) {
    if (!db.inTransaction) throw err
    return { message: String(err && err.message), code: err && err.code }
  }
}))
parentPort.on('message', (m) => {
  if (m.close) {
    db.close()
    parentPort.postMessage({ closed: true })
    return
  }
  const started = performance.now()
  try {
    const results = m.group.length === 1 ? [appendRows.immediate(m.group[0].docId, m.group[0].updates)] : appendGroup.immediate(m.group)
    parentPort.postMessage({ id: m.id, results, ms: performance.now() - started })
  } catch (err) {
    parentPort.postMessage({ id: m.id, error: { message: String(err && err.message), code: err && err.code }, ms: performance.now() - started })
  }
})
`

/** An Error carrying SQLite's `code` (e.g. `SQLITE_FULL`), as better-sqlite3 throws them. */
export function writerError(e: { message: string; code?: string }): Error {
  return Object.assign(new Error(e.message), e.code ? { code: e.code } : {})
}

/** Starts the writer for the database `file` (already created and migrated by the main connection). */
export function startSqliteWriter(file: string, opts: { busyTimeoutMs: number; synchronous: string }): SqliteWriter {
  const betterSqlite3 = createRequire(import.meta.url).resolve('better-sqlite3')
  const worker = new Worker(SOURCE, { eval: true, workerData: { file, betterSqlite3, ...opts } })
  // A commit in flight keeps the process alive; an idle writer does not.
  worker.unref()
  let nextId = 1
  const waiting = new Map<number, { resolve: (r: { results: WriterResult[]; ms: number }) => void; reject: (e: Error) => void }>()
  let closed: (() => void) | null = null
  let failure: Error | null = null
  worker.on('message', (m: { id?: number; results?: WriterResult[]; error?: { message: string; code?: string }; ms?: number; closed?: boolean }) => {
    if (m.closed) return closed?.()
    const w = waiting.get(m.id!)
    if (!w) return
    waiting.delete(m.id!)
    if (waiting.size === 0) worker.unref()
    if (m.error) w.reject(writerError(m.error))
    else w.resolve({ results: m.results!, ms: m.ms! })
  })
  const fail = (err: Error) => {
    failure = err
    for (const w of waiting.values()) w.reject(err)
    waiting.clear()
    closed?.()
  }
  worker.on('error', fail)
  worker.on('exit', (code) => fail(new Error(`SQLite writer thread exited (${code})`)))
  return {
    commit(group) {
      if (failure) return Promise.reject(failure)
      const id = nextId++
      worker.ref()
      return new Promise((resolve, reject) => {
        waiting.set(id, { resolve, reject })
        worker.postMessage({ id, group })
      })
    },
    async close() {
      if (failure) return
      await new Promise<void>((r) => {
        closed = r
        worker.postMessage({ close: true })
      })
      await worker.terminate()
    },
  }
}
