/**
 * The version list of one document: a `Y.Array` of plain version records in
 * a companion Y.Doc (id `<docId>.history`, see `protocol/ids.ts`). Being a
 * Yjs document it is kept in IndexedDB, backed up through `/sync` and merged
 * offline like the text itself; deleted versions are garbage-collected.
 */
import * as Y from 'yjs'
import { DEFAULT_RETENTION, prunable, type RetentionPolicy } from './retention.ts'
import { newestFirst, readVersion, type Version } from './versions.ts'

/** A document's saved versions. */
export class HistoryLog {
  /** The companion document. */
  readonly doc: Y.Doc
  /** Its list of version records (append-only but for pruning). */
  readonly array: Y.Array<unknown>
  #cache: Version[] | null = null

  constructor(doc: Y.Doc = new Y.Doc()) {
    this.doc = doc
    this.array = doc.getArray('versions')
    this.array.observe(() => (this.#cache = null))
  }

  /** Every valid version, newest first. */
  list(): Version[] {
    return (this.#cache ??= readVersions(this.array))
  }

  /** The newest version, if any. */
  newest(): Version | undefined {
    return this.list()[0]
  }

  /** Appends a version. */
  add(version: Version): void {
    this.array.push([{ ...version }])
    this.#cache = null
  }

  /** Deletes the versions with these ids, and any malformed record (in one transaction). */
  remove(ids: Iterable<string>): void {
    removeVersions(this.array, ids)
    this.#cache = null
  }

  /** Applies the retention policy at time `now`; returns how many versions were dropped. */
  prune(now: number, policy: RetentionPolicy = DEFAULT_RETENTION): number {
    const dropped = pruneVersions(this.array, now, policy, this.list())
    this.#cache = null
    return dropped
  }

  /** Calls `fn` after the list changes (locally or from a peer/server). Returns the unsubscribe function. */
  onChange(fn: () => void): () => void {
    const f = () => fn()
    this.array.observe(f)
    return () => this.array.unobserve(f)
  }
}

/** The valid versions in `array` (duplicates of an id once), newest first. */
export function readVersions(array: Y.Array<unknown>): Version[] {
  const out: Version[] = []
  const seen = new Set<string>()
  for (const raw of array.toArray()) {
    const v = readVersion(raw)
    if (v && !seen.has(v.id)) {
      seen.add(v.id)
      out.push(v)
    }
  }
  return out.sort(newestFirst)
}

/** Deletes the records of `array` with these ids, and any malformed record, in one transaction. */
export function removeVersions(array: Y.Array<unknown>, ids: Iterable<string>): void {
  const drop = new Set(ids)
  const run = () => {
    const items = array.toArray()
    for (let i = items.length - 1; i >= 0; i--) {
      const id = (items[i] as { id?: unknown } | null)?.id
      if (typeof id !== 'string' || drop.has(id) || !readVersion(items[i])) array.delete(i, 1)
    }
  }
  if (array.doc) array.doc.transact(run)
  else run()
}

/**
 * Applies the retention policy to the version records of `array` at time
 * `now` (also what the server does to a history companion it loads).
 * Returns how many versions were dropped.
 */
export function pruneVersions(array: Y.Array<unknown>, now: number, policy: RetentionPolicy = DEFAULT_RETENTION, versions = readVersions(array)): number {
  const ids = prunable(versions, now, policy)
  if (ids.length || array.length !== versions.length) removeVersions(array, ids)
  return ids.length
}
