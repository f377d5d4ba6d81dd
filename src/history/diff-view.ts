/**
 * A read-only view of the current text with a saved version's differences
 * marked (`@codemirror/merge`'s unified view): text the version has and the
 * document lost shows as deleted chunks, text added since as insertions.
 */
import { EditorState } from '@codemirror/state'
import { EditorView } from '@codemirror/view'
import { unifiedMergeView } from '@codemirror/merge'
import { murmurTheme } from '../editor/theme.ts'

/** Mounts the diff of `current` against `version` in `parent`; returns the view (destroy it when done). */
export function mountDiff(parent: HTMLElement, current: string, version: string): EditorView {
  return new EditorView({
    parent,
    state: EditorState.create({
      doc: current,
      extensions: [
        EditorState.readOnly.of(true),
        EditorView.editable.of(false),
        EditorView.lineWrapping,
        // Focusable (tabindex), so keyboard users can scroll it.
        EditorView.contentAttributes.of({ 'aria-label': 'Differences between this version and the current text', tabindex: '0' }),
        murmurTheme,
        unifiedMergeView({ original: version, mergeControls: false, collapseUnchanged: { margin: 2, minSize: 6 } }),
      ],
    }),
  })
}
