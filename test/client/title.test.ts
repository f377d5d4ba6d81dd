import { describe, expect, it } from 'vitest'
import * as Y from 'yjs'
import { cleanTitle, firstLine } from '../../src/session/title.ts'

describe('firstLine', () => {
  it('reads the first line across items, skipping deletions', () => {
    const doc = new Y.Doc()
    const t = doc.getText('text')
    expect(firstLine(t)).toBe('')
    t.insert(0, 'Hello')
    t.insert(5, ' world\nsecond line')
    t.insert(0, '# ')
    expect(firstLine(t)).toBe('Hello world')
    t.delete(2, 6) // "# world\n..."
    expect(firstLine(t)).toBe('world')
    t.insert(0, '\n')
    expect(firstLine(t)).toBe('')
  })

  it('strips markdown markers and caps the length', () => {
    expect(cleanTitle('## Plan ')).toBe('Plan')
    expect(cleanTitle('- [x] done')).toBe('done')
    expect(cleanTitle('> quote')).toBe('quote')
    const doc = new Y.Doc()
    doc.getText('text').insert(0, 'x'.repeat(10_000))
    expect(firstLine(doc.getText('text'))).toHaveLength(120)
  })

  it('drops inline Markdown markup, keeping the words (issue 12, item 10)', () => {
    expect(cleanTitle('# Meeting notes')).toBe('Meeting notes')
    expect(cleanTitle('## Meeting **notes** for _Monday_ ##')).toBe('Meeting notes for Monday')
    expect(cleanTitle('# [Trip](https://example.test/trip) plan ![map](m.png)')).toBe('Trip plan map')
    expect(cleanTitle('1. `npm start` ~~maybe~~ *now*')).toBe('npm start maybe now')
    expect(cleanTitle('> - [ ] <b>Buy</b> milk')).toBe('Buy milk')
    // Not markup: intraword underscores, code span contents, escapes, a lone hash, arithmetic.
    expect(cleanTitle('snake_case_name and 2 * 3 * 4')).toBe('snake_case_name and 2 * 3 * 4')
    expect(cleanTitle('Use `**kwargs` in \\*Python\\*')).toBe('Use **kwargs in *Python*')
    expect(cleanTitle('#hashtag')).toBe('#hashtag')
    const doc = new Y.Doc()
    doc.getText('text').insert(0, '# **Bold** title\nbody')
    expect(firstLine(doc.getText('text'))).toBe('Bold title')
  })

  it('costs O(first line), not O(document), on a large edited document', () => {
    const doc = new Y.Doc()
    const t = doc.getText('text')
    t.insert(0, 'Title line\n')
    // a body of 20k scattered insertions after the first line: 20k separate items
    const head = 'Title line\n'.length
    for (let i = 0; i < 20_000; i++) t.insert(head + ((i * 7919) % (t.length - head + 1)), 'word ')
    const reps = 2000
    const t0 = performance.now()
    for (let i = 0; i < reps; i++) firstLine(t)
    const perCall = (performance.now() - t0) / reps
    expect(firstLine(t)).toBe('Title line')
    const t1 = performance.now()
    for (let i = 0; i < 20; i++) t.toString()
    const fullRead = (performance.now() - t1) / 20
    expect(perCall).toBeLessThan(fullRead)
  })
})
