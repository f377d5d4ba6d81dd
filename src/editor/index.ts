/**
 * The editor's public face: `createEditor` mounts a CodeMirror 6 view bound
 * to a shared Y.Text. Everything else in this folder is one concept each.
 */
import { Compartment, EditorState } from '@codemirror/state'
import { EditorView, drawSelection, dropCursor, highlightSpecialChars, placeholder } from '@codemirror/view'
import type * as Y from 'yjs'
import type { Awareness } from 'y-protocols/awareness'
import { collab } from './collab.ts'
import { deferred } from './deferred.ts'
import { crashGuard } from './guard.ts'
import { undoKeymap } from './keymap.ts'
import { revealRemoteCaret } from './remote-carets.ts'
import { murmurTheme } from './theme.ts'

export { collab, FastYSyncConfig } from './collab.ts'
export { PositionIndex } from './positions.ts'
export { remoteCarets, revealRemoteCaret } from './remote-carets.ts'
export { crashGuard } from './guard.ts'
export { undoKeymap } from './keymap.ts'
export { deferred, type Deferred } from './deferred.ts'
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
  /** Load the extras (Markdown, keys, find) only after this resolves (default: at once), so they do not compete with the text. */
  extrasAfter?: Promise<unknown>
}

/** A mounted editor; `destroy()` removes it and its undo manager. */
export interface MurmurEditor {
  view: EditorView
  /** This user's undo history (Mod-z); changes with its tracked origins land on it. */
  undoManager: Y.UndoManager
  /** Opens the find and replace panel (its code loads on first use if the extras have not yet). */
  find(): void
  /** Scrolls to a collaborator's caret and shows their name; false when their caret is not known. */
  revealPeer(clientId: number): boolean
  /** Makes the text read-only (a read-only link) or editable again. */
  setReadOnly(readOnly: boolean): void
  destroy(): void
}

/**
 * Mounts a markdown editor with line wrapping, bound to `text` with yCollab.
 * The text shows and takes typing at once; Markdown highlighting and keys,
 * bold/italic, find and replace and the standard keymap (`extras.ts`, a
 * separate chunk) are added once loaded (after `extrasAfter`).
 */
export function createEditor(opts: EditorOptions): MurmurEditor {
  const binding = collab(opts.text, opts.awareness)
  const readOnly = new Compartment()
  const extras = deferred('the Markdown extras', () => import('./extras.ts').then((m) => m.editorExtras()))
  const state = EditorState.create({
    doc: opts.text.toString(),
    extensions: [
      crashGuard(),
      undoKeymap(),
      extras.extension,
      highlightSpecialChars(),
      drawSelection(),
      dropCursor(),
      EditorView.lineWrapping,
      placeholder('Start writing…'),
      EditorView.contentAttributes.of({ 'aria-label': 'Document text', spellcheck: 'true', autocapitalize: 'sentences' }),
      murmurTheme,
      binding.extension,
      readOnly.of([]),
    ],
  })
  const view = new EditorView({ state, parent: opts.parent })
  if (opts.autofocus) view.focus()
  void Promise.resolve(opts.extrasAfter).then(() => extras.load(view))
  return {
    view,
    undoManager: binding.undoManager,
    find: () => void import('./search.ts').then((m) => m.openFind(view)),
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
