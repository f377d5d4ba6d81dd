import { describe, expect, it } from 'vitest'
import { LinkPolicy, type MeshConn } from '../../src/session/link-policy.ts'

const conns = (entries: Record<string, Partial<MeshConn>>) => new Map(Object.entries(entries).map(([id, c]) => [id, { connected: false, closed: false, ...c }]))

describe('LinkPolicy (relay on demand)', () => {
  it('relays without a usable mesh and is backup-only with paired peers', () => {
    const p = new LinkPolicy()
    expect(p.decide('no-webrtc', null, 0)).toBe('relay')
    expect(p.decide('read-only', null, 0)).toBe('relay')
    expect(p.decide('unreachable', conns({}), 0)).toBe('relay')
    expect(p.decide('connected', conns({}), 0)).toBe('backup')
    expect(p.decide('connected', conns({ a: { connected: true } }), 10)).toBe('backup')
  })

  it('relays when signaling is still connecting after the pairing timeout', () => {
    const p = new LinkPolicy({ pairTimeoutMs: 1000 })
    expect(p.decide('connecting', conns({}), 0)).toBe('backup')
    expect(p.decide('connecting', conns({}), 1000)).toBe('relay')
    expect(p.decide('connected', conns({}), 1001)).toBe('backup')
  })

  it('relays while a peer has not paired within the timeout, and goes back once it pairs', () => {
    const p = new LinkPolicy({ pairTimeoutMs: 1000, failHoldMs: 5000 })
    expect(p.decide('connected', conns({ a: {} }), 0)).toBe('backup')
    expect(p.decide('connected', conns({ a: {} }), 999)).toBe('backup')
    expect(p.decide('connected', conns({ a: {} }), 1000)).toBe('relay')
    expect(p.decide('connected', conns({ a: {} }), 3000)).toBe('relay')
    expect(p.decide('connected', conns({ a: { connected: true } }), 3001)).toBe('backup')
  })

  it('a connection this device closed to yield to a higher peer (glare rule) is no failed pairing: a capped peer that never offers is reached through the mesh', () => {
    const p = new LinkPolicy({ pairTimeoutMs: 1000, failHoldMs: 5000 })
    const yielded = conns({ h: {} })
    p.yielded(yielded.values())
    expect(p.decide('connected', yielded, 0)).toBe('backup')
    // It closed; the higher peer (at its cap) never offers; the peer stays present, not direct.
    expect(p.decide('connected', conns({}), 500, new Set(['h']))).toBe('backup')
    expect(p.decide('connected', conns({}), 2000, new Set(['h']))).toBe('backup')
    // A later connection to the same peer is an attempt like any other.
    expect(p.decide('connected', conns({ h: {} }), 3000)).toBe('backup')
    expect(p.decide('connected', conns({ h: {} }), 4000)).toBe('relay')
  })

  it('after a failed pairing, relays while that peer is present and not direct, for at most the hold time', () => {
    const p = new LinkPolicy({ pairTimeoutMs: 1000, failHoldMs: 5000 })
    expect(p.decide('connected', conns({ a: {} }), 0)).toBe('backup')
    const unpaired = new Set(['a'])
    expect(p.decide('connected', conns({}), 500, unpaired)).toBe('relay')
    expect(p.decide('connected', conns({}), 5499, unpaired)).toBe('relay')
    expect(p.decide('connected', conns({}), 5500, unpaired)).toBe('backup')
  })

  it('a failed pairing does not matter once that peer is direct again or gone, nor for other unpaired peers', () => {
    const p = new LinkPolicy({ pairTimeoutMs: 1000, failHoldMs: 5000 })
    p.decide('connected', conns({ a: {} }), 0)
    expect(p.decide('connected', conns({ a: { connected: true } }), 600, new Set())).toBe('backup')
    // A peer that never announced (its signaling is blocked) relays itself: this link need not.
    expect(p.decide('connected', conns({}), 700, new Set(['r']))).toBe('backup')
  })
})
