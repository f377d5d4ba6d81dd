/**
 * Durable storage of Yjs documents as an append-only log of updates per
 * document, compacted from time to time into a single snapshot row.
 *
 * Every backend (SQLite by default) passes the shared contract suite in
 * `test/store/contract.ts`. All methods may be called concurrently for
 * different documents; calls for one document are issued in order by the room.
 */
export interface Store {
  /**
   * Loads every stored update of `docId` in append order, plus the sequence
   * number of the last one (0 when the document is new). A row that cannot be
   * read back intact is skipped with a warning, never fatal.
   */
  load(docId: string): Promise<StoredDoc>
  /**
   * Appends `updates` for `docId` in one transaction and resolves only once
   * they are committed to disk. Returns the sequence number of the last one.
   */
  append(docId: string, updates: Uint8Array[]): Promise<number>
  /**
   * Replaces every row of `docId` with sequence number ≤ `upToSeq` by the
   * single `snapshot` update (which must contain all of them). Rows appended
   * after `upToSeq` are kept. Atomic: a crash leaves either the old rows or
   * the snapshot.
   */
  compact(docId: string, upToSeq: number, snapshot: Uint8Array): Promise<void>
  /** Resolves when a write succeeds (for `/healthz`); rejects otherwise. */
  checkWritable(): Promise<void>
  /** Flushes and releases the backend. */
  close(): Promise<void>
}

/** What `Store.load` returns. */
export interface StoredDoc {
  /** Updates in append order (after compaction, the first is the snapshot). */
  updates: Uint8Array[]
  /** Sequence number of the last stored row; 0 for an empty document. */
  lastSeq: number
  /** Total bytes of the stored updates. */
  bytes: number
}
