import { describe, expect, it } from 'vitest'
import * as Y from 'yjs'
import * as decoding from 'lib0/decoding'
import { applyStateVectorChanges, deleteSetDigest, encodeStateAck, encodeStateDelta, hasMore, readStateAck, readStateDelta, stateVectorChanges, stateVectorDigest } from '../../src/protocol/hybrid.ts'
import { MessageType } from '../../src/protocol/messages.ts'

describe('hybrid protocol helpers', () => {
  it('a delete changes the delete-set digest though the state vector stays the same', () => {
    const a = new Y.Doc()
    const b = new Y.Doc()
    a.getText('t').insert(0, 'hello world')
    Y.applyUpdate(b, Y.encodeStateAsUpdate(a))
    expect(deleteSetDigest(a)).toBe(deleteSetDigest(b))
    const before = Y.encodeStateVector(a)
    a.getText('t').delete(2, 3)
    expect(Y.encodeStateVector(a)).toEqual(before)
    expect(deleteSetDigest(a)).not.toBe(deleteSetDigest(b))
    Y.applyUpdate(b, Y.encodeStateAsUpdate(a, before))
    expect(deleteSetDigest(a)).toBe(deleteSetDigest(b))
  })

  it('the digest does not depend on the order deletions arrived in', () => {
    const base = new Y.Doc()
    base.getText('t').insert(0, 'abcdefghij')
    const x = new Y.Doc()
    const y = new Y.Doc()
    Y.applyUpdate(x, Y.encodeStateAsUpdate(base))
    Y.applyUpdate(y, Y.encodeStateAsUpdate(base))
    const sv = Y.encodeStateVector(base)
    base.getText('t').delete(1, 2)
    const d1 = Y.encodeStateAsUpdate(base, sv)
    const other = new Y.Doc()
    Y.applyUpdate(other, Y.encodeStateAsUpdate(x))
    other.getText('t').delete(6, 2)
    const d2 = Y.encodeStateAsUpdate(other, sv)
    Y.applyUpdate(x, d1)
    Y.applyUpdate(x, d2)
    Y.applyUpdate(y, d2)
    Y.applyUpdate(y, d1)
    expect(deleteSetDigest(x)).toBe(deleteSetDigest(y))
  })

  it('round-trips a state ack and compares state vectors', () => {
    const doc = new Y.Doc()
    doc.getText('t').insert(0, 'x')
    const bytes = encodeStateAck(7, Y.encodeStateVector(doc), deleteSetDigest(doc))
    const dec = decoding.createDecoder(bytes)
    expect(decoding.readVarUint(dec)).toBe(MessageType.stateAck)
    const ack = readStateAck(dec)
    expect(ack.nonce).toBe(7)
    expect(ack.digest).toBe(deleteSetDigest(doc))
    const sv = Y.decodeStateVector(ack.stateVector)
    expect(hasMore(sv, new Map())).toBe(true)
    expect(hasMore(sv, sv)).toBe(false)
  })

  it('a state delta rebuilds the sender state vector from the previous one', () => {
    const known = new Map([[1, 5], [2, 7], [3, 1]])
    const next = new Map([[1, 5], [2, 9], [4, 2]])
    const changes = stateVectorChanges(known, next)
    const dec = decoding.createDecoder(encodeStateDelta(3, false, changes, 42))
    expect(decoding.readVarUint(dec)).toBe(MessageType.stateDelta)
    const delta = readStateDelta(dec)
    expect(delta).toMatchObject({ nonce: 3, same: false, digest: 42 })
    const mirror = new Map(known)
    applyStateVectorChanges(mirror, delta.changes)
    expect(mirror).toEqual(next)
    expect(stateVectorChanges(next, next)).toEqual([])
    // Equal vectors have equal digests whatever order they were built in.
    expect(stateVectorDigest(Y.encodeStateVector(new Map([[4, 2], [1, 5]])))).toBe(stateVectorDigest(Y.encodeStateVector(new Map([[1, 5], [4, 2]]))))
    // A count that the frame cannot hold is malformed, not a long loop.
    const bad = decoding.createDecoder(new Uint8Array([3, 0, 0xff, 0xff, 0x7f, 1]))
    expect(() => readStateDelta(bad)).toThrow()
  })
})
