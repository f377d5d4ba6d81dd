/**
 * Key bindings: collaborative undo/redo (Mod-z, Mod-y, Mod-Shift-z), bold and
 * italic (Mod-b, Mod-i), find and replace (Mod-f, …), then CodeMirror's
 * standard editing keys, and Tab/Shift-Tab to indent. Tab stays a way out of
 * the editor for keyboard users: CodeMirror lets the Tab pressed right after
 * Escape move focus instead of indenting.
 */
import { keymap } from '@codemirror/view'
import { defaultKeymap, indentWithTab } from '@codemirror/commands'
import { searchKeymap } from '@codemirror/search'
import { yUndoManagerKeymap } from 'y-codemirror.next'
import type { Extension } from '@codemirror/state'
import { emphasisKeymap } from './emphasis.ts'

/** murmur's keymap. */
export function murmurKeymap(): Extension {
  return keymap.of([...yUndoManagerKeymap, ...emphasisKeymap, ...searchKeymap, ...defaultKeymap, indentWithTab])
}
