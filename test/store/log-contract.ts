/**
 * The one test suite every `LogStore` backend must pass (private documents'
 * encrypted logs). A backend's test file calls
 * `logStoreContract('name', (dir) => openMyLogStore(dir))`.
 */
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterEach, describe, expect, test } from 'vitest'
import { LogStoreError, type LogStore } from '../../server/store/log-store.ts'

const bytes = (...b: number[]) => new Uint8Array(b)
const hashA = new Uint8Array(32).fill(7)
const hashB = new Uint8Array(32).fill(8)

/** Registers the contract tests for one backend. */
export function logStoreContract(name: string, open: (dir: string) => LogStore | Promise<LogStore>): void {
  describe(`LogStore contract: ${name}`, () => {
    const dirs: string[] = []
    const stores: LogStore[] = []
    const fresh = async (dir = mkdtempSync(join(tmpdir(), 'murmur-log-'))) => {
      dirs.push(dir)
      const s = await open(dir)
      stores.push(s)
      return { s, dir }
    }
    afterEach(async () => {
      await Promise.all(stores.splice(0).map((s) => s.close()))
      for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true })
    })

    test('an unknown document has no log', async () => {
      const { s } = await fresh()
      expect(await s.read('nope', 0)).toEqual({ entries: [], lastSeq: 0, sinceSnapshot: 0 })
      expect(await s.exists('nope')).toBe(false)
      expect(await s.bytes('nope')).toBe(0)
    })

    test('bytes counts what a document stores, snapshot included, and shrinks when a snapshot replaces entries', async () => {
      const { s } = await fresh()
      await s.append('sized', hashA, [new Uint8Array(1000), new Uint8Array(500)])
      await s.append('other', hashB, [new Uint8Array(7)])
      expect(await s.bytes('sized')).toBe(1500)
      expect(await s.replace('sized', hashA, 2, new Uint8Array(100))).toBe(true)
      expect(await s.bytes('sized')).toBe(100)
      expect(await s.bytes('other')).toBe(7)
    })

    test('appends get increasing seqs from 1 and read back from a cursor, in order, across a reopen', async () => {
      const { s, dir } = await fresh()
      expect(await s.append('d', hashA, [bytes(1)])).toBe(1)
      expect(await s.append('d', hashA, [bytes(2), bytes(3)])).toBe(3)
      // Issued in one turn, without awaiting: distinct seqs in issue order.
      const seqs = await Promise.all([s.append('d', hashA, [bytes(4)]), s.append('e', hashB, [bytes(40)]), s.append('d', hashA, [bytes(5)])])
      expect(seqs).toEqual([4, 1, 5])
      expect(await s.exists('d')).toBe(true)
      await s.close()
      const again = await open(dir)
      stores.push(again)
      const r = await again.read('d', 2)
      expect(r.lastSeq).toBe(5)
      expect(r.sinceSnapshot).toBe(5)
      expect(r.entries.map((e) => [e.seq, e.snapshot, [...e.data]])).toEqual([
        [3, false, [3]],
        [4, false, [4]],
        [5, false, [5]],
      ])
    })

    test('the first write fixes the write hash; a different one is refused whole and stores nothing', async () => {
      const { s } = await fresh()
      await s.append('d', hashA, [bytes(1)])
      await expect(s.append('d', hashB, [bytes(2)])).rejects.toMatchObject({ name: 'LogStoreError', code: 'forbidden' })
      await expect(s.replace('d', hashB, 1, bytes(9))).rejects.toMatchObject({ code: 'forbidden' })
      const r = await s.read('d', 0)
      expect(r.lastSeq).toBe(1)
      expect(r.entries.map((e) => [...e.data])).toEqual([[1]])
    })

    test('replace swaps entries up to a seq for a snapshot atomically, keeps later ones, never reuses a seq, and a stale one changes nothing', async () => {
      const { s } = await fresh()
      await s.append('d', hashA, [bytes(1), bytes(2), bytes(3), bytes(4)])
      expect(await s.replace('d', hashA, 3, bytes(99))).toBe(true)
      let r = await s.read('d', 0)
      expect(r.entries.map((e) => [e.seq, e.snapshot, [...e.data]])).toEqual([
        [3, true, [99]],
        [4, false, [4]],
      ])
      expect(r.sinceSnapshot).toBe(1)
      // A cursor before the snapshot gets the snapshot; one at or after it does not.
      expect((await s.read('d', 1)).entries.map((e) => e.seq)).toEqual([3, 4])
      expect((await s.read('d', 3)).entries.map((e) => e.seq)).toEqual([4])
      expect(await s.replace('d', hashA, 2, bytes(50))).toBe(false)
      expect(await s.replace('d', hashA, 3, bytes(50))).toBe(false)
      await expect(s.replace('d', hashA, 9, bytes(50))).rejects.toBeInstanceOf(LogStoreError)
      expect(await s.append('d', hashA, [bytes(5)])).toBe(5)
      r = await s.read('d', 0)
      expect(r.entries.map((e) => [...e.data])).toEqual([[99], [4], [5]])
      expect(r.lastSeq).toBe(5)
    })

    test('a snapshot issued while appends are in flight keeps every append after its seq', async () => {
      const { s } = await fresh()
      await s.append('d', hashA, [bytes(1), bytes(2)])
      const later = [s.append('d', hashA, [bytes(3)]), s.replace('d', hashA, 2, bytes(12)), s.append('d', hashA, [bytes(4)])]
      await Promise.all(later)
      const r = await s.read('d', 0)
      expect(r.entries.map((e) => [...e.data])).toEqual([[12], [3], [4]])
    })

    test('a read waits for the appends issued before it, not for those that keep coming after it', async () => {
      const { s } = await fresh()
      await s.append('d', hashA, [bytes(1)])
      let stop = false
      const later: Promise<number>[] = []
      const writer = (async () => {
        while (!stop) {
          later.push(s.append('d', hashA, [bytes(2)]))
          await new Promise((r) => setImmediate(r))
        }
      })()
      await new Promise((r) => setTimeout(r, 20))
      const r = await s.read('d', 0)
      stop = true
      await writer
      await Promise.all(later)
      expect(r.entries[0]!.data).toEqual(bytes(1))
      expect((await s.read('d', 0)).lastSeq).toBe(1 + later.length)
    })

    test('bad arguments and a closed store reject with named errors', async () => {
      const { s } = await fresh()
      await expect(s.append('d', hashA, [])).rejects.toMatchObject({ code: 'invalid-argument' })
      await expect(s.append('d', hashA, [bytes()])).rejects.toMatchObject({ code: 'invalid-argument' })
      await expect(s.append('d', new Uint8Array(0), [bytes(1)])).rejects.toMatchObject({ code: 'invalid-argument' })
      await expect(s.replace('d', hashA, 1, bytes(1))).rejects.toMatchObject({ code: 'invalid-argument' })
      expect(await s.read('d', 0)).toEqual({ entries: [], lastSeq: 0, sinceSnapshot: 0 })
      await s.close()
      await s.close()
      await expect(s.read('d', 0)).rejects.toMatchObject({ code: 'closed' })
      await expect(s.append('d', hashA, [bytes(1)])).rejects.toMatchObject({ code: 'closed' })
    })
  })
}
