/**
 * The slice of the Web Storage API murmur uses, plus a safe accessor: some
 * browsers throw on `localStorage` access (disabled storage, sandboxed frames),
 * and murmur must still open documents there.
 */

/** A string key/value store: `localStorage`, or an in-memory stand-in. */
export interface KeyValueStorage {
  getItem(key: string): string | null
  setItem(key: string, value: string): void
  removeItem(key: string): void
}

/** An in-memory `KeyValueStorage` (used when localStorage is unavailable, and by tests). */
export function memoryStorage(): KeyValueStorage {
  const map = new Map<string, string>()
  return {
    getItem: (k) => map.get(k) ?? null,
    setItem: (k, v) => void map.set(k, String(v)),
    removeItem: (k) => void map.delete(k),
  }
}

let fallback: KeyValueStorage | null = null

/** `globalThis.localStorage` when it works, else one shared in-memory store. */
export function safeLocalStorage(): KeyValueStorage {
  try {
    const ls = globalThis.localStorage
    if (ls) {
      const probe = '__murmur_probe__'
      ls.setItem(probe, '1')
      ls.removeItem(probe)
      return ls
    }
  } catch {
    // fall through to memory
  }
  return (fallback ??= memoryStorage())
}
