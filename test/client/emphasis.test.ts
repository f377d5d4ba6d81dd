import { describe, expect, it } from 'vitest'
import { EditorSelection, EditorState, type Transaction } from '@codemirror/state'
import { toggleEmphasis, toggleStrong } from '../../src/editor/emphasis.ts'
import { PALETTE } from '../../src/session/presence.ts'
import { colourName } from '../../src/ui/colour-names.ts'

/** Runs `cmd` on `doc` with the selection `from..to`; returns the new text and selection. */
function run(cmd: typeof toggleStrong, doc: string, from: number, to = from) {
  let state = EditorState.create({ doc, selection: EditorSelection.single(from, to) })
  cmd({ state, dispatch: (tr: Transaction) => (state = tr.state) })
  const sel = state.selection.main
  return { text: state.doc.toString(), from: sel.from, to: sel.to }
}

describe('bold and italic (Mod-b, Mod-i)', () => {
  it('wraps a selection and keeps it selected', () => {
    expect(run(toggleStrong, 'a word here', 2, 6)).toEqual({ text: 'a **word** here', from: 4, to: 8 })
    expect(run(toggleEmphasis, 'a word here', 2, 6)).toEqual({ text: 'a *word* here', from: 3, to: 7 })
  })
  it('unwraps when the marks surround the selection or are part of it', () => {
    expect(run(toggleStrong, 'a **word** here', 4, 8)).toEqual({ text: 'a word here', from: 2, to: 6 })
    expect(run(toggleStrong, 'a **word** here', 2, 10)).toEqual({ text: 'a word here', from: 2, to: 6 })
    expect(run(toggleEmphasis, 'a *word* here', 3, 7)).toEqual({ text: 'a word here', from: 2, to: 6 })
  })
  it('does not take the stars of bold for italic', () => {
    expect(run(toggleEmphasis, 'a **word** here', 4, 8).text).toBe('a ***word*** here')
  })
  it('does nothing in a read-only editor', () => {
    const state = EditorState.create({ doc: 'a word', selection: EditorSelection.single(2, 6), extensions: EditorState.readOnly.of(true) })
    let dispatched = false
    expect(toggleStrong({ state, dispatch: () => (dispatched = true) })).toBe(false)
    expect(dispatched).toBe(false)
  })
  it('puts an empty pair around the cursor', () => {
    expect(run(toggleStrong, 'ab', 1)).toEqual({ text: 'a****b', from: 3, to: 3 })
  })
})

describe('colour names', () => {
  it('names every palette colour with a word, never a hex code', () => {
    const names = PALETTE.map(colourName)
    for (const n of names) expect(n).toMatch(/^[A-Z][a-z]+$/)
    expect(new Set(names).size).toBe(PALETTE.length)
    expect(colourName('#123456')).toBe('Custom colour')
  })
})
