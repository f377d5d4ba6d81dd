/**
 * What the editor loads right after the text is on screen (a separate
 * chunk, see `deferred.ts`): Markdown parsing and highlighting, and
 * CodeMirror's standard key bindings (`@codemirror/commands`).
 */
import { keymap } from '@codemirror/view'
import { defaultKeymap } from '@codemirror/commands'
import type { Extension } from '@codemirror/state'
import { markdownSupport } from './markdown.ts'

export { markdownSupport, markdownHighlight } from './markdown.ts'

/** Markdown support plus the standard keymap (after the undo keys, which keep precedence). */
export function editorExtras(): Extension {
  return [keymap.of(defaultKeymap), markdownSupport()]
}
