/**
 * Durable storage of Yjs documents as an append-only log of updates per
 * document, compacted from time to time into a single snapshot row.
 *
 * Every backend (SQLite by default) passes the shared contract suite in
 * `test/store/contract.ts`. All methods may be called concurrently for
 * different documents; calls for one document are issued in order by the room,
 * and take effect in the order they were issued even when the caller does not
 * await each one (a `load` sees every `append` issued before it).
 */
export interface Store {
  /**
   * Loads every stored update of `docId` in append order, plus the sequence
   * number of the last one (0 when the document is new: an unknown document
   * loads as `{ updates: [], lastSeq: 0, bytes: 0 }`). A row that cannot be
   * read back intact is skipped with a warning, never fatal; `lastSeq` still
   * counts it, so the next append never reuses its number and compacting up to
   * `lastSeq` removes it.
   */
  load(docId: string): Promise<StoredDoc>
  /**
   * Appends `updates` for `docId` in one transaction and resolves only once
   * they are committed to disk. Returns the sequence number of the last one.
   *
   * Sequence numbers are per document, start at 1, strictly increase and are
   * never reused, even after compaction. An empty update (zero bytes) is never
   * a valid Yjs update, so a batch containing one is rejected whole with a
   * `StoreError` (code `invalid-argument`) and nothing is written. An empty
   * batch writes nothing and resolves with the current last sequence number.
   * The backend may read the `updates` buffers until the promise settles, so
   * the caller must not modify them before then.
   */
  append(docId: string, updates: Uint8Array[]): Promise<number>
  /**
   * Replaces every row of `docId` with sequence number ≤ `upToSeq` by the
   * single `snapshot` update (which must contain all of them). Rows appended
   * after `upToSeq` are kept. Atomic: a crash leaves either the old rows or
   * the snapshot. The snapshot takes sequence number `upToSeq`, so numbering
   * continues after the last row. `upToSeq` must lie between the document's
   * first and last stored sequence numbers and `snapshot` must not be empty;
   * otherwise it rejects with a `StoreError` (code `invalid-argument`) and
   * changes nothing.
   */
  compact(docId: string, upToSeq: number, snapshot: Uint8Array): Promise<void>
  /** Bytes the whole store occupies (for the `--max-storage-bytes` quota); approximate but never below what is stored. */
  usedBytes(): Promise<number>
  /** Resolves when a real write succeeds (for `/healthz`); rejects otherwise, e.g. after `close`. */
  checkWritable(): Promise<void>
  /**
   * Flushes (appends already issued still commit and resolve) and releases
   * the backend. Idempotent. Every other method rejects
   * with a `StoreError` (code `closed`) afterwards.
   */
  close(): Promise<void>
}

/** Why a `StoreError` was thrown. */
export type StoreErrorCode =
  /** The store was closed. */
  | 'closed'
  /** An argument breaks the contract (empty update, `upToSeq` out of range, …). */
  | 'invalid-argument'
  /** The storage was written by a newer version of murmur. */
  | 'newer-schema'

/** A named error thrown by every `Store` backend for contract violations. */
export class StoreError extends Error {
  override name = 'StoreError'
  /** Machine-readable reason. */
  readonly code: StoreErrorCode
  constructor(code: StoreErrorCode, message: string) {
    super(message)
    this.code = code
  }
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
