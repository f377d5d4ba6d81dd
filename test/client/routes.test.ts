import { describe, expect, it } from 'vitest'
import { docPath, matchRoute } from '../../src/routes/match.ts'

describe('matchRoute', () => {
  it('maps / and /d/<id>', () => {
    expect(matchRoute('/')).toEqual({ name: 'home' })
    expect(matchRoute('/d/abc_-9')).toEqual({ name: 'doc', docId: 'abc_-9' })
    expect(matchRoute('/d/abc/')).toEqual({ name: 'doc', docId: 'abc' })
    expect(matchRoute(docPath('Zz'))).toEqual({ name: 'doc', docId: 'Zz' })
  })

  it('reports invalid document links without decoding them', () => {
    expect(matchRoute('/d/')).toEqual({ name: 'invalid-doc', raw: '' })
    expect(matchRoute('/d')).toEqual({ name: 'invalid-doc', raw: '' })
    expect(matchRoute('/d/a%41')).toEqual({ name: 'invalid-doc', raw: 'a%41' })
    expect(matchRoute('/d/' + 'x'.repeat(65))).toMatchObject({ name: 'invalid-doc' })
    expect(matchRoute('/d/a/b')).toEqual({ name: 'invalid-doc', raw: 'a/b' })
  })

  it('anything else is not found', () => {
    expect(matchRoute('/settings')).toEqual({ name: 'not-found', path: '/settings' })
    expect(matchRoute('/dd/abc')).toEqual({ name: 'not-found', path: '/dd/abc' })
  })
})
