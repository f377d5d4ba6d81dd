/**
 * What the crash driver does to the data directory between the `kill -9` and
 * the restart, to stand for the other things a crash leaves behind:
 *
 * - `none`: the files exactly as the kill left them.
 * - `tear`: a torn write at the end of the WAL. If the killed process left
 *   frames after its last commit (a transaction being written), the file is
 *   cut at a random offset inside them; otherwise part of a frame is written
 *   right after the last commit frame: a header with this log's salts and a
 *   commit marker, and part of a page. Only bytes after the last commit frame are touched: everything up
 *   to it was fsynced before any ack, so tearing it would be media
 *   corruption, not a torn write.
 * - `garbage`: random bytes (less than one frame) appended to the WAL.
 * - `shm-missing`, `shm-empty`, `shm-stale`: the wal-index deleted,
 *   truncated to 0 bytes, or replaced by the one saved after an earlier kill
 *   (random bytes when there is none yet).
 */
import { appendFileSync, closeSync, existsSync, openSync, readFileSync, rmSync, statSync, truncateSync, writeFileSync, writeSync } from 'node:fs'
import { inspectWal, WAL_FRAME_HEADER_BYTES, type WalReport } from '../../server/store/wal-inspect.ts'

/** The kinds of tampering; see the module comment. */
export type Tamper = 'none' | 'tear' | 'garbage' | 'shm-missing' | 'shm-empty' | 'shm-stale'

/** Every kind, in table order. */
export const TAMPERS: readonly Tamper[] = ['none', 'tear', 'garbage', 'shm-missing', 'shm-empty', 'shm-stale']

/** What `applyTamper` did. */
export interface TamperResult {
  kind: Tamper
  /** How the tear was made (`cut` inside uncommitted frames, `partial-frame` written after the last commit), when `kind` is `tear`. */
  how?: 'cut' | 'partial-frame'
  /** A `tear` or `garbage` was actually made (not when the kill left no valid WAL header). */
  torn: boolean
  /** The WAL as the kill left it, before tampering. */
  before: WalReport
  /** Bytes after the last commit frame once tampered: what recovery must discard, plus stale frames of an earlier cycle. */
  tailBytes: number
}

/**
 * Applies `kind` to the database `dbFile` (`<dbFile>-wal`, `<dbFile>-shm`).
 * `staleShm` is a wal-index saved after an earlier kill; `rand` is the
 * driver's seeded source.
 */
export function applyTamper(dbFile: string, kind: Tamper, rand: () => number, staleShm: Buffer | null): TamperResult {
  const wal = `${dbFile}-wal`
  const shm = `${dbFile}-shm`
  const before = inspectWal(wal)
  const frameBytes = WAL_FRAME_HEADER_BYTES + before.pageSize
  let how: TamperResult['how']
  let torn = false
  const randomBytes = (n: number) => Buffer.from(Array.from({ length: n }, () => Math.floor(rand() * 256)))
  switch (kind) {
    case 'none':
      break
    case 'tear': {
      if (!before.headerValid) break // nothing written since the log was reset: nothing to tear
      if (before.uncommittedFrames > 0) {
        how = 'cut'
        torn = true
        truncateSync(wal, before.committedEnd + 1 + Math.floor(rand() * (before.uncommittedFrames * frameBytes - 1)))
      } else {
        // The next frame would have been written right after the last commit (over stale
        // frames of an earlier cycle, if any): write part of one there.
        how = 'partial-frame'
        torn = true
        const head = readFileSync(wal).subarray(0, 32)
        const frame = randomBytes(WAL_FRAME_HEADER_BYTES + 1 + Math.floor(rand() * (before.pageSize - 1)))
        frame.writeUInt32BE(1 + Math.floor(rand() * 8), 0) // a page number
        frame.writeUInt32BE(1 + Math.floor(rand() * 64), 4) // "commit": database size after it
        head.copy(frame, 8, 16, 24) // this log's salts: the frame belongs to it, only its checksum fails
        const fd = openSync(wal, 'r+')
        try {
          writeSync(fd, frame, 0, frame.length, before.committedEnd)
        } finally {
          closeSync(fd)
        }
      }
      break
    }
    case 'garbage':
      if (before.headerValid) {
        torn = true
        appendFileSync(wal, randomBytes(1 + Math.floor(rand() * (frameBytes - 1))))
      }
      break
    case 'shm-missing':
      rmSync(shm, { force: true })
      break
    case 'shm-empty':
      writeFileSync(shm, '')
      break
    case 'shm-stale':
      writeFileSync(shm, staleShm ?? randomBytes(32768))
      break
  }
  const size = existsSync(wal) ? statSync(wal).size : 0
  return { kind, how, torn, before, tailBytes: before.headerValid ? size - before.committedEnd : size }
}

/** Saves the current wal-index (for a later `shm-stale` round), or null when there is none. */
export function saveShm(dbFile: string): Buffer | null {
  const shm = `${dbFile}-shm`
  return existsSync(shm) ? readFileSync(shm) : null
}
