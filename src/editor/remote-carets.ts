/**
 * Remote carets and selections from awareness, and publishing our own cursor —
 * a replacement for y-codemirror.next's `yRemoteSelections` that does no work
 * proportional to the document per keystroke:
 *
 * - our cursor is converted to a relative position only when *we* moved it or
 *   edited (remote edits do not move a relative position), via `PositionIndex`;
 * - remote carets are re-resolved only when that peer's awareness changed
 *   (batched to one pass per animation frame); on document changes the
 *   existing decorations are mapped through the change.
 *
 * Uses the same CSS classes as y-codemirror.next (`cm-ySelection`,
 * `cm-ySelectionCaret`, `cm-ySelectionInfo`, …) so its theme applies.
 *
 * A name label shows only while that peer is active (their caret moved in the
 * last `ACTIVE_MS`, class `cm-ySelectionCaret-active`) or on hover, so labels
 * do not cover the line above for good. An active peer whose caret is
 * scrolled out of sight gets a marker at the top or bottom edge
 * (`.cm-remoteOffscreen`); clicking it, or `revealRemoteCaret`, scrolls there.
 */
import { StateEffect, type Extension, type Range } from '@codemirror/state'
import { Decoration, EditorView, ViewPlugin, WidgetType, type DecorationSet, type ViewUpdate } from '@codemirror/view'
import * as Y from 'yjs'
import type { Awareness } from 'y-protocols/awareness'
import { ySyncAnnotation, yRemoteSelectionsTheme } from 'y-codemirror.next'
import type { PositionIndex } from './positions.ts'

/** Forces a rebuild of remote decorations from awareness. */
const refreshRemote = StateEffect.define<null>()

/** How long a peer's name label stays up after their caret moved, ms. */
export const ACTIVE_MS = 3000

/** A remote caret: a coloured bar with the peer's name above it (shown while active or hovered). */
class CaretWidget extends WidgetType {
  constructor(
    readonly color: string,
    readonly name: string,
    readonly active: boolean,
  ) {
    super()
  }

  toDOM(): HTMLElement {
    // Same DOM as y-codemirror.next's caret (the label is a text node in .cm-ySelectionInfo);
    // copying uses the editor state, so the label never ends up in copied text.
    const caret = document.createElement('span')
    caret.className = this.active ? 'cm-ySelectionCaret cm-ySelectionCaret-active' : 'cm-ySelectionCaret'
    caret.style.backgroundColor = this.color
    caret.style.borderColor = this.color
    const info = document.createElement('span')
    info.className = 'cm-ySelectionInfo'
    info.textContent = this.name
    caret.append(info)
    return caret
  }

  eq(other: CaretWidget): boolean {
    return other.color === this.color && other.name === this.name && other.active === this.active
  }

  get estimatedHeight(): number {
    return -1
  }

  ignoreEvent(): boolean {
    return true
  }
}

interface RemoteCursor {
  anchor: number
  head: number
  color: string
  colorLight: string
  name: string
  /** Label shown until this time (ms, `Date.now()`). */
  activeUntil: number
}

/** What `revealRemoteCaret` needs from a mounted plugin. */
interface Revealer {
  reveal(clientId: number): boolean
}
const revealers = new WeakMap<EditorView, Revealer>()

/**
 * Scrolls `view` to the caret of the peer with awareness id `clientId` and
 * shows their name; false when that peer has no caret in this document.
 */
export function revealRemoteCaret(view: EditorView, clientId: number): boolean {
  return revealers.get(view)?.reveal(clientId) ?? false
}

type AwarenessState = { cursor?: { anchor?: unknown; head?: unknown } | null; user?: { name?: string; color?: string; colorLight?: string } }

/** Options of `remoteCarets`. */
export interface RemoteCaretsConfig {
  ytext: Y.Text
  awareness: Awareness
  positions: PositionIndex
}

/** The remote carets/selections extension (plus y-codemirror.next's caret theme). */
export function remoteCarets(config: RemoteCaretsConfig): Extension {
  const { ytext, awareness, positions } = config

  const plugin = ViewPlugin.fromClass(
    class {
      decorations: DecorationSet = Decoration.none
      cursors = new Map<number, RemoteCursor>()
      dirty = new Set<number>()
      frame: number | null = null
      publishTimer: ReturnType<typeof setTimeout> | null = null
      expiryTimer: ReturnType<typeof setTimeout> | null = null
      markers: HTMLElement
      view: EditorView

      constructor(view: EditorView) {
        this.view = view
        this.markers = document.createElement('div')
        this.markers.className = 'cm-remoteOffscreen'
        view.dom.append(this.markers)
        view.scrollDOM.addEventListener('scroll', this.onScroll, { passive: true })
        revealers.set(view, this)
        awareness.on('change', this.onAwareness)
        for (const id of awareness.getStates().keys()) if (id !== awareness.clientID) this.dirty.add(id)
        this.resolveDirty()
        this.decorations = this.build()
        this.scheduleExpiry()
        this.measureOffscreen()
      }

      onScroll = () => this.measureOffscreen()

      reveal(clientId: number): boolean {
        const c = this.cursors.get(clientId)
        if (!c) return false
        c.activeUntil = Date.now() + ACTIVE_MS
        this.view.dispatch({ effects: [refreshRemote.of(null), EditorView.scrollIntoView(c.head, { y: 'center' })] })
        return true
      }

      /** Finds active peers whose caret is scrolled out of sight and shows a marker for each at that edge. */
      measureOffscreen() {
        const now = Date.now()
        let active = false
        for (const c of this.cursors.values()) active ||= c.activeUntil > now
        if (!active && this.markers.childElementCount === 0) return // nothing to show or to clear: no layout read
        this.view.requestMeasure({
          key: this.markers,
          read: (view) => {
            const box = view.scrollDOM.getBoundingClientRect()
            const outer = view.dom.getBoundingClientRect()
            const now = Date.now()
            const out: { id: number; c: RemoteCursor; dir: 'up' | 'down' }[] = []
            for (const [id, c] of this.cursors) {
              if (c.activeUntil <= now) continue
              const block = view.lineBlockAt(c.head)
              const top = view.documentTop + block.top
              if (top + block.height <= box.top) out.push({ id, c, dir: 'up' })
              else if (top >= box.bottom) out.push({ id, c, dir: 'down' })
            }
            return { out, top: box.top - outer.top, bottom: outer.bottom - box.bottom }
          },
          write: ({ out, top, bottom }) => this.renderMarkers(out, top, bottom),
        })
      }

      /** Shows one marker button per off-screen active peer, reusing the buttons already there (focus survives updates). */
      renderMarkers(out: { id: number; c: RemoteCursor; dir: 'up' | 'down' }[], top: number, bottom: number) {
        const old = new Map<string, HTMLButtonElement>()
        for (const b of this.markers.children) if (b instanceof HTMLButtonElement) old.set(b.dataset.peer ?? '', b)
        const stacked = { up: 0, down: 0 }
        for (const { id, c, dir } of out) {
          let b = old.get(String(id))
          old.delete(String(id))
          if (!b) {
            b = document.createElement('button')
            b.type = 'button'
            b.dataset.testid = 'offscreen-peer'
            b.dataset.peer = String(id)
            b.onclick = () => this.reveal(id)
            this.markers.append(b)
          }
          b.className = `cm-remoteOffscreen-marker cm-remoteOffscreen-${dir}`
          b.dataset.direction = dir
          b.style.backgroundColor = c.color
          b.style.top = dir === 'up' ? `${top + 8 + 30 * stacked.up++}px` : ''
          b.style.bottom = dir === 'down' ? `${bottom + 8 + 30 * stacked.down++}px` : ''
          b.textContent = `${dir === 'up' ? '↑' : '↓'} ${c.name}`
          b.title = `${c.name} is editing ${dir === 'up' ? 'above' : 'below'} — show`
        }
        for (const b of old.values()) b.remove()
      }

      /** Rebuilds once the earliest shown label expires. */
      scheduleExpiry() {
        if (this.expiryTimer !== null) clearTimeout(this.expiryTimer)
        this.expiryTimer = null
        const now = Date.now()
        let next = Infinity
        for (const c of this.cursors.values()) if (c.activeUntil > now) next = Math.min(next, c.activeUntil)
        if (next === Infinity) return
        this.expiryTimer = setTimeout(() => {
          this.expiryTimer = null
          this.view.dispatch({ effects: refreshRemote.of(null) })
        }, next - now + 20)
      }

      onAwareness = ({ added, updated, removed }: { added: number[]; updated: number[]; removed: number[] }) => {
        let any = false
        for (const id of [...added, ...updated, ...removed]) {
          if (id === awareness.clientID) continue
          this.dirty.add(id)
          any = true
        }
        if (any && this.frame === null) {
          const schedule = typeof requestAnimationFrame === 'function' ? requestAnimationFrame : (f: () => void) => setTimeout(f, 16) as unknown as number
          this.frame = schedule(() => {
            this.frame = null
            this.view.dispatch({ effects: refreshRemote.of(null) })
          })
        }
      }

      /** Re-resolves the remote peers whose awareness changed. */
      resolveDirty() {
        const states = awareness.getStates() as Map<number, AwarenessState>
        for (const id of this.dirty) {
          const state = states.get(id)
          const c = state?.cursor
          if (!state || !c || c.anchor == null || c.head == null) {
            this.cursors.delete(id)
            continue
          }
          try {
            const anchor = positions.toIndex(Y.createRelativePositionFromJSON(c.anchor))
            const head = positions.toIndex(Y.createRelativePositionFromJSON(c.head))
            const len = this.view.state.doc.length
            if (anchor === null || head === null || anchor > len || head > len) {
              this.cursors.delete(id)
              continue
            }
            const color = state.user?.color ?? '#30bced'
            const prev = this.cursors.get(id)
            const moved = !prev || prev.anchor !== anchor || prev.head !== head
            const activeUntil = moved ? Date.now() + ACTIVE_MS : prev.activeUntil
            this.cursors.set(id, { anchor, head, color, colorLight: state.user?.colorLight ?? color + '33', name: state.user?.name ?? 'Anonymous', activeUntil })
          } catch {
            this.cursors.delete(id)
          }
        }
        this.dirty.clear()
      }

      build(): DecorationSet {
        const decos: Range<Decoration>[] = []
        const now = Date.now()
        for (const c of this.cursors.values()) {
          const from = Math.min(c.anchor, c.head)
          const to = Math.max(c.anchor, c.head)
          if (from < to) decos.push(Decoration.mark({ class: 'cm-ySelection', attributes: { style: `background-color: ${c.colorLight}` } }).range(from, to))
          decos.push(Decoration.widget({ side: c.head - c.anchor > 0 ? -1 : 1, widget: new CaretWidget(c.color, c.name, c.activeUntil > now) }).range(c.head))
        }
        return Decoration.set(decos, true)
      }

      update(update: ViewUpdate) {
        const remote = update.transactions.some((tr) => tr.annotation(ySyncAnnotation) !== undefined)
        if (update.docChanged) {
          for (const c of this.cursors.values()) {
            c.anchor = update.changes.mapPos(c.anchor, 1)
            c.head = update.changes.mapPos(c.head, 1)
          }
        }
        const refresh = update.transactions.some((tr) => tr.effects.some((e) => e.is(refreshRemote)))
        if (refresh) {
          this.resolveDirty()
          this.scheduleExpiry()
        }
        if (refresh || update.docChanged) this.decorations = this.build()
        if (refresh || update.docChanged || update.geometryChanged || update.viewportChanged) this.measureOffscreen()
        // Publish our cursor when we moved it or edited (remote edits leave relative positions valid).
        if ((update.selectionSet || update.docChanged || update.focusChanged) && !(remote && !update.selectionSet)) this.schedulePublish()
      }

      schedulePublish() {
        if (this.publishTimer !== null) return
        this.publishTimer = setTimeout(() => {
          this.publishTimer = null
          this.publish()
        }, 0)
      }

      publish() {
        const local = awareness.getLocalState() as AwarenessState | null
        if (local === null) return
        const view = this.view
        const focused = view.hasFocus && view.dom.ownerDocument.hasFocus()
        if (!focused) return // keep showing where we were, like y-codemirror.next
        const sel = view.state.selection.main
        if (ytext.length !== view.state.doc.length) return // mid-sync: the next update publishes
        const anchor = positions.toRelative(sel.anchor)
        const head = sel.head === sel.anchor ? anchor : positions.toRelative(sel.head)
        const cur = local.cursor
        const same =
          cur != null &&
          cur.anchor != null &&
          cur.head != null &&
          Y.compareRelativePositions(Y.createRelativePositionFromJSON(cur.anchor), anchor) &&
          Y.compareRelativePositions(Y.createRelativePositionFromJSON(cur.head), head)
        if (!same) awareness.setLocalStateField('cursor', { anchor, head })
      }

      destroy() {
        awareness.off('change', this.onAwareness)
        this.view.scrollDOM.removeEventListener('scroll', this.onScroll)
        this.markers.remove()
        revealers.delete(this.view)
        if (this.expiryTimer !== null) clearTimeout(this.expiryTimer)
        if (this.frame !== null) (typeof cancelAnimationFrame === 'function' ? cancelAnimationFrame : clearTimeout)(this.frame)
        if (this.publishTimer !== null) clearTimeout(this.publishTimer)
      }
    },
    { decorations: (v) => v.decorations },
  )
  return [yRemoteSelectionsTheme, plugin]
}
