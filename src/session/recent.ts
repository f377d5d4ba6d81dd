/**
 * The list of recently opened documents on this device, kept in localStorage
 * as JSON. Pure list functions plus thin storage wrappers; newest first.
 */
import { isValidDocId } from '../protocol/ids.ts'
import type { KeyValueStorage } from './storage.ts'

/** One entry of the recent-documents list. */
export interface RecentDoc {
  /** Document id. */
  id: string
  /** First line of the text (may be empty for a blank document). */
  title: string
  /** When it was last opened on this device (ms since epoch). */
  openedAt: number
}

/** localStorage key of the list. */
export const RECENT_KEY = 'murmur:recent'

/** Most entries kept: older ones fall off so the JSON stays small. */
export const RECENT_LIMIT = 200

/** Longest stored title: the list shows one line, a long first line is cut. */
export const TITLE_MAX = 120

function sanitize(list: unknown): RecentDoc[] {
  if (!Array.isArray(list)) return []
  const seen = new Set<string>()
  const out: RecentDoc[] = []
  for (const e of list) {
    if (typeof e !== 'object' || e === null) continue
    const { id, title, openedAt } = e as Record<string, unknown>
    if (!isValidDocId(id) || seen.has(id) || typeof openedAt !== 'number' || !Number.isFinite(openedAt)) continue
    seen.add(id)
    out.push({ id, title: typeof title === 'string' ? title.slice(0, TITLE_MAX) : '', openedAt })
  }
  return sortRecent(out)
}

/** Returns `list` ordered newest first (stable for equal times). */
export function sortRecent(list: RecentDoc[]): RecentDoc[] {
  return [...list].sort((a, b) => b.openedAt - a.openedAt)
}

/** Marks `id` as opened at `now` (adding it when absent), newest first, capped at `RECENT_LIMIT`. */
export function touched(list: RecentDoc[], id: string, now: number): RecentDoc[] {
  const prev = list.find((e) => e.id === id)
  const rest = list.filter((e) => e.id !== id)
  return sortRecent([{ id, title: prev?.title ?? '', openedAt: now }, ...rest]).slice(0, RECENT_LIMIT)
}

/** Sets the title of `id` (no-op when absent); order unchanged. */
export function retitled(list: RecentDoc[], id: string, title: string): RecentDoc[] {
  const t = title.slice(0, TITLE_MAX)
  return list.map((e) => (e.id === id ? { ...e, title: t } : e))
}

/** `list` without `id`. */
export function without(list: RecentDoc[], id: string): RecentDoc[] {
  return list.filter((e) => e.id !== id)
}

/** Reads the list from `storage`; a missing or corrupt value reads as empty. */
export function readRecent(storage: KeyValueStorage): RecentDoc[] {
  try {
    return sanitize(JSON.parse(storage.getItem(RECENT_KEY) ?? '[]'))
  } catch {
    return []
  }
}

function write(storage: KeyValueStorage, list: RecentDoc[]): RecentDoc[] {
  try {
    storage.setItem(RECENT_KEY, JSON.stringify(list))
  } catch {
    // quota or disabled storage: the list is a convenience, never fatal
  }
  return list
}

/** Records that `id` was opened now; returns the new list. */
export function touchRecent(storage: KeyValueStorage, id: string, now = Date.now()): RecentDoc[] {
  return write(storage, touched(readRecent(storage), id, now))
}

/** Stores a new title for `id` when it differs; returns the list. */
export function setRecentTitle(storage: KeyValueStorage, id: string, title: string): RecentDoc[] {
  const list = readRecent(storage)
  const cur = list.find((e) => e.id === id)
  if (!cur || cur.title === title.slice(0, TITLE_MAX)) return list
  return write(storage, retitled(list, id, title))
}

/** Removes `id` from the list; returns the new list. */
export function removeRecent(storage: KeyValueStorage, id: string): RecentDoc[] {
  return write(storage, without(readRecent(storage), id))
}
