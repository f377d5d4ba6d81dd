/**
 * Key bindings: collaborative undo/redo (Mod-z, Mod-y, Mod-Shift-z) first,
 * then CodeMirror's standard editing keys.
 */
import { keymap } from '@codemirror/view'
import { defaultKeymap } from '@codemirror/commands'
import { yUndoManagerKeymap } from 'y-codemirror.next'
import type { Extension } from '@codemirror/state'

/** murmur's keymap. */
export function murmurKeymap(): Extension {
  return keymap.of([...yUndoManagerKeymap, ...defaultKeymap])
}
