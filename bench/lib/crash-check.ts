/**
 * The crash driver's consistency check of the database file itself, read by
 * a second, read-only connection while the restarted server runs (WAL mode
 * lets it; no client writes meanwhile): every row's CRC-32 matches its bytes,
 * every document's rows load into a Y.Doc in one transaction (as
 * `Room.load` does) without leaving pending structs or deletes, and the
 * chunk ids in its text are returned for the acked-updates check.
 */
import Database from 'better-sqlite3'
import * as Y from 'yjs'
import { crc32 } from '../../server/store/sqlite.ts'
import { CHUNK_RE } from './crash-writer.ts'

/** What `checkDatabase` found for one document. */
export interface DocCheck {
  rows: number
  /** Rows whose CRC-32 does not match their bytes. */
  badCrc: number
  /** Rows Yjs refused to apply. */
  unappliable: number
  /** Yjs holds pending structs or deletes after applying every row. */
  pending: boolean
  text: string
  /** Chunk ids found in the text. */
  ids: Set<string>
}

/** Reads every document of the database `dbFile`; see the module comment. */
export function checkDatabase(dbFile: string): Map<string, DocCheck> {
  const db = new Database(dbFile, { readonly: true, fileMustExist: true })
  try {
    const out = new Map<string, DocCheck>()
    const docs = db.prepare('SELECT DISTINCT doc_id FROM updates').pluck().all() as string[]
    const rowsOf = db.prepare<[string], [number, number, Uint8Array]>('SELECT seq, crc, data FROM updates WHERE doc_id = ? ORDER BY seq').raw()
    for (const docId of docs) {
      const doc = new Y.Doc()
      let badCrc = 0
      let unappliable = 0
      const rows = rowsOf.all(docId)
      Y.transact(doc, () => {
        for (const [, crc, data] of rows) {
          if (!(data instanceof Uint8Array) || crc32(data) !== crc) {
            badCrc++
            continue
          }
          try {
            Y.applyUpdate(doc, data)
          } catch {
            unappliable++
          }
        }
      })
      const text = doc.getText('text').toString()
      const ids = new Set<string>()
      for (const m of text.matchAll(CHUNK_RE)) ids.add(m[1]!)
      out.set(docId, { rows: rows.length, badCrc, unappliable, pending: doc.store.pendingStructs !== null || doc.store.pendingDs !== null, text, ids })
      doc.destroy()
    }
    return out
  } finally {
    db.close()
  }
}
