/**
 * Key bindings of the first paint: collaborative undo/redo (Mod-z, Mod-y,
 * Mod-Shift-z). Everything else (bold/italic, find, CodeMirror's standard
 * keys, Tab to indent, Markdown list keys) comes with the extras
 * (`extras.ts`). Typing, Enter and Backspace work without them: CodeMirror
 * handles those input events itself.
 */
import { keymap } from '@codemirror/view'
import { yUndoManagerKeymap } from 'y-codemirror.next'
import type { Extension } from '@codemirror/state'

/** Undo and redo through the shared Y.UndoManager. */
export function undoKeymap(): Extension {
  return keymap.of(yUndoManagerKeymap)
}
