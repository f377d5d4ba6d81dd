/**
 * In-document find and replace (@codemirror/search): a panel at the top of
 * the editor, opened with Mod-f (keys in `murmurKeymap`) or `openFind`. It
 * searches the editor state, so it sees lines of long documents that are not
 * drawn, which the browser's own find cannot.
 */
import { highlightSelectionMatches, openSearchPanel, search } from '@codemirror/search'
import type { Extension } from '@codemirror/state'
import type { EditorView } from '@codemirror/view'

/** The search panel (at the top) and highlighting of other occurrences of the selection. */
export function findReplace(): Extension {
  return [search({ top: true }), highlightSelectionMatches()]
}

/** Opens the find and replace panel and focuses its search field. */
export function openFind(view: EditorView): void {
  openSearchPanel(view)
}
