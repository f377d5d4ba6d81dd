/**
 * Binds the editor to a shared Y.Text with y-codemirror.next: text sync,
 * remote carets/selections from awareness, and an UndoManager that only
 * tracks this user's own edits.
 */
import * as Y from 'yjs'
import type { Awareness } from 'y-protocols/awareness'
import { yCollab } from 'y-codemirror.next'
import type { Extension } from '@codemirror/state'

/** The collaboration extension and the undo manager it uses (destroy it with the editor). */
export interface Collab {
  extension: Extension
  undoManager: Y.UndoManager
}

/** Creates the yCollab binding for `text`. Undo/redo only revert edits made through this editor. */
export function collab(text: Y.Text, awareness: Awareness): Collab {
  const undoManager = new Y.UndoManager(text, { captureTimeout: 500 })
  return { extension: yCollab(text, awareness, { undoManager }), undoManager }
}
