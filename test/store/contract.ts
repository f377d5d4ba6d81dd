/**
 * The one test suite every `Store` backend must pass (the automerge-repo
 * pattern: one interface, one shared suite). A backend's test file calls
 * `storeContract('name', (dir) => openMyStore(dir))`.
 *
 * Randomized tests are seeded: the seed is in the test name and in every
 * failure message; re-run exactly with `MURMUR_SEED=<seed>`.
 */
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterEach, describe, expect, test } from 'vitest'
import type { Store, StoredDoc } from '../../server/store/store.ts'

/** Seed of this run: `MURMUR_SEED` or a fresh one. */
export const SEED = process.env.MURMUR_SEED ? Number(process.env.MURMUR_SEED) : (Date.now() ^ (Math.random() * 0x7fffffff)) >>> 0

/** A small seeded PRNG (mulberry32): returns floats in [0, 1). */
export function prng(seed: number): () => number {
  let a = seed >>> 0
  return () => {
    a = (a + 0x6d2b79f5) >>> 0
    let t = a
    t = Math.imul(t ^ (t >>> 15), t | 1)
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61)
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296
  }
}

/** `n` random bytes from `rand`. */
export function randomBytes(rand: () => number, n: number): Uint8Array {
  const out = new Uint8Array(n)
  for (let i = 0; i < n; i++) out[i] = (rand() * 256) | 0
  return out
}

/** Asserts that `actual` holds exactly the bytes of `expected`, in order. */
export function expectSameUpdates(actual: Uint8Array[], expected: Uint8Array[], what = ''): void {
  expect(actual.length, `${what} number of updates`).toBe(expected.length)
  for (let i = 0; i < expected.length; i++) {
    expect(actual[i], `${what} update #${i} type`).toBeInstanceOf(Uint8Array)
    const same = Buffer.compare(Buffer.from(actual[i]!.buffer, actual[i]!.byteOffset, actual[i]!.byteLength), Buffer.from(expected[i]!)) === 0
    expect(same, `${what} update #${i} (${actual[i]!.byteLength} vs ${expected[i]!.byteLength} bytes) differs`).toBe(true)
  }
}

const sum = (us: Uint8Array[]) => us.reduce((n, u) => n + u.byteLength, 0)

/** Document ids at the edges of `DOC_ID_PATTERN`: case, prefixes, LIKE wildcards, SQL words, JS prototype names, max length. */
export const EDGE_DOC_IDS = [
  'a', 'A', 'ab', 'a_', 'a-', 'b', '_', '-', '_-', '0',
  '__proto__', 'constructor', 'prototype', 'hasOwnProperty', 'toString',
  'DROP_TABLE_updates--', '1-OR-1', 'select', 'null', 'undefined',
  'x'.repeat(64), 'x'.repeat(63) + 'y', 'X'.repeat(64),
]

/**
 * Registers the shared `Store` contract suite for one backend. `open` is called
 * with a fresh temp directory per test, and again with the same directory to
 * check that data survives a close and reopen.
 */
export function storeContract(name: string, open: (dir: string) => Store | Promise<Store>): void {
  describe(`Store contract: ${name}`, () => {
    const dirs: string[] = []
    const stores: Store[] = []

    async function fresh(): Promise<{ dir: string; store: Store }> {
      const dir = mkdtempSync(join(tmpdir(), `murmur-store-${name}-`))
      dirs.push(dir)
      const store = await open(dir)
      stores.push(store)
      return { dir, store }
    }
    async function reopen(dir: string): Promise<Store> {
      const store = await open(dir)
      stores.push(store)
      return store
    }

    afterEach(async () => {
      for (const s of stores.splice(0)) await s.close().catch(() => {})
      for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true })
    })

    test('an unknown document loads empty', async () => {
      const { store } = await fresh()
      expect(await store.load('never-written')).toEqual({ updates: [], lastSeq: 0, bytes: 0 })
      await store.append('other', [new Uint8Array([1])])
      expect(await store.load('never-written')).toEqual({ updates: [], lastSeq: 0, bytes: 0 })
    })

    test(`append then load returns the same bytes in the same order (seed ${SEED})`, async () => {
      const rand = prng(SEED)
      const { store } = await fresh()
      const sizes = [1, 2, 3, 17, 255, 256, 4096, 65_535, 65_536, 1024 * 1024 + 3]
      for (let i = 0; i < 200; i++) sizes.push(1 + Math.floor(rand() * 300))
      const updates = sizes.map((n) => randomBytes(rand, n))
      // Bytes SQLite or a text codec might mangle: NUL, invalid UTF-8, all zeros/ones.
      updates.push(new Uint8Array([0]), new Uint8Array([0, 0, 0]), new Uint8Array([0xff, 0xfe, 0xc0, 0x80]), new Uint8Array(1000).fill(0xff))
      // Split into batches of random sizes, appended one after the other.
      const expectedSeqs: number[] = []
      let i = 0
      while (i < updates.length) {
        const n = 1 + Math.floor(rand() * 20)
        const seq = await store.append('doc', updates.slice(i, i + n))
        i = Math.min(updates.length, i + n)
        expectedSeqs.push(i)
        expect(seq, `seed ${SEED}: last seq of a batch`).toBe(i)
      }
      const loaded = await store.load('doc')
      expectSameUpdates(loaded.updates, updates, `seed ${SEED}:`)
      expect(loaded.lastSeq).toBe(updates.length)
      expect(loaded.bytes).toBe(sum(updates))
    })

    test('the caller may reuse its buffers after append resolves', async () => {
      const { store } = await fresh()
      const u = new Uint8Array([1, 2, 3, 4])
      const view = new Uint8Array(new Uint8Array([9, 9, 5, 6, 7, 9]).buffer, 2, 3) // a view at an offset
      await store.append('doc', [u, view])
      u.fill(0)
      const loaded = await store.load('doc')
      expectSameUpdates(loaded.updates, [new Uint8Array([1, 2, 3, 4]), new Uint8Array([5, 6, 7])])
    })

    test('an empty update is rejected with the whole batch; an empty batch writes nothing', async () => {
      const { store } = await fresh()
      await expect(store.append('doc', [new Uint8Array([1]), new Uint8Array(0)])).rejects.toMatchObject({ name: 'StoreError', code: 'invalid-argument' })
      expect(await store.load('doc')).toEqual({ updates: [], lastSeq: 0, bytes: 0 })
      expect(await store.append('doc', [])).toBe(0)
      expect(await store.append('doc', [new Uint8Array([7])])).toBe(1)
      expect(await store.append('doc', [])).toBe(1)
      const loaded = await store.load('doc')
      expectSameUpdates(loaded.updates, [new Uint8Array([7])])
      expect(loaded.lastSeq).toBe(1)
    })

    test('sequence numbers start at 1 and increase across appends', async () => {
      const { store } = await fresh()
      const u = (b: number) => new Uint8Array([b])
      expect(await store.append('doc', [u(1)])).toBe(1)
      expect(await store.append('doc', [u(2), u(3)])).toBe(3)
      expect(await store.append('doc', [u(4)])).toBe(4)
      expect(await store.append('doc', Array.from({ length: 10 }, (_, i) => u(5 + i)))).toBe(14)
      const loaded = await store.load('doc')
      expect(loaded.lastSeq).toBe(14)
      expect(loaded.updates.map((x) => x[0])).toEqual(Array.from({ length: 14 }, (_, i) => i + 1))
    })

    test('documents are isolated, including ids that differ only in case, prefix or look like SQL/JS names', async () => {
      const { store } = await fresh()
      // Interleave appends so that rows of different documents are written next to each other.
      for (let round = 0; round < 3; round++) {
        for (const [k, id] of EDGE_DOC_IDS.entries()) {
          const seq = await store.append(id, [new TextEncoder().encode(`${id}#${round}`), new Uint8Array([k, round])])
          expect(seq, id).toBe(2 * round + 2)
        }
      }
      await store.compact('a', 4, new TextEncoder().encode('a-snapshot'))
      for (const [k, id] of EDGE_DOC_IDS.entries()) {
        const loaded = await store.load(id)
        const expected: Uint8Array[] = []
        for (let round = 0; round < 3; round++) expected.push(new TextEncoder().encode(`${id}#${round}`), new Uint8Array([k, round]))
        if (id === 'a') expected.splice(0, 4, new TextEncoder().encode('a-snapshot'))
        expectSameUpdates(loaded.updates, expected, `doc ${JSON.stringify(id)}:`)
        expect(loaded.lastSeq, id).toBe(6)
      }
      expect(await store.load('aB')).toEqual({ updates: [], lastSeq: 0, bytes: 0 })
      expect(await store.load('x'.repeat(63))).toEqual({ updates: [], lastSeq: 0, bytes: 0 })
    })

    test('compaction replaces old rows by the snapshot, keeps later rows, and numbering continues', async () => {
      const { store } = await fresh()
      const u = (b: number) => new Uint8Array([b, b])
      await store.append('doc', [u(1), u(2), u(3), u(4), u(5)])
      await store.append('doc', [u(6), u(7), u(8), u(9), u(10)])
      await store.append('other', [u(100)])
      const snap1 = new Uint8Array([0xaa, 1, 2, 3, 4, 5, 6, 7])
      await store.compact('doc', 7, snap1)
      let loaded = await store.load('doc')
      expectSameUpdates(loaded.updates, [snap1, u(8), u(9), u(10)], 'after first compaction:')
      expect(loaded.lastSeq).toBe(10)
      expect(loaded.bytes).toBe(snap1.byteLength + 6)
      expect(await store.append('doc', [u(11)])).toBe(11)
      // Compacting again, over the previous snapshot, up to the last row.
      const snap2 = new Uint8Array([0xbb, 0xbb])
      await store.compact('doc', 11, snap2)
      loaded = await store.load('doc')
      expectSameUpdates(loaded.updates, [snap2], 'after second compaction:')
      expect(loaded.lastSeq).toBe(11)
      // Numbers are never reused: the next append is 12, not 2.
      expect(await store.append('doc', [u(12)])).toBe(12)
      // Replacing the snapshot itself (upToSeq = its seq) is allowed.
      const snap3 = new Uint8Array([0xcc])
      await store.compact('doc', 11, snap3)
      loaded = await store.load('doc')
      expectSameUpdates(loaded.updates, [snap3, u(12)], 'after re-snapshot:')
      // The other document was not touched.
      expectSameUpdates((await store.load('other')).updates, [u(100)], 'other doc:')
    })

    test('an invalid compaction is rejected and changes nothing', async () => {
      const { store } = await fresh()
      const u = (b: number) => new Uint8Array([b])
      await store.append('doc', [u(1), u(2), u(3), u(4), u(5)])
      await store.compact('doc', 3, new Uint8Array([0xaa]))
      const before = await store.load('doc')
      const bad: [string, number, Uint8Array][] = [
        ['doc', 6, new Uint8Array([1])], // beyond the last row
        ['doc', 2, new Uint8Array([1])], // before the first row (already inside the snapshot at 3)
        ['doc', 0, new Uint8Array([1])],
        ['doc', -1, new Uint8Array([1])],
        ['doc', 4.5, new Uint8Array([1])],
        ['doc', 5, new Uint8Array(0)], // empty snapshot
        ['unknown', 1, new Uint8Array([1])], // nothing to compact
      ]
      for (const [id, upTo, snap] of bad) {
        await expect(store.compact(id, upTo, snap), `compact(${id}, ${upTo}, ${snap.byteLength} bytes)`).rejects.toMatchObject({ name: 'StoreError', code: 'invalid-argument' })
      }
      const after = await store.load('doc')
      expectSameUpdates(after.updates, before.updates, 'after rejected compactions:')
      expect(after.lastSeq).toBe(5)
      expect(await store.load('unknown')).toEqual({ updates: [], lastSeq: 0, bytes: 0 })
    })

    test('operations on one document take effect in the order they are issued, even when not awaited', async () => {
      const { store } = await fresh()
      const u = (b: number) => new Uint8Array([b])
      await store.append('doc', [u(1), u(2)])
      const a = store.append('doc', [u(3)])
      const c = store.compact('doc', 3, new Uint8Array([0xaa])) // must see seq 3
      const b = store.append('doc', [u(4)])
      const l = store.load('doc')
      expect(await a).toBe(3)
      await c
      expect(await b).toBe(4)
      const loaded = await l
      expectSameUpdates(loaded.updates, [new Uint8Array([0xaa]), u(4)])
      expect(loaded.lastSeq).toBe(4)
    })

    test('data survives close and reopen on the same directory', async () => {
      const rand = prng(SEED + 1)
      const { dir, store } = await fresh()
      const expected = new Map<string, Uint8Array[]>()
      for (const id of ['a', 'b', 'c', 'x'.repeat(64)]) {
        const us = Array.from({ length: 30 }, () => randomBytes(rand, 1 + Math.floor(rand() * 500)))
        for (let i = 0; i < us.length; i += 7) await store.append(id, us.slice(i, i + 7))
        expected.set(id, us)
      }
      const snap = randomBytes(rand, 5000)
      await store.compact('b', 20, snap)
      expected.set('b', [snap, ...expected.get('b')!.slice(20)])
      const before = new Map<string, StoredDoc>()
      for (const id of expected.keys()) before.set(id, await store.load(id))
      await store.close()

      const again = await reopen(dir)
      for (const [id, us] of expected) {
        const loaded = await again.load(id)
        expectSameUpdates(loaded.updates, us, `seed ${SEED + 1}: ${id} after reopen:`)
        expect(loaded.lastSeq, id).toBe(30)
        expect(loaded.bytes, id).toBe(before.get(id)!.bytes)
      }
      expect(await again.append('b', [new Uint8Array([1])])).toBe(31)
      await again.checkWritable()
    })

    test('checkWritable resolves on a healthy store; every method rejects after close; close is idempotent', async () => {
      const { store } = await fresh()
      await expect(store.checkWritable()).resolves.toBeUndefined()
      await store.append('doc', [new Uint8Array([1])])
      await store.close()
      await expect(store.close()).resolves.toBeUndefined()
      const closed = { name: 'StoreError', code: 'closed' }
      await expect(store.checkWritable()).rejects.toMatchObject(closed)
      await expect(store.append('doc', [new Uint8Array([2])])).rejects.toMatchObject(closed)
      await expect(store.load('doc')).rejects.toMatchObject(closed)
      await expect(store.compact('doc', 1, new Uint8Array([3]))).rejects.toMatchObject(closed)
      await expect(store.usedBytes()).rejects.toMatchObject(closed)
    })

    test('usedBytes counts what is stored: it grows by at least the bytes appended', async () => {
      const { store } = await fresh()
      const before = await store.usedBytes()
      expect(Number.isFinite(before) && before >= 0).toBe(true)
      await store.append('doc', [new Uint8Array(256 * 1024).fill(7)])
      expect(await store.usedBytes()).toBeGreaterThanOrEqual(before + 256 * 1024)
    })

    test('close waits for appends already issued', async () => {
      const { dir, store } = await fresh()
      const pending = [store.append('a', [new Uint8Array([1])]), store.append('b', [new Uint8Array([2])])]
      await store.close()
      expect(await Promise.all(pending)).toEqual([1, 1])
      const again = await reopen(dir)
      expect((await again.load('a')).lastSeq).toBe(1)
      expect((await again.load('b')).lastSeq).toBe(1)
    })

    test(`concurrent appends to many documents (seed ${SEED})`, async () => {
      const rand = prng(SEED + 2)
      const { store } = await fresh()
      const docs = Array.from({ length: 50 }, (_, i) => `doc-${i}`)
      const expected = new Map<string, Uint8Array[]>(docs.map((d) => [d, []]))
      const calls: { doc: string; seq: Promise<number>; last: number }[] = []
      // Issue everything without awaiting, docs interleaved at random; per doc in order.
      for (let i = 0; i < 1000; i++) {
        const doc = docs[Math.floor(rand() * docs.length)]!
        const batch = Array.from({ length: 1 + Math.floor(rand() * 3) }, () => randomBytes(rand, 1 + Math.floor(rand() * 64)))
        const list = expected.get(doc)!
        list.push(...batch)
        calls.push({ doc, seq: store.append(doc, batch), last: list.length })
      }
      const seqs = await Promise.all(calls.map((c) => c.seq))
      expect(seqs, `seed ${SEED + 2}`).toEqual(calls.map((c) => c.last))
      const loads = await Promise.all(docs.map((d) => store.load(d)))
      loads.forEach((loaded, i) => {
        expectSameUpdates(loaded.updates, expected.get(docs[i]!)!, `seed ${SEED + 2}: ${docs[i]}:`)
        expect(loaded.lastSeq).toBe(expected.get(docs[i]!)!.length)
      })
    })
  })
}
