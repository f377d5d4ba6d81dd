/**
 * Restore: the changes that turn the current text into a saved version, as
 * a minimal character diff (`diff.ts`), so untouched text keeps its identity
 * and concurrent edits elsewhere merge as usual.
 */
import type { EditorView } from '@codemirror/view'
import type * as Y from 'yjs'
import { textChanges } from './diff.ts'

/** The changes that make a current text equal to a target (see `diff.ts`). */
export { textChanges as restoreChanges, type TextChange } from './diff.ts'

/**
 * Makes `text` equal to `target` as one Yjs transaction with `origin`
 * (give the origin an UndoManager tracks to make it undoable).
 */
export function restoreText(text: Y.Text, target: string, origin: unknown): void {
  const changes = textChanges(text.toString(), target)
  if (changes.length === 0) return
  text.doc!.transact(() => {
    for (let i = changes.length - 1; i >= 0; i--) {
      const c = changes[i]
      if (c.to > c.from) text.delete(c.from, c.to - c.from)
      if (c.insert) text.insert(c.from, c.insert)
    }
  }, origin)
}

/**
 * Restores `target` through the editor: one CodeMirror transaction, which
 * y-codemirror.next turns into one Yjs transaction on this user's undo stack
 * (its own step: Mod-z undoes exactly the restore). Returns false when the
 * text already equals `target`.
 */
export function restoreInEditor(view: EditorView, undoManager: Y.UndoManager | null, target: string): boolean {
  const changes = textChanges(view.state.doc.toString(), target)
  if (changes.length === 0) return false
  undoManager?.stopCapturing()
  view.dispatch({ changes, userEvent: 'history.restore', scrollIntoView: true })
  undoManager?.stopCapturing()
  return true
}
