import { describe, expect, it } from 'vitest'
import * as Y from 'yjs'
import { PositionIndex } from '../../src/editor/positions.ts'

/** Small seeded PRNG (mulberry32) so a failure can be replayed with MURMUR_SEED. */
function prng(seed: number) {
  let a = seed >>> 0
  return () => {
    a = (a + 0x6d2b79f5) >>> 0
    let t = a
    t = Math.imul(t ^ (t >>> 15), t | 1)
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61)
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296
  }
}

const seeds = process.env.MURMUR_SEED ? [Number(process.env.MURMUR_SEED)] : Array.from({ length: 6 }, () => Math.floor(Math.random() * 2 ** 31))

describe('PositionIndex agrees with Yjs', () => {
  for (const seed of seeds) {
    it(`random local/remote edits and queries (MURMUR_SEED=${seed})`, () => {
      const rand = prng(seed)
      const int = (n: number) => Math.floor(rand() * n)
      const a = new Y.Doc()
      const b = new Y.Doc()
      a.on('update', (u: Uint8Array, origin: unknown) => origin !== 'remote' && Y.applyUpdate(b, u, 'remote'))
      const ta = a.getText('text')
      const tb = b.getText('text')
      const pi = new PositionIndex(ta)
      const saved: Y.RelativePosition[] = []
      const edit = (t: Y.Text) => {
        if (t.length > 0 && rand() < 0.35) {
          const at = int(t.length)
          t.delete(at, 1 + int(Math.min(4, t.length - at)))
        } else {
          t.insert(int(t.length + 1), rand() < 0.1 ? 'line\n' : 'abcdefgh'.slice(0, 1 + int(8)))
        }
      }
      for (let step = 0; step < 1500; step++) {
        const r = rand()
        if (r < 0.45) edit(ta) // local: Yjs keeps search markers
        else if (r < 0.6) {
          // remote: markers are cleared
          edit(tb)
          Y.applyUpdate(a, Y.encodeStateAsUpdate(b, Y.encodeStateVector(a)), 'remote')
        } else {
          const index = int(ta.length + 1)
          const assoc = [-1, 0, 1][int(3)]
          const mine = pi.toRelative(index, assoc)
          const theirs = Y.createRelativePositionFromTypeIndex(ta, index, assoc)
          expect(Y.compareRelativePositions(mine, theirs), `toRelative(${index}, ${assoc}) at step ${step}`).toBe(true)
          saved.push(theirs)
          if (saved.length > 40) saved.shift()
          const probe = saved[int(saved.length)]
          const expected = Y.createAbsolutePositionFromRelativePosition(probe, a, false)?.index ?? null
          expect(pi.toIndex(probe), `toIndex at step ${step}`).toBe(expected)
        }
      }
      expect(ta.toString()).toBe(tb.toString())
      pi.destroy()
    })
  }

  it('resolves positions of another text or unknown clients as null', () => {
    const doc = new Y.Doc()
    const t = doc.getText('text')
    t.insert(0, 'hello')
    const other = doc.getText('other')
    other.insert(0, 'x')
    const pi = new PositionIndex(t)
    expect(pi.toIndex(Y.createRelativePositionFromTypeIndex(other, 0))).toBeNull()
    expect(pi.toIndex(new Y.RelativePosition(null, 'text', Y.createID(999999, 5), 0))).toBeNull()
    expect(pi.toIndex(Y.createRelativePositionFromTypeIndex(t, 5))).toBe(5)
    expect(pi.toIndex(Y.createRelativePositionFromTypeIndex(t, 2))).toBe(2)
  })
})

describe('PositionIndex cost', () => {
  it('after a local edit near the cursor it does not walk the whole history', () => {
    const doc = new Y.Doc()
    const t = doc.getText('text')
    t.insert(0, 'x'.repeat(16))
    // 60k scattered edits: a long item list
    for (let i = 0; i < 60_000; i++) t.insert((i * 7919) % t.length, 'y')
    const pi = new PositionIndex(t)
    const end = t.length - 3
    t.insert(end, 'z') // a local edit at the cursor refreshes Yjs' search markers there
    const reps = 200
    let t0 = performance.now()
    for (let i = 0; i < reps; i++) pi.toRelative(end + 1)
    const fast = performance.now() - t0
    t0 = performance.now()
    for (let i = 0; i < reps; i++) Y.createRelativePositionFromTypeIndex(t, end + 1)
    const slow = performance.now() - t0
    expect(fast * 10).toBeLessThan(slow)
    const rpos = Y.createRelativePositionFromTypeIndex(t, end + 1)
    t0 = performance.now()
    for (let i = 0; i < reps; i++) pi.toIndex(rpos)
    const fastAbs = performance.now() - t0
    t0 = performance.now()
    for (let i = 0; i < reps; i++) Y.createAbsolutePositionFromRelativePosition(rpos, doc)
    const slowAbs = performance.now() - t0
    expect(fastAbs * 10).toBeLessThan(slowAbs)
    expect(pi.toIndex(rpos)).toBe(end + 1)
  })
})
