/**
 * Reads an SQLite write-ahead log (`<db>-wal`) the way SQLite's own recovery
 * does, without opening the database, so that start-up can say what an
 * unclean shutdown left behind: how many frames SQLite will replay and what
 * torn or uncommitted tail it will silently ignore.
 *
 * Format (https://www.sqlite.org/fileformat2.html#walformat, checked against
 * `walIndexRecover`/`walDecodeFrame` in SQLite's `wal.c`): a 32-byte header —
 * magic 0x377f0682 (checksums over little-endian words) or 0x377f0683
 * (big-endian words), format version 3007000, page size, checkpoint sequence,
 * salt-1, salt-2, checksum-1, checksum-2 over the first 24 bytes — then frames
 * of a 24-byte header (page number, database size after commit or 0, salt-1,
 * salt-2, checksum-1, checksum-2) and one page. A frame is valid when its salts
 * equal the header's, its page number is not 0, and its checksum equals the
 * running checksum (seeded by the header's) over its first 8 header bytes and
 * its page. Recovery reads valid frames in order, stops at the first invalid
 * one, and keeps everything up to the last valid frame whose "database size
 * after commit" is non-zero (a commit frame). All multi-byte fields are
 * big-endian.
 */
import { closeSync, fstatSync, openSync, readSync } from 'node:fs'

/** Size of the WAL header. */
export const WAL_HEADER_BYTES = 32
/** Size of a frame header (the page follows it). */
export const WAL_FRAME_HEADER_BYTES = 24
const MAGIC_LE = 0x377f0682
const MAGIC_BE = 0x377f0683
const WAL_VERSION = 3007000

/** What `inspectWal` found in a `-wal` file; frame counts are whole frames. */
export interface WalReport {
  /** Size of the file in bytes (0 when it is missing or empty). */
  fileBytes: number
  /** The header has a known magic, a valid page size and a matching checksum; if not, SQLite ignores the whole file. */
  headerValid: boolean
  /** Page size from the header (0 when the header is not valid). */
  pageSize: number
  /** Valid frames up to and including the last commit frame: what recovery replays. */
  committedFrames: number
  /** Commit frames among them (one per committed transaction). */
  committedTransactions: number
  /** File offset just past the last committed frame (32 when nothing committed, 0 when the header is not valid). */
  committedEnd: number
  /** Valid frames after the last commit frame: a transaction that was still being written. */
  uncommittedFrames: number
  /** Whole frames after the first invalid one that carry this log's salts (torn, or unreadable after a torn frame). */
  tornFrames: number
  /**
   * Whole frames from the first frame with other salts on: left over from an
   * earlier cycle of the log after a checkpoint (normal, not data). The
   * current cycle writes frames contiguously from the start, so nothing
   * after such a frame can be its own.
   */
  staleFrames: number
  /** Bytes of the stale frames, plus a partial frame after them at the end of the file. */
  staleBytes: number
  /** Bytes at the end that do not make a whole frame, of this cycle (a torn write), or the whole file when the header is not valid. */
  trailingBytes: number
  /** Bytes of this log's content that recovery will ignore: uncommitted and torn frames plus trailing bytes. */
  discardedBytes: number
}

/** Adds `len` bytes of `buf` from `off` to the running checksum `s` (SQLite's `walChecksumBytes`). */
function checksum(buf: Buffer, off: number, len: number, bigEndian: boolean, s: [number, number]): void {
  let s1 = s[0]
  let s2 = s[1]
  for (let i = off; i < off + len; i += 8) {
    const a = bigEndian ? buf.readUInt32BE(i) : buf.readUInt32LE(i)
    const b = bigEndian ? buf.readUInt32BE(i + 4) : buf.readUInt32LE(i + 4)
    s1 = (s1 + a + s2) >>> 0
    s2 = (s2 + b + s1) >>> 0
  }
  s[0] = s1
  s[1] = s2
}

function emptyReport(fileBytes: number): WalReport {
  return {
    fileBytes,
    headerValid: false,
    pageSize: 0,
    committedFrames: 0,
    committedTransactions: 0,
    committedEnd: 0,
    uncommittedFrames: 0,
    tornFrames: 0,
    staleFrames: 0,
    staleBytes: 0,
    trailingBytes: fileBytes,
    discardedBytes: fileBytes,
  }
}

function readFully(fd: number, buf: Buffer, len: number, pos: number): number {
  let got = 0
  while (got < len) {
    const n = readSync(fd, buf, got, len - got, pos + got)
    if (n === 0) break
    got += n
  }
  return got
}

/**
 * Classifies every byte of the WAL file `walFile` as recovery will treat it.
 * A missing file reports `fileBytes: 0`. Reads one frame at a time, so memory
 * stays at one page whatever the size of the log. Throws only on I/O errors.
 */
export function inspectWal(walFile: string): WalReport {
  let fd: number
  try {
    fd = openSync(walFile, 'r')
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return emptyReport(0)
    throw err
  }
  try {
    const size = fstatSync(fd).size
    if (size < WAL_HEADER_BYTES) return emptyReport(size)
    const header = Buffer.alloc(WAL_HEADER_BYTES)
    readFully(fd, header, WAL_HEADER_BYTES, 0)
    const magic = header.readUInt32BE(0)
    const pageSize = header.readUInt32BE(8)
    if ((magic !== MAGIC_LE && magic !== MAGIC_BE) || pageSize < 512 || pageSize > 65536 || (pageSize & (pageSize - 1)) !== 0) return emptyReport(size)
    const bigEndian = magic === MAGIC_BE
    const sum: [number, number] = [0, 0]
    checksum(header, 0, 24, bigEndian, sum)
    if (sum[0] !== header.readUInt32BE(24) || sum[1] !== header.readUInt32BE(28)) return emptyReport(size)
    // SQLite refuses to open (SQLITE_CANTOPEN) a log with a valid header of another version; report it as unreadable.
    if (header.readUInt32BE(4) !== WAL_VERSION) return emptyReport(size)
    const salt1 = header.readUInt32BE(16)
    const salt2 = header.readUInt32BE(20)

    const frameBytes = WAL_FRAME_HEADER_BYTES + pageSize
    const wholeFrames = Math.floor((size - WAL_HEADER_BYTES) / frameBytes)
    const report: WalReport = { ...emptyReport(size), headerValid: true, pageSize, committedEnd: WAL_HEADER_BYTES, trailingBytes: size - WAL_HEADER_BYTES - wholeFrames * frameBytes, discardedBytes: 0 }
    const frame = Buffer.alloc(frameBytes)
    let validFrames = 0
    let chainBroken = false
    let pastStale = false
    for (let i = 0; i < wholeFrames; i++) {
      readFully(fd, frame, frameBytes, WAL_HEADER_BYTES + i * frameBytes)
      const ours = !pastStale && frame.readUInt32BE(8) === salt1 && frame.readUInt32BE(12) === salt2
      if (!chainBroken && ours && frame.readUInt32BE(0) !== 0) {
        checksum(frame, 0, 8, bigEndian, sum)
        checksum(frame, WAL_FRAME_HEADER_BYTES, pageSize, bigEndian, sum)
        if (sum[0] === frame.readUInt32BE(16) && sum[1] === frame.readUInt32BE(20)) {
          validFrames++
          if (frame.readUInt32BE(4) !== 0) {
            report.committedFrames = validFrames
            report.committedTransactions++
          }
          continue
        }
      }
      chainBroken = true
      if (ours) report.tornFrames++
      else {
        pastStale = true
        report.staleFrames++
      }
    }
    report.staleBytes = report.staleFrames * frameBytes
    if (pastStale) {
      report.staleBytes += report.trailingBytes
      report.trailingBytes = 0
    }
    report.uncommittedFrames = validFrames - report.committedFrames
    report.committedEnd = WAL_HEADER_BYTES + report.committedFrames * frameBytes
    report.discardedBytes = (report.uncommittedFrames + report.tornFrames) * frameBytes + report.trailingBytes
    return report
  } finally {
    closeSync(fd)
  }
}

/** Minimal logger shape used here (pino's `Logger` fits). */
export interface WalLog {
  warn(obj: object, msg: string): void
  debug(obj: object, msg: string): void
}

/**
 * Inspects `walFile` before the database is opened and logs what recovery
 * will do: nothing for a missing or empty log (a clean shutdown removes it);
 * otherwise one `warn` — "unclean shutdown: WAL holds N committed frames
 * (recovered)", plus "discarding a torn/uncommitted tail of K frames / B
 * bytes" when there is one. Returns the report, or null when the file could
 * not be read (logged; start-up goes on, SQLite decides).
 */
export function reportWalRecovery(walFile: string, log: WalLog): WalReport | null {
  let r: WalReport
  try {
    r = inspectWal(walFile)
  } catch (err) {
    log.warn({ wal: walFile, err: (err as Error).message }, 'store: could not inspect the WAL before opening; SQLite recovers it on its own')
    return null
  }
  if (r.fileBytes === 0) return r
  const fields = {
    wal: walFile,
    walBytes: r.fileBytes,
    committedFrames: r.committedFrames,
    committedTransactions: r.committedTransactions,
    uncommittedFrames: r.uncommittedFrames,
    tornFrames: r.tornFrames,
    trailingBytes: r.trailingBytes,
    staleFrames: r.staleFrames,
    staleBytes: r.staleBytes,
    discardedFrames: r.uncommittedFrames + r.tornFrames,
    discardedBytes: r.discardedBytes,
  }
  const stale = r.staleBytes > 0 ? `; ignoring ${r.staleBytes} bytes left from an earlier WAL cycle` : ''
  if (!r.headerValid) {
    log.warn(fields, `store: unclean shutdown: the WAL header is torn or invalid, so nothing in it counts; discarding all ${r.fileBytes} bytes`)
  } else if (r.discardedBytes > 0) {
    log.warn(fields, `store: unclean shutdown: WAL holds ${r.committedFrames} committed frames (recovered); discarding a torn/uncommitted tail of ${fields.discardedFrames} frames / ${r.discardedBytes} bytes${stale}`)
  } else {
    log.warn(fields, `store: unclean shutdown: WAL holds ${r.committedFrames} committed frames (recovered); no torn or uncommitted tail${stale}`)
  }
  return r
}
