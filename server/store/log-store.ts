/**
 * Durable storage of private documents: per document, an append-only log of
 * opaque (encrypted) entries that the server can neither read nor merge,
 * compacted by clients, plus the hash of the document's write capability.
 *
 * Kept apart from `Store` on purpose: nothing here ever goes through the
 * Yjs merge path. Every backend passes `test/store/log-contract.ts`: SQLite
 * (`sqlite-log.ts`, beside the plain store's file) and PostgreSQL
 * (`postgres-log.ts`, beside the plain store's tables). Calls for one
 * document take effect in the order they were issued.
 */
export interface LogStore {
  /**
   * Entries of `docId` after `afterSeq`, in order. When entries past
   * `afterSeq` were replaced by a snapshot, the snapshot comes first (it
   * stands for everything up to its seq). `lastSeq` is the last seq ever
   * given (0: no such log); `sinceSnapshot` counts entries after the snapshot.
   * A row that fails its checksum is skipped with a warning.
   */
  read(docId: string, afterSeq: number): Promise<LogRead>
  /**
   * Appends `entries` in one transaction and resolves with the seq of the
   * last one only once committed to disk. The first write of a document
   * records `writeHash`; every later write must present the same hash or is
   * rejected whole (`LogStoreError` code `forbidden`) with nothing stored.
   * Seqs start at 1, strictly increase and are never reused.
   */
  append(docId: string, writeHash: Uint8Array, entries: Uint8Array[]): Promise<number>
  /**
   * Replaces every entry ≤ `upToSeq` by `snapshot` (stored at `upToSeq`),
   * atomically; entries after `upToSeq` stay. Resolves `false` and changes
   * nothing when a snapshot at or after `upToSeq` is already stored (a
   * concurrent compaction won). Rejects with `forbidden` for a wrong
   * `writeHash` and `invalid-argument` when `upToSeq` is past the last seq.
   */
  replace(docId: string, writeHash: Uint8Array, upToSeq: number, snapshot: Uint8Array): Promise<boolean>
  /** Whether `docId` has a log (was ever written as a private document). */
  exists(docId: string): Promise<boolean>
  /** Bytes of the entries (snapshot included) stored for `docId`: what `--max-document-bytes` bounds. */
  bytes(docId: string): Promise<number>
  /** Flushes pending appends and releases the backend; other methods then reject with `closed`. Idempotent. */
  close(): Promise<void>
}

/** What `LogStore.read` returns. */
export interface LogRead {
  entries: { seq: number; snapshot: boolean; data: Uint8Array }[]
  lastSeq: number
  sinceSnapshot: number
}

/** Why a `LogStoreError` was thrown. */
export type LogStoreErrorCode = 'closed' | 'invalid-argument' | 'forbidden'

/** A named error of every `LogStore` backend. */
export class LogStoreError extends Error {
  override name = 'LogStoreError'
  /** Machine-readable reason. */
  readonly code: LogStoreErrorCode
  constructor(code: LogStoreErrorCode, message: string) {
    super(message)
    this.code = code
  }
}

const invalid = (m: string) => new LogStoreError('invalid-argument', m)

/** Throws `invalid-argument` unless `docId` is a non-empty string and `hash` (when given) non-empty bytes: every backend's argument check. */
export function checkLogArgs(docId: unknown, hash?: unknown): void {
  if (typeof docId !== 'string' || docId.length === 0) throw invalid('docId must be a non-empty string')
  if (hash !== undefined && (!(hash instanceof Uint8Array) || hash.byteLength === 0)) throw invalid('writeHash must be non-empty bytes')
}

/** `checkLogArgs` plus: `entries` is a non-empty array of non-empty byte strings (an append's arguments). */
export function checkAppendArgs(docId: unknown, hash: unknown, entries: unknown): void {
  checkLogArgs(docId, hash)
  if (!Array.isArray(entries) || entries.length === 0) throw invalid('entries must be a non-empty array')
  for (const e of entries) if (!(e instanceof Uint8Array) || e.byteLength === 0) throw invalid('every entry must be non-empty bytes')
}

/** `checkLogArgs` plus: `upToSeq` is a positive integer and `snapshot` non-empty bytes (a replace's arguments). */
export function checkReplaceArgs(docId: unknown, hash: unknown, upToSeq: unknown, snapshot: unknown): void {
  checkLogArgs(docId, hash)
  if (!Number.isSafeInteger(upToSeq) || (upToSeq as number) < 1) throw invalid(`upToSeq must be a positive integer, got ${upToSeq}`)
  if (!(snapshot instanceof Uint8Array) || snapshot.byteLength === 0) throw invalid('snapshot must be non-empty bytes')
}
