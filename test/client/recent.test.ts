import { describe, expect, it } from 'vitest'
import { RECENT_KEY, RECENT_LIMIT, readRecent, removeRecent, setRecentTitle, touchRecent, touched } from '../../src/session/recent.ts'
import { memoryStorage } from '../../src/session/storage.ts'

describe('recent documents', () => {
  it('adds, orders newest first, and updates the open time without duplicates', () => {
    const s = memoryStorage()
    touchRecent(s, 'aaa', 1000)
    touchRecent(s, 'bbb', 2000)
    touchRecent(s, 'ccc', 3000)
    expect(readRecent(s).map((d) => d.id)).toEqual(['ccc', 'bbb', 'aaa'])
    touchRecent(s, 'aaa', 4000)
    const list = readRecent(s)
    expect(list.map((d) => d.id)).toEqual(['aaa', 'ccc', 'bbb'])
    expect(list[0].openedAt).toBe(4000)
    expect(list).toHaveLength(3)
  })

  it('keeps the title across re-opens and only stores changed titles', () => {
    const s = memoryStorage()
    touchRecent(s, 'doc1', 1)
    setRecentTitle(s, 'doc1', 'Shopping list')
    touchRecent(s, 'doc1', 2)
    expect(readRecent(s)[0]).toEqual({ id: 'doc1', title: 'Shopping list', openedAt: 2 })
    let writes = 0
    const counting = { ...s, setItem: (k: string, v: string) => (writes++, s.setItem(k, v)) }
    setRecentTitle(counting, 'doc1', 'Shopping list')
    expect(writes).toBe(0)
    setRecentTitle(counting, 'unknown', 'x')
    expect(readRecent(s).map((d) => d.id)).toEqual(['doc1'])
  })

  it('removes entries', () => {
    const s = memoryStorage()
    touchRecent(s, 'a', 1)
    touchRecent(s, 'b', 2)
    expect(removeRecent(s, 'a').map((d) => d.id)).toEqual(['b'])
    expect(readRecent(s).map((d) => d.id)).toEqual(['b'])
  })

  it('survives corrupt storage and drops invalid entries', () => {
    const s = memoryStorage()
    s.setItem(RECENT_KEY, '{not json')
    expect(readRecent(s)).toEqual([])
    s.setItem(RECENT_KEY, JSON.stringify([{ id: 'ok', title: 't', openedAt: 5 }, { id: 'bad id', title: '', openedAt: 1 }, { id: 'ok', title: 'dup', openedAt: 1 }, 'x', { id: 'n', openedAt: 'x' }]))
    expect(readRecent(s)).toEqual([{ id: 'ok', title: 't', openedAt: 5 }])
  })

  it('caps the list length', () => {
    let list = [] as ReturnType<typeof touched>
    for (let i = 0; i < RECENT_LIMIT + 25; i++) list = touched(list, 'd' + i, i)
    expect(list).toHaveLength(RECENT_LIMIT)
    expect(list[0].id).toBe('d' + (RECENT_LIMIT + 24))
  })
})
