import { describe, expect, test } from 'vitest'
import { yieldToHigherPeers, type GlareRoom } from '../../src/session/glare.ts'

/** A room whose connections record whether they were destroyed. */
function room(peerId: string, conns: Record<string, boolean>) {
  const destroyed: string[] = []
  const r: GlareRoom = { peerId, webrtcConns: new Map() }
  for (const [id, initiator] of Object.entries(conns)) r.webrtcConns.set(id, { peer: { initiator }, destroy: () => destroyed.push(id) })
  return { room: r, destroyed }
}

describe('glare rule', () => {
  test('drops only connections this peer offers to a higher peer id', () => {
    const { room: r, destroyed } = room('m', { a: true, z: true, y: false })
    expect(yieldToHigherPeers(r, ['a', 'z', 'y', 'gone'])).toEqual(['z'])
    expect(destroyed).toEqual(['z'])
  })

  test('of any two peers exactly one offers', () => {
    for (const [x, y] of [['p1', 'p2'], ['b', 'a']]) {
      const rx = room(x, { [y]: true })
      const ry = room(y, { [x]: true })
      const dropped = [yieldToHigherPeers(rx.room, [y]).length, yieldToHigherPeers(ry.room, [x]).length]
      expect(dropped.sort()).toEqual([0, 1])
    }
  })
})
