/**
 * The editor's public face: `createEditor` mounts a CodeMirror 6 view bound
 * to a shared Y.Text. Everything else in this folder is one concept each.
 */
import { Compartment, EditorState } from '@codemirror/state'
import { EditorView, drawSelection, dropCursor, highlightSpecialChars, placeholder } from '@codemirror/view'
import type * as Y from 'yjs'
import type { Awareness } from 'y-protocols/awareness'
import { collab } from './collab.ts'
import { crashGuard } from './guard.ts'
import { murmurKeymap } from './keymap.ts'
import { markdownSupport } from './markdown.ts'
import { findReplace, openFind } from './search.ts'
import { revealRemoteCaret } from './remote-carets.ts'
import { murmurTheme } from './theme.ts'

export { collab, FastYSyncConfig } from './collab.ts'
export { PositionIndex } from './positions.ts'
export { remoteCarets, revealRemoteCaret } from './remote-carets.ts'
export { emphasis, toggleMark, toggleStrong, toggleEmphasis } from './emphasis.ts'
export { findReplace, openFind } from './search.ts'
export { crashGuard } from './guard.ts'
export { murmurKeymap } from './keymap.ts'
export { markdownSupport, markdownHighlight } from './markdown.ts'
export { murmurTheme } from './theme.ts'

/** What `createEditor` needs. */
export interface EditorOptions {
  /** Element the editor is appended to. */
  parent: HTMLElement
  /** The shared text. */
  text: Y.Text
  /** Presence, for remote carets. */
  awareness: Awareness
  /** Focus the editor once mounted. */
  autofocus?: boolean
}

/** A mounted editor; `destroy()` removes it and its undo manager. */
export interface MurmurEditor {
  view: EditorView
  /** Opens the find and replace panel. */
  find(): void
  /** Scrolls to a collaborator's caret and shows their name; false when their caret is not known. */
  revealPeer(clientId: number): boolean
  /** Makes the text read-only (a read-only link) or editable again. */
  setReadOnly(readOnly: boolean): void
  destroy(): void
}

/** Mounts a markdown editor with line wrapping, bound to `text` with yCollab. */
export function createEditor(opts: EditorOptions): MurmurEditor {
  const binding = collab(opts.text, opts.awareness)
  const readOnly = new Compartment()
  const state = EditorState.create({
    doc: opts.text.toString(),
    extensions: [
      crashGuard(),
      murmurKeymap(),
      highlightSpecialChars(),
      drawSelection(),
      dropCursor(),
      EditorView.lineWrapping,
      markdownSupport(),
      findReplace(),
      placeholder('Start writing…'),
      EditorView.contentAttributes.of({ 'aria-label': 'Document text', spellcheck: 'true', autocapitalize: 'sentences' }),
      murmurTheme,
      binding.extension,
      readOnly.of([]),
    ],
  })
  const view = new EditorView({ state, parent: opts.parent })
  if (opts.autofocus) view.focus()
  return {
    view,
    find: () => openFind(view),
    revealPeer: (clientId) => revealRemoteCaret(view, clientId),
    setReadOnly(on) {
      view.dispatch({ effects: readOnly.reconfigure(on ? [EditorState.readOnly.of(true), EditorView.contentAttributes.of({ 'aria-readonly': 'true' })] : []) })
    },
    destroy() {
      view.destroy()
      binding.destroy()
    },
  }
}
