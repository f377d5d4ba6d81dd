/**
 * `wal-inspect.ts` against real WAL files written by SQLite: each case tears
 * or extends a copy the way a crash or a torn sector write would, checks the
 * counts, and then lets SQLite itself open the copy to confirm that exactly
 * the committed transactions survive.
 */
import { appendFileSync, readFileSync, rmSync, truncateSync, writeFileSync } from 'node:fs'
import pino from 'pino'
import { afterEach, describe, expect, test } from 'vitest'
import { inspectWal, reportWalRecovery } from '../../server/store/wal-inspect.ts'
import { FRAME, rowsOf, tempDir, toBigEndianWal, walImage, type WalImage } from './wal-fixtures.ts'

const dirs: string[] = []
afterEach(() => {
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true })
})
function image(sizes: number[], opts?: Parameters<typeof walImage>[1]): WalImage {
  const img = walImage(sizes, opts)
  dirs.push(img.dir)
  return img
}
const ids = (img: WalImage, txns: number) => img.txnRows.slice(0, txns).flat()

// Transaction 3 (a 9,000-byte row) spans 4 frames; the others 1 (the table-creating one 2).
const SIZES = [100, 200, 9000, 50]

describe('inspectWal', () => {
  test('a WAL left by a crash between transactions: every frame committed, nothing discarded', () => {
    const img = image(SIZES)
    const r = inspectWal(img.wal)
    expect(r).toMatchObject({ headerValid: true, pageSize: 4096, committedFrames: 9, committedTransactions: 5, uncommittedFrames: 0, tornFrames: 0, staleFrames: 0, trailingBytes: 0, discardedBytes: 0 })
    expect(r.committedEnd).toBe(r.fileBytes)
    expect(rowsOf(img.db)).toEqual(ids(img, 5))
  })

  test('truncated inside the commit frame of the last transaction: its earlier frames are uncommitted, the cut frame is trailing bytes', () => {
    const img = image(SIZES.slice(0, 3)) // last transaction: 4 frames, the 4th is its commit frame
    const end = img.walSizeAfter[3]!
    truncateSync(img.wal, end - 1000)
    const r = inspectWal(img.wal)
    expect(r).toMatchObject({ committedFrames: 4, committedTransactions: 3, uncommittedFrames: 3, tornFrames: 0, trailingBytes: FRAME - 1000 })
    expect(r.committedEnd).toBe(img.walSizeAfter[2])
    expect(r.discardedBytes).toBe(end - 1000 - img.walSizeAfter[2]!)
    expect(rowsOf(img.db)).toEqual(ids(img, 3))
  })

  test('truncated inside a frame header: only the whole frames before it count', () => {
    const img = image([100, 200])
    truncateSync(img.wal, img.walSizeAfter[2]! - FRAME + 10)
    const r = inspectWal(img.wal)
    expect(r).toMatchObject({ committedTransactions: 2, uncommittedFrames: 0, trailingBytes: 10, discardedBytes: 10 })
    expect(rowsOf(img.db)).toEqual(ids(img, 2))
  })

  test('one flipped byte in the last frame: the checksum fails, that transaction is torn and discarded', () => {
    const img = image(SIZES)
    const b = readFileSync(img.wal)
    b[b.length - 100] ^= 0x40
    writeFileSync(img.wal, b)
    const r = inspectWal(img.wal)
    expect(r).toMatchObject({ committedFrames: 8, committedTransactions: 4, uncommittedFrames: 0, tornFrames: 1, trailingBytes: 0, discardedBytes: FRAME })
    expect(rowsOf(img.db)).toEqual(ids(img, 4))
  })

  test('a flipped byte in a middle frame of a multi-frame transaction: the rest of the log is unreadable', () => {
    const img = image(SIZES)
    const b = readFileSync(img.wal)
    b[img.walSizeAfter[2]! + FRAME + 500] ^= 1 // 2nd frame of transaction 3
    writeFileSync(img.wal, b)
    const r = inspectWal(img.wal)
    expect(r).toMatchObject({ committedTransactions: 3, uncommittedFrames: 1, tornFrames: 4 }) // 3 frames of txn 3 + txn 4's
    expect(rowsOf(img.db)).toEqual(ids(img, 3))
  })

  test('garbage appended after the last commit (shorter than a frame): trailing bytes, every row kept', () => {
    const img = image(SIZES)
    appendFileSync(img.wal, Buffer.from(Array.from({ length: 1234 }, (_, i) => (i * 37) & 0xff)))
    const r = inspectWal(img.wal)
    expect(r).toMatchObject({ committedTransactions: 5, trailingBytes: 1234, discardedBytes: 1234, tornFrames: 0, staleFrames: 0 })
    expect(rowsOf(img.db)).toEqual(ids(img, 5))
  })

  test('a frame with this log\'s salts and a commit marker but a wrong checksum, half written: trailing bytes', () => {
    const img = image(SIZES)
    const b = readFileSync(img.wal)
    const fake = Buffer.alloc(24 + 2000, 0x5a)
    fake.writeUInt32BE(2, 0) // page 2
    fake.writeUInt32BE(9, 4) // "commit": db size 9 pages
    b.copy(fake, 8, 16, 24) // the header's salts
    appendFileSync(img.wal, fake)
    expect(inspectWal(img.wal)).toMatchObject({ committedTransactions: 5, trailingBytes: fake.length, discardedBytes: fake.length })
    expect(rowsOf(img.db)).toEqual(ids(img, 5))
    // Completed to a whole frame it is a torn frame: right salts, wrong checksum.
    appendFileSync(img.wal, Buffer.alloc(FRAME - fake.length, 0x5a))
    expect(inspectWal(img.wal)).toMatchObject({ committedTransactions: 5, tornFrames: 1, trailingBytes: 0, discardedBytes: FRAME })
    expect(rowsOf(img.db)).toEqual(ids(img, 5))
  })

  test('frames of an earlier cycle after a checkpoint restart are stale, not discarded data', () => {
    const img = image([100, 200, 9000, 50, 60, 70], { restartAfter: 4 })
    const r = inspectWal(img.wal)
    expect(r).toMatchObject({ committedFrames: 2, committedTransactions: 2, staleFrames: 7, staleBytes: 7 * FRAME, uncommittedFrames: 0, tornFrames: 0, discardedBytes: 0 })
    expect(rowsOf(img.db)).toEqual([1, 2, 3, 4, 5, 6])
    // A partial frame at the end of the file, beyond the stale frames, cannot be this cycle's either.
    appendFileSync(img.wal, Buffer.alloc(100, 3))
    expect(inspectWal(img.wal)).toMatchObject({ staleFrames: 7, staleBytes: 7 * FRAME + 100, trailingBytes: 0, discardedBytes: 0 })
    // A torn frame of this cycle written over the first stale frame is discarded; the rest stays stale.
    const b = readFileSync(img.wal)
    const at = 32 + 2 * FRAME
    b.copy(b, at + 8, 16, 24) // this cycle's salts, old page content: the checksum fails
    writeFileSync(img.wal, b)
    expect(inspectWal(img.wal)).toMatchObject({ committedFrames: 2, tornFrames: 1, staleFrames: 6, staleBytes: 6 * FRAME + 100, discardedBytes: FRAME })
    expect(rowsOf(img.db)).toEqual([1, 2, 3, 4, 5, 6])
  })

  test('big-endian checksums (magic 0x377f0683) are read the same way SQLite reads them', () => {
    const img = image(SIZES)
    toBigEndianWal(img.wal)
    expect(readFileSync(img.wal).readUInt32BE(0)).toBe(0x377f0683)
    expect(inspectWal(img.wal)).toMatchObject({ committedTransactions: 5, discardedBytes: 0 })
    expect(rowsOf(img.db)).toEqual(ids(img, 5))
    truncateSync(img.wal, img.walSizeAfter[3]! - 10) // inside the commit frame of the 4-frame transaction
    expect(inspectWal(img.wal)).toMatchObject({ committedTransactions: 3, uncommittedFrames: 3, trailingBytes: FRAME - 10 })
    expect(rowsOf(img.db)).toEqual(ids(img, 3))
  })

  test('a torn header (file shorter than 32 bytes, or a bad header checksum) makes the whole file discarded', () => {
    const img = image([100])
    const full = readFileSync(img.wal)
    writeFileSync(img.wal, full.subarray(0, 20))
    expect(inspectWal(img.wal)).toMatchObject({ fileBytes: 20, headerValid: false, committedFrames: 0, discardedBytes: 20 })
    const bad = Buffer.from(full)
    bad[17] ^= 1 // salt-1: header checksum no longer matches
    writeFileSync(img.wal, bad)
    expect(inspectWal(img.wal)).toMatchObject({ headerValid: false, committedFrames: 0, discardedBytes: full.length })
  })

  test('a missing or empty file reports nothing', () => {
    const dir = tempDir()
    dirs.push(dir)
    expect(inspectWal(`${dir}/none-wal`)).toMatchObject({ fileBytes: 0, discardedBytes: 0 })
    writeFileSync(`${dir}/empty-wal`, '')
    expect(inspectWal(`${dir}/empty-wal`)).toMatchObject({ fileBytes: 0, discardedBytes: 0 })
  })
})

describe('reportWalRecovery', () => {
  function capture() {
    const lines: { level: number; msg: string; [k: string]: unknown }[] = []
    return { lines, log: pino({ level: 'debug' }, { write: (s: string) => lines.push(JSON.parse(s)) }) }
  }

  test('warns once with what is recovered and what is discarded', () => {
    const img = image(SIZES)
    appendFileSync(img.wal, Buffer.alloc(777, 1))
    const { lines, log } = capture()
    reportWalRecovery(img.wal, log)
    expect(lines).toHaveLength(1)
    expect(lines[0]).toMatchObject({ level: 40, committedFrames: 9, discardedBytes: 777, trailingBytes: 777 })
    expect(lines[0]!.msg).toBe('store: unclean shutdown: WAL holds 9 committed frames (recovered); discarding a torn/uncommitted tail of 0 frames / 777 bytes')
  })

  test('an unclean shutdown without a torn tail is still reported; a missing WAL is not', () => {
    const img = image([100])
    const { lines, log } = capture()
    reportWalRecovery(img.wal, log)
    expect(lines.map((l) => l.msg)).toEqual(['store: unclean shutdown: WAL holds 3 committed frames (recovered); no torn or uncommitted tail'])
    lines.length = 0
    reportWalRecovery(`${img.dir}/missing-wal`, log)
    expect(lines).toEqual([])
  })

  test('an unreadable WAL is a warning, never an exception', () => {
    const dir = tempDir()
    dirs.push(dir)
    const { lines, log } = capture()
    expect(reportWalRecovery(dir, log)).toBeNull() // a directory: read fails with EISDIR
    expect(lines[0]).toMatchObject({ level: 40 })
  })
})
