import { describe, expect, it } from 'vitest'
import { IDENTITY_KEY, PALETTE, classifyPeers, cleanName, lightColor, loadIdentity, randomIdentity, sanitizeRemoteState, saveIdentity } from '../../src/session/presence.ts'
import { memoryStorage } from '../../src/session/storage.ts'

describe('identity', () => {
  it('is random on first visit, then stable', () => {
    const s = memoryStorage()
    let seed = 0.37
    const rand = () => (seed = (seed * 9301 + 49297) % 233280 / 233280)
    const a = loadIdentity(s, rand)
    expect(a.name).toMatch(/^\w+ \w+$/)
    expect(PALETTE).toContain(a.color)
    expect(a.colorLight).toBe(a.color + '33')
    expect(loadIdentity(s, () => 0.99)).toEqual(a)
    saveIdentity(s, { ...a, name: '  Ada  ' })
    expect(loadIdentity(s).name).toBe('Ada')
  })

  it('replaces corrupt stored identities', () => {
    const s = memoryStorage()
    s.setItem(IDENTITY_KEY, '{"name":"x","color":"red;background:url(//evil)"}')
    const id = loadIdentity(s, () => 0)
    expect(id.color).toMatch(/^#[0-9a-f]{6}$/)
    expect(id).toEqual(randomIdentity(() => 0))
  })

  it('cleans names', () => {
    expect(cleanName('  Bob\u0000\n ')).toBe('Bob')
    expect(cleanName('x'.repeat(100))).toHaveLength(40)
    expect(cleanName(42)).toBe('')
    expect(lightColor('#123456')).toBe('#12345633')
  })
})

describe('remote awareness states', () => {
  it('are sanitized in place so no peer can inject CSS through colours', () => {
    const state: Record<string, unknown> = { user: { name: ' Mallory ', color: 'red; background-image: url(https://evil/)', colorLight: 'x;y' }, peerId: 7 }
    sanitizeRemoteState(state)
    expect(state.user).toEqual({ name: 'Mallory', color: PALETTE[7], colorLight: PALETTE[7] + '33' })
    expect(state.peerId).toBeUndefined()
    const weird: Record<string, unknown> = { user: 'nope' }
    sanitizeRemoteState(weird)
    expect(weird.user).toBeUndefined()
  })

  it('are classified by route: direct > this browser > server > relay', () => {
    const states = new Map<number, Record<string, unknown>>([
      [1, { user: { name: 'Me', color: '#111111' }, peerId: 'p-me' }],
      [2, { user: { name: 'Dana', color: '#222222' }, peerId: 'p-dana' }],
      [3, { user: { name: 'Bea', color: '#333333' }, peerId: 'p-bea' }],
      [4, { user: { name: 'Cy', color: '#444444' }, peerId: 'p-cy' }],
      [5, { user: { name: 'Al', color: '#555555' }, peerId: 'p-al' }],
      [6, { cursor: null }],
    ])
    const peers = classifyPeers(states, 1, { direct: new Set(['p-dana']), browser: new Set(['p-bea', 'p-dana']), server: new Set([4, 2]) })
    expect(peers.map((p) => [p.name, p.via])).toEqual([
      ['Al', 'relay'],
      ['Bea', 'browser'],
      ['Cy', 'server'],
      ['Dana', 'direct'],
    ])
  })
})
