/**
 * Bold and italic as commands (Mod-b, Mod-i): wrap each selection in `**` or
 * `*`, or unwrap it when it is already wrapped; an empty selection gets an
 * empty pair with the cursor inside.
 */
import { EditorSelection, type EditorState, type StateCommand } from '@codemirror/state'
import { keymap, type KeyBinding } from '@codemirror/view'
import type { Extension } from '@codemirror/state'

/** True when `mark` surrounds `from..to` in `state` but is not part of a longer run (so `*` does not match inside `**`). */
function markedAround(state: EditorState, from: number, to: number, mark: string): boolean {
  const n = mark.length
  if (from < n || to + n > state.doc.length) return false
  if (state.sliceDoc(from - n, from) !== mark || state.sliceDoc(to, to + n) !== mark) return false
  const c = mark[0]
  return state.sliceDoc(from - n - 1, from - n) !== c && state.sliceDoc(to + n, to + n + 1) !== c
}

/** A command that toggles `mark` around every selection range. */
export function toggleMark(mark: string): StateCommand {
  const n = mark.length
  return ({ state, dispatch }) => {
    if (state.readOnly) return false
    const tr = state.changeByRange((range) => {
      const { from, to } = range
      const inner = state.sliceDoc(from, to)
      if (markedAround(state, from, to, mark)) {
        return {
          changes: [
            { from: from - n, to: from },
            { from: to, to: to + n },
          ],
          range: EditorSelection.range(from - n, to - n),
        }
      }
      if (inner.length >= 2 * n && inner.startsWith(mark) && inner.endsWith(mark)) {
        return { changes: { from, to, insert: inner.slice(n, inner.length - n) }, range: EditorSelection.range(from, to - 2 * n) }
      }
      return {
        changes: [
          { from, insert: mark },
          { from: to, insert: mark },
        ],
        range: EditorSelection.range(from + n, to + n),
      }
    })
    dispatch(state.update(tr, { scrollIntoView: true, userEvent: 'input.format' }))
    return true
  }
}

/** `**bold**`. */
export const toggleStrong: StateCommand = toggleMark('**')
/** `*italic*`. */
export const toggleEmphasis: StateCommand = toggleMark('*')

/** Mod-b and Mod-i. */
export const emphasisKeymap: readonly KeyBinding[] = [
  { key: 'Mod-b', run: toggleStrong },
  { key: 'Mod-i', run: toggleEmphasis },
]

/** The emphasis key bindings as an extension. */
export function emphasis(): Extension {
  return keymap.of(emphasisKeymap)
}
