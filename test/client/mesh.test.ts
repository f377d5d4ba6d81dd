import { describe, expect, it } from 'vitest'
import { EventEmitter } from 'node:events'
import { dropStalled, forwardOnlyWhenNeeded, MESH_PEERS_FIELD, neighborsIncomplete } from '../../src/session/mesh.ts'

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

  it('passes on awareness from the server only where needed, only for clients the mesh reaches, and never a removal', () => {
    const sent: { changes: { added: number[]; updated: number[]; removed: number[] }; origin: unknown }[] = []
    const awareness = Object.assign(new EventEmitter(), { off: EventEmitter.prototype.removeListener })
    const doc = Object.assign(new EventEmitter(), { off: EventEmitter.prototype.removeListener })
    const room = { doc, awareness, bcconnected: false, _docUpdateHandler: () => {}, _awarenessUpdateHandler: (changes: never, origin: unknown) => sent.push({ changes, origin }) }
    const server = { name: 'websocket' }
    let needed = true
    forwardOnlyWhenNeeded(room as never, () => needed, (origin) => origin === server, (id) => id === 7)
    const handler = (room as unknown as { _awarenessUpdateHandler: (c: unknown, o: unknown) => void })._awarenessUpdateHandler
    // From the server: only client 7 (which the mesh reaches itself); the removal is dropped.
    handler({ added: [7, 8], updated: [9], removed: [7] }, server)
    expect(sent.map((s) => s.changes)).toEqual([{ added: [7], updated: [], removed: [] }])
    // Nothing the mesh carries: nothing sent.
    handler({ added: [8], updated: [], removed: [] }, server)
    expect(sent).toHaveLength(1)
    // From a peer (the room) and from this device: as before.
    handler({ added: [], updated: [8], removed: [] }, room)
    handler({ added: [], updated: [1], removed: [] }, 'local')
    expect(sent).toHaveLength(3)
    // A complete mesh: what came from the server or a peer is not passed on; this device's own changes are.
    needed = false
    handler({ added: [7], updated: [], removed: [] }, server)
    handler({ added: [], updated: [8], removed: [] }, room)
    handler({ added: [], updated: [1], removed: [] }, 'local')
    expect(sent.map((s) => s.origin)).toEqual([server, room, 'local', 'local'])
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
