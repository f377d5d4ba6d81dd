/**
 * Coverage tags (`src/private/coverage.ts`): the author of a change and a
 * peer that applies it compute the same tag, whatever the transport did to
 * the bytes; different changes, or the same change under another link key,
 * get different tags.
 */
import { describe, expect, it } from 'vitest'
import * as Y from 'yjs'
import { coverageOf, coverageTag, tagKey } from '../../src/private/coverage.ts'
import { deriveDocKeys } from '../../src/private/crypto.ts'
import { newLinkKey } from '../../src/private/key.ts'

/** The update events of `doc` while `fn` runs. */
function updatesOf(doc: Y.Doc, fn: () => void): Uint8Array[] {
  const out: Uint8Array[] = []
  const on = (u: Uint8Array) => out.push(u)
  doc.on('update', on)
  fn()
  doc.off('update', on)
  return out
}

describe('coverage tags', () => {
  it("the author's update and a peer's update event for it have the same tag; others differ", async () => {
    const key = (await deriveDocKeys(newLinkKey(), 'doc')).tag
    const author = new Y.Doc()
    const peer = new Y.Doc()
    const seed = updatesOf(author, () => author.getText('text').insert(0, 'hello world'))
    Y.applyUpdate(peer, seed[0]!)
    // A keystroke, a deletion, and a change with both.
    for (const edit of [(t: Y.Text) => t.insert(5, ','), (t: Y.Text) => t.delete(0, 1), (t: Y.Text) => (t.delete(2, 2), t.insert(2, 'LL'))]) {
      const [mine] = updatesOf(author, () => author.transact(() => edit(author.getText('text'))))
      const [theirs] = updatesOf(peer, () => Y.applyUpdate(peer, mine!, 'webrtc'))
      const [a, b] = [await coverageTag(key, mine!), await coverageTag(key, theirs!)]
      expect(a).not.toBeNull()
      expect(tagKey(a!)).toBe(tagKey(b!))
      // Merged with the structure of another update (as Yjs or a transport may re-encode it): same coverage.
      expect(tagKey((await coverageTag(key, Y.mergeUpdates([mine!])))!)).toBe(tagKey(a!))
    }
    const [x] = updatesOf(author, () => author.getText('text').insert(0, 'x'))
    const [y] = updatesOf(author, () => author.getText('text').insert(0, 'y'))
    expect(tagKey((await coverageTag(key, x!))!)).not.toBe(tagKey((await coverageTag(key, y!))!))
    const otherKey = (await deriveDocKeys(newLinkKey(), 'doc')).tag
    expect(tagKey((await coverageTag(otherKey, x!))!)).not.toBe(tagKey((await coverageTag(key, x!))!))
  })

  it('an update that covers nothing has no tag; the same deletions made in one step or three cover the same', () => {
    const base = new Y.Doc()
    expect(coverageOf(Y.encodeStateAsUpdate(base))).toBeNull()
    base.getText('text').insert(0, 'abcdef')
    const copy = () => {
      const d = new Y.Doc()
      Y.applyUpdate(d, Y.encodeStateAsUpdate(base))
      return d
    }
    const once = copy()
    const [whole] = updatesOf(once, () => once.getText('text').delete(1, 3))
    const stepwise = copy()
    const steps = updatesOf(stepwise, () => [0, 1, 2].forEach(() => stepwise.getText('text').delete(1, 1)))
    expect(steps).toHaveLength(3)
    const a = coverageOf(whole!)
    expect(a).not.toBeNull()
    expect([...coverageOf(Y.mergeUpdates(steps))!]).toEqual([...a!])
  })
})
