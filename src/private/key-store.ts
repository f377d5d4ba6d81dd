/**
 * Link keys of private documents this device has opened, kept in
 * localStorage beside the recent list (the device is trusted, as is its
 * IndexedDB copy of the text), so a recent document or an offline reload of
 * `/d/<id>` without the fragment still opens it.
 */
import type { KeyValueStorage } from '../session/storage.ts'
import { isLinkKey } from './key.ts'

/** localStorage key of the docId → link key map. */
export const KEYS_STORAGE_KEY = 'murmur:private-keys'

function readAll(storage: KeyValueStorage): Record<string, string> {
  try {
    const v = JSON.parse(storage.getItem(KEYS_STORAGE_KEY) ?? '{}') as unknown
    return v && typeof v === 'object' && !Array.isArray(v) ? (v as Record<string, string>) : {}
  } catch {
    return {}
  }
}

/** Remembers the link key of `docId` on this device. */
export function rememberKey(storage: KeyValueStorage, docId: string, key: string): void {
  const all = readAll(storage)
  if (all[docId] === key) return
  all[docId] = key
  try {
    storage.setItem(KEYS_STORAGE_KEY, JSON.stringify(all))
  } catch {
    // storage full or denied: the link itself still carries the key
  }
}

/** The remembered link key of `docId`, or null. */
export function rememberedKey(storage: KeyValueStorage, docId: string): string | null {
  const k = readAll(storage)[docId]
  return isLinkKey(k) ? k : null
}

/** Forgets the link key of `docId` (when its local copy is removed). */
export function forgetKey(storage: KeyValueStorage, docId: string): void {
  const all = readAll(storage)
  if (!(docId in all)) return
  delete all[docId]
  try {
    storage.setItem(KEYS_STORAGE_KEY, JSON.stringify(all))
  } catch {
    // nothing to do
  }
}
