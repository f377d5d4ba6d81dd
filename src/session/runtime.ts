/**
 * Browser wiring: where the server is, the shared config promise, and the
 * local copy management used by the home page. Only this module touches
 * `location`, `fetch` and `indexedDB` globals directly.
 */
import * as Y from 'yjs'
import { IndexeddbPersistence, clearDocument } from 'y-indexeddb'
import { loadConfig, serverBase, type LoadedConfig } from './config.ts'
import { removeRecent, touchRecent } from './recent.ts'
import { safeLocalStorage } from './storage.ts'

/** Largest file `importTextFile` accepts (bytes): far above any hand-written text, small enough to stay responsive. */
export const MAX_IMPORT_BYTES = 10 * 1024 * 1024

/** The server base URL for this build/page. */
export function currentServerBase(): string {
  return serverBase(import.meta.env.VITE_MURMUR_SERVER, location.origin)
}

const configPromises = new Map<string, Promise<LoadedConfig>>()

/**
 * The server configuration for an access token (or none), fetched once per
 * page and token. A failed fetch (served from cache or nothing) is retried the
 * next time a document is opened.
 */
export function getConfig(token: string | null = null): Promise<LoadedConfig> {
  const key = token ?? ''
  let p = configPromises.get(key)
  if (!p) {
    const loading = loadConfig({ base: currentServerBase(), fetch: (...a) => fetch(...a), storage: safeLocalStorage(), token })
    configPromises.set(key, (p = loading))
    void loading.then((c) => {
      if (c.source !== 'server' && configPromises.get(key) === loading) configPromises.delete(key)
    })
  }
  return p
}

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
  await clearDocument(docId)
}

/** Reads a user-chosen file as text, refusing huge or binary-looking files. */
export async function readTextFile(file: File): Promise<string> {
  if (file.size > MAX_IMPORT_BYTES) throw new Error(`${file.name} is larger than ${MAX_IMPORT_BYTES / 1024 / 1024} MB`)
  const text = await file.text()
  if (text.includes('\u0000')) throw new Error(`${file.name} does not look like a text file`)
  return text.replace(/\r\n?/g, '\n')
}
