import { describe, expect, it } from 'vitest'
import { dropStalled, MESH_PEERS_FIELD, neighborsIncomplete } from '../../src/session/mesh.ts'

const states = (entries: [number, Record<string, unknown>][]) => new Map(entries)

describe('mesh: forwarding only where needed', () => {
  it('a linked peer that reaches fewer peers than this one knows of, or whose reach is unknown, needs passing on', () => {
    // This device (B) knows A and C and is linked to both.
    const direct = new Set(['a', 'c'])
    const full = states([
      [1, { peerId: 'a', [MESH_PEERS_FIELD]: 2 }],
      [3, { peerId: 'c', [MESH_PEERS_FIELD]: 2 }],
    ])
    expect(neighborsIncomplete(full, direct, 2)).toBe(false)
    // A chain A–B–C: A and C each reach only B.
    const chain = states([
      [1, { peerId: 'a', [MESH_PEERS_FIELD]: 1 }],
      [3, { peerId: 'c', [MESH_PEERS_FIELD]: 1 }],
    ])
    expect(neighborsIncomplete(chain, direct, 2)).toBe(true)
    // C's state is gone (y-websocket dropped it) while the link stays: unknown, so pass on.
    expect(neighborsIncomplete(states([[1, { peerId: 'a', [MESH_PEERS_FIELD]: 2 }]]), direct, 2)).toBe(true)
    // An older client that does not say how far it reaches forwards by itself.
    expect(neighborsIncomplete(states([[1, { peerId: 'a' }], [3, { peerId: 'c' }]]), direct, 2)).toBe(false)
  })

  it('closes a connection still pairing after the stall time, not one that connected', () => {
    let destroyed = 0
    const conn = (connected: boolean) => ({ connected, closed: false, destroy: () => destroyed++ })
    const room = { webrtcConns: new Map([['x', conn(false)], ['y', conn(true)]]) } as unknown as Parameters<typeof dropStalled>[0]
    expect(dropStalled(room, 0, 8000)).toBe(0)
    expect(dropStalled(room, 7999, 8000)).toBe(0)
    expect(dropStalled(room, 8000, 8000)).toBe(1)
    expect(destroyed).toBe(1)
  })
})
