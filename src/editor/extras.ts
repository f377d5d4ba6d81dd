/**
 * What the editor loads right after the text is on screen (a separate
 * chunk, see `deferred.ts`): Markdown parsing, highlighting and list keys,
 * bold and italic (Mod-b, Mod-i), find and replace (Mod-f, …), CodeMirror's
 * standard key bindings, and Tab/Shift-Tab to indent. Tab stays a way out of
 * the editor for keyboard users: CodeMirror lets the Tab pressed right after
 * Escape move focus instead of indenting.
 */
import { keymap } from '@codemirror/view'
import { defaultKeymap, indentWithTab } from '@codemirror/commands'
import { searchKeymap } from '@codemirror/search'
import type { Extension } from '@codemirror/state'
import { emphasisKeymap } from './emphasis.ts'
import { markdownSupport } from './markdown.ts'
import { findReplace } from './search.ts'

export { markdownSupport, markdownHighlight } from './markdown.ts'

/** Markdown support, find and replace, and the keys (after the undo keys, which keep precedence). */
export function editorExtras(): Extension {
  return [keymap.of([...emphasisKeymap, ...searchKeymap, ...defaultKeymap, indentWithTab]), markdownSupport(), findReplace()]
}
