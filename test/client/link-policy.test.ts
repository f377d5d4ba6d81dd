import { describe, expect, it } from 'vitest'
import { LinkPolicy, type MeshConn, type PeerView } from '../../src/session/link-policy.ts'

const conns = (entries: Record<string, Partial<MeshConn>>) => new Map(Object.entries(entries).map(([id, c]) => [id, { connected: false, closed: false, ...c }]))
const views = (entries: Record<string, PeerView>) => new Map(Object.entries(entries))
const unreached = (says: PeerView['says'] = null): PeerView => ({ reached: false, says })
const me = { peerId: 'm', meshPeers: 2 }

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

  it('relays while a connection has not paired within the timeout, and goes back once it pairs', () => {
    const p = new LinkPolicy({ pairTimeoutMs: 1000, failHoldMs: 5000 })
    expect(p.decide('connected', conns({ a: {} }), 0)).toBe('backup')
    expect(p.decide('connected', conns({ a: {} }), 999)).toBe('backup')
    expect(p.decide('connected', conns({ a: {} }), 1000)).toBe('relay')
    expect(p.decide('connected', conns({ a: {} }), 3000)).toBe('relay')
    expect(p.decide('connected', conns({ a: { connected: true } }), 3001)).toBe('backup')
  })

  it('a peer heard on signaling and never reached relays the link until it is reached, or for the hold time if it never shows up', () => {
    const p = new LinkPolicy({ pairTimeoutMs: 1000, failHoldMs: 5000 })
    p.heard('a', 0)
    // The grace period runs from when the policy first finds it unreached.
    expect(p.decide('connected', conns({}), 500)).toBe('backup')
    expect(p.decide('connected', conns({}), 1499)).toBe('backup')
    expect(p.decide('connected', conns({}), 1500)).toBe('relay')
    // Reached through the mesh (its awareness came over WebRTC, passed on by another peer): no relay.
    expect(p.decide('connected', conns({}), 1600, views({ a: { reached: true, says: null } }))).toBe('backup')
    // Heard again later and not reached: a fresh grace period, then relay, until the hold runs out.
    p.heard('a', 2000)
    expect(p.decide('connected', conns({}), 2500)).toBe('backup')
    expect(p.decide('connected', conns({}), 3499)).toBe('backup')
    expect(p.decide('connected', conns({}), 3500)).toBe('relay')
    expect(p.decide('connected', conns({}), 6999)).toBe('relay')
    expect(p.decide('connected', conns({}), 7000)).toBe('backup')
  })

  it('a failed pairing keeps counting as heard for the hold time', () => {
    const p = new LinkPolicy({ pairTimeoutMs: 1000, failHoldMs: 5000 })
    expect(p.decide('connected', conns({ a: {} }), 0)).toBe('backup')
    expect(p.decide('connected', conns({}), 500)).toBe('backup')
    expect(p.decide('connected', conns({}), 1000)).toBe('relay')
    expect(p.decide('connected', conns({}), 4999)).toBe('relay')
    expect(p.decide('connected', conns({}), 5000)).toBe('backup')
  })

  it('a present peer the mesh does not reach (another group of a split mesh) relays the link for as long as it is present', () => {
    const p = new LinkPolicy({ pairTimeoutMs: 1000, failHoldMs: 5000 })
    const other = views({ c: unreached() })
    expect(p.decide('connected', conns({}), 0, other, me)).toBe('backup')
    expect(p.decide('connected', conns({}), 1000, other, me)).toBe('relay')
    expect(p.decide('connected', conns({}), 60_000, other, me)).toBe('relay')
    expect(p.decide('connected', conns({}), 60_001, views({}), me)).toBe('backup')
  })

  it('one relaying side of an unreached pair is enough: the side that reaches fewer mesh peers (ties: lower id) relays, the other steps back', () => {
    const p = new LinkPolicy({ pairTimeoutMs: 0 })
    // It relays and reaches fewer peers than this device (2): it relays for both.
    expect(p.decide('connected', conns({}), 1000, views({ c: unreached({ meshPeers: 0, relaying: true }) }), me)).toBe('backup')
    // It reaches more: this device is the side that relays.
    expect(p.decide('connected', conns({}), 1000, views({ c: unreached({ meshPeers: 3, relaying: true }) }), me)).toBe('relay')
    // A tie goes by peer id: the lower one relays.
    expect(p.decide('connected', conns({}), 1000, views({ c: unreached({ meshPeers: 2, relaying: true }) }), me)).toBe('backup')
    expect(p.decide('connected', conns({}), 1000, views({ z: unreached({ meshPeers: 2, relaying: true }) }), me)).toBe('relay')
    // It does not relay (or its state is stale): relay.
    expect(p.decide('connected', conns({}), 1000, views({ c: unreached({ meshPeers: 0, relaying: false }) }), me)).toBe('relay')
    expect(p.decide('connected', conns({}), 1000, views({ c: unreached(null) }), me)).toBe('relay')
  })

  it('the two sides of an unreached pair agree on which one relays', () => {
    for (const [a, b] of [[{ peerId: 'a', meshPeers: 1 }, { peerId: 'b', meshPeers: 3 }], [{ peerId: 'a', meshPeers: 2 }, { peerId: 'b', meshPeers: 2 }], [{ peerId: 'b', meshPeers: 0 }, { peerId: 'a', meshPeers: 5 }]]) {
      const pa = new LinkPolicy({ pairTimeoutMs: 0 })
      const pb = new LinkPolicy({ pairTimeoutMs: 0 })
      // Both relay at first (neither knows the other's state), then each sees the other's.
      const modeA = pa.decide('connected', conns({}), 0, views({ [b.peerId]: unreached({ meshPeers: b.meshPeers, relaying: true }) }), a)
      const modeB = pb.decide('connected', conns({}), 0, views({ [a.peerId]: unreached({ meshPeers: a.meshPeers, relaying: true }) }), b)
      expect([modeA, modeB].sort()).toEqual(['backup', 'relay'])
      // The one that stays relaying is the one that reaches fewer.
      expect(a.meshPeers < b.meshPeers || (a.meshPeers === b.meshPeers && a.peerId < b.peerId) ? modeA : modeB).toBe('relay')
    }
  })
})
