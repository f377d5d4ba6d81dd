/**
 * Browser wiring for the home page: local copy management (import, forget).
 * With `server-config.ts`, the only modules that touch `location`, `fetch`
 * and `indexedDB` globals directly.
 */
import * as Y from 'yjs'
import { IndexeddbPersistence, clearDocument } from 'y-indexeddb'
import { removeRecent, touchRecent } from './recent.ts'
import { safeLocalStorage } from './storage.ts'
import { forgetKey } from '../private/key-store.ts'

/** Largest file `importTextFile` accepts (bytes): far above any hand-written text, small enough to stay responsive. */
export const MAX_IMPORT_BYTES = 10 * 1024 * 1024

/**
 * Writes `text` into the IndexedDB copy of a new document `docId` (so that
 * opening it shows the text at once, offline too) and records it as recent.
 */
export async function createDocumentWithText(docId: string, text: string): Promise<void> {
  const doc = new Y.Doc()
  const idb = new IndexeddbPersistence(docId, doc)
  try {
    await idb.whenSynced
    doc.getText('text').insert(0, text)
  } finally {
    await idb.destroy() // close() lets the pending write finish first
    doc.destroy()
  }
  touchRecent(safeLocalStorage(), docId)
}

/** Removes `docId` from the recent list and deletes its IndexedDB copy on this device. */
export async function forgetDocument(docId: string): Promise<void> {
  removeRecent(safeLocalStorage(), docId)
  forgetKey(safeLocalStorage(), docId)
  await clearDocument(docId)
}

/** Reads a user-chosen file as text, refusing huge or binary-looking files. */
export async function readTextFile(file: File): Promise<string> {
  if (file.size > MAX_IMPORT_BYTES) throw new Error(`${file.name} is larger than ${MAX_IMPORT_BYTES / 1024 / 1024} MB`)
  const text = await file.text()
  if (text.includes('\u0000')) throw new Error(`${file.name} does not look like a text file`)
  return text.replace(/\r\n?/g, '\n')
}
