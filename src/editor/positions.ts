/**
 * Fast conversions between editor offsets and Yjs relative positions.
 *
 * Yjs stores text as a linked list of items, and its public
 * `createRelativePositionFromTypeIndex` / `createAbsolutePositionFromRelativePosition`
 * walk that list from one end: O(items). A document with a long edit history
 * has hundreds of thousands of items, so doing that on every keystroke (as
 * y-codemirror.next does for cursors and undo selections) makes typing lag.
 *
 * `PositionIndex` starts each walk from the nearest *known* item instead: the
 * search markers Yjs itself keeps for Y.Text (valid between transactions,
 * refreshed by every local edit) plus a few positions it resolved itself since
 * the text last changed. Results are identical to the Yjs functions; only the
 * starting point of the walk differs.
 */
import * as Y from 'yjs'

/** An item whose start offset (countable characters before it) is known. */
interface Anchor {
  item: Y.Item
  index: number
}

/** Internals of Y.Text / Y.Doc this module reads (stable across Yjs 13.x). */
interface TextInternals {
  _start: Y.Item | null
  _searchMarker: { p: Y.Item; index: number }[] | null
}
interface DocInternals {
  _transactionCleanups: unknown[]
  store: { clients: Map<number, { id: Y.ID; length: number }[]> }
}

/** How many self-resolved anchors are remembered between changes. */
const CACHE_SIZE = 8

const counts = (item: Y.Item) => !item.deleted && item.countable

/** Offset ↔ relative-position conversion for one Y.Text; call `destroy()` when done. */
export class PositionIndex {
  readonly ytext: Y.Text
  #cache: Anchor[] = []
  #typeId: Y.ID | null
  #tname: string | null

  constructor(ytext: Y.Text) {
    this.ytext = ytext
    const base = Y.createRelativePositionFromTypeIndex(ytext, 0)
    this.#typeId = base.type
    this.#tname = base.tname
    ytext.observe(this.#invalidate)
  }

  /** Stops listening to the text. */
  destroy(): void {
    this.ytext.unobserve(this.#invalidate)
    this.#cache = []
  }

  #invalidate = () => {
    this.#cache = []
  }

  /** True outside of any Yjs transaction (including its cleanup phase), when markers and item links are settled. */
  #quiescent(): boolean {
    const doc = this.ytext.doc as unknown as DocInternals | null
    return doc !== null && doc._transactionCleanups.length === 0
  }

  #anchors(): Anchor[] {
    const markers = (this.ytext as unknown as TextInternals)._searchMarker ?? []
    const out: Anchor[] = []
    for (const m of markers) out.push({ item: m.p, index: m.index })
    for (const a of this.#cache) out.push(a)
    return out
  }

  #remember(item: Y.Item, index: number) {
    if (!this.#quiescent()) return
    this.#cache = [{ item, index }, ...this.#cache.filter((a) => a.item !== item)].slice(0, CACHE_SIZE)
  }

  #rel(item: Y.ID | null, assoc: number): Y.RelativePosition {
    return new Y.RelativePosition(this.#typeId, this.#tname, item, assoc)
  }

  /** Same result as `Y.createRelativePositionFromTypeIndex(ytext, index, assoc)`. */
  toRelative(index: number, assoc = 0): Y.RelativePosition {
    const start = (this.ytext as unknown as TextInternals)._start
    if (assoc < 0) {
      if (index === 0) return this.#rel(null, assoc)
      index--
    }
    if (start === null) return this.#rel(null, assoc)
    // Nearest known anchor, else the list head.
    let p: Y.Item = start
    let pindex = 0
    let best = index
    for (const a of this.#anchors()) {
      const d = Math.abs(a.index - index)
      if (d < best) {
        best = d
        p = a.item
        pindex = a.index
      }
    }
    while (pindex > index && p.left !== null) {
      p = p.left
      if (counts(p)) pindex -= p.length
    }
    let t: Y.Item | null = p
    while (t !== null) {
      if (counts(t)) {
        if (pindex + t.length > index) {
          this.#remember(t, pindex)
          return this.#rel(Y.createID(t.id.client, t.id.clock + index - pindex), assoc)
        }
        pindex += t.length
      }
      if (t.right === null && assoc < 0) return this.#rel(t.lastId, assoc)
      t = t.right
    }
    return this.#rel(null, assoc)
  }

  /**
   * Same result as `Y.createAbsolutePositionFromRelativePosition(rpos, doc).index`
   * for positions in this text (without following undone deletions); null when
   * the position is unknown here or belongs to another type.
   */
  toIndex(rpos: Y.RelativePosition): number | null {
    const doc = this.ytext.doc as unknown as (DocInternals & Y.Doc) | null
    if (!doc) return null
    const id = rpos.item
    if (id === null) {
      if (rpos.tname !== this.#tname) return null
      return rpos.assoc >= 0 ? this.ytext.length : 0
    }
    const structs = doc.store.clients.get(id.client)
    if (!structs || structs.length === 0) return null
    const last = structs[structs.length - 1]
    if (last.id.clock + last.length <= id.clock) return null
    const item = Y.getItem(doc.store as unknown as Parameters<typeof Y.getItem>[0], id)
    if (!(item instanceof Y.Item) || item.parent !== this.ytext) return null
    const offset = counts(item) ? id.clock - item.id.clock + (rpos.assoc >= 0 ? 0 : 1) : 0
    return this.#startOf(item) + offset
  }

  /** Countable characters before `item`: walks left to the nearest known anchor (or the head), then remembers the answer. */
  #startOf(item: Y.Item): number {
    const known = new Map<Y.Item, number>()
    for (const a of this.#anchors()) known.set(a.item, a.index)
    const direct = known.get(item)
    if (direct !== undefined) return direct
    let index = 0
    let n = item.left
    while (n !== null) {
      const k = known.get(n)
      if (k !== undefined) {
        index += k + (counts(n) ? n.length : 0)
        break
      }
      if (counts(n)) index += n.length
      n = n.left
    }
    this.#remember(item, index)
    return index
  }
}
