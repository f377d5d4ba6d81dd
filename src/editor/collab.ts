/**
 * Binds the editor to a shared Y.Text with y-codemirror.next: text sync,
 * remote carets/selections from awareness, and an UndoManager that only
 * tracks this user's own edits.
 *
 * y-codemirror.next converts cursor offsets to Yjs positions by walking the
 * whole item list on every keystroke; on documents with a long history that
 * makes typing lag. We keep its sync and undo plugins but give them a
 * `YSyncConfig` whose conversions use `PositionIndex`, and replace its
 * remote-selections plugin with `remoteCarets`.
 */
import * as Y from 'yjs'
import type { Awareness } from 'y-protocols/awareness'
import { YRange, YSyncConfig, yCollab, yRemoteSelections, ySyncFacet } from 'y-codemirror.next'
import type { Extension } from '@codemirror/state'
import type { SelectionRange } from '@codemirror/state'
import { PositionIndex } from './positions.ts'
import { remoteCarets } from './remote-carets.ts'

/** A `YSyncConfig` whose offset ↔ position conversions start from nearby known items. */
export class FastYSyncConfig extends YSyncConfig {
  readonly positions: PositionIndex

  constructor(ytext: Y.Text, awareness: Awareness, positions: PositionIndex) {
    super(ytext, awareness)
    this.positions = positions
  }

  override toYPos(pos: number, assoc = 0): Y.RelativePosition {
    return this.positions.toRelative(pos, assoc)
  }

  override fromYPos(rpos: Y.RelativePosition | object): { pos: number; assoc: number } {
    const rel = rpos instanceof Y.RelativePosition ? rpos : Y.createRelativePositionFromJSON(rpos)
    const pos = this.positions.toIndex(rel)
    if (pos === null) return super.fromYPos(rpos)
    return { pos, assoc: rel.assoc }
  }

  override toYRange(range: SelectionRange): YRange {
    const anchor = this.toYPos(range.anchor, range.assoc)
    return new YRange(anchor, range.head === range.anchor ? anchor : this.toYPos(range.head, range.assoc))
  }
}

/** The collaboration extension, the undo manager it uses, and a `destroy` for both. */
export interface Collab {
  extension: Extension
  undoManager: Y.UndoManager
  destroy(): void
}

/** Creates the binding for `text`. Undo/redo only revert edits made through this editor. */
export function collab(text: Y.Text, awareness: Awareness): Collab {
  const undoManager = new Y.UndoManager(text, { captureTimeout: 500 })
  const positions = new PositionIndex(text)
  const config = new FastYSyncConfig(text, awareness, positions)
  // yCollab's own config is superseded: ySyncFacet uses the last value given.
  const base = (yCollab(text, awareness, { undoManager }) as Extension[]).filter((e) => e !== yRemoteSelections)
  return {
    extension: [base, ySyncFacet.of(config), remoteCarets({ ytext: text, awareness, positions })],
    undoManager,
    destroy() {
      undoManager.destroy()
      positions.destroy()
    },
  }
}
