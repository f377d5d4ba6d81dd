import { describe, expect, it } from 'vitest'
import * as decoding from 'lib0/decoding'
import { DurabilityTracker } from '../../src/session/durability.ts'
import { encodeDurableAck, encodeDurableQuery, readDurableNonce } from '../../src/protocol/durable.ts'
import { MessageType } from '../../src/protocol/messages.ts'

describe('durable query/ack codec', () => {
  it('round-trips [type, nonce] as lib0 varUints', () => {
    for (const nonce of [0, 1, 127, 128, 300_000, 2 ** 31]) {
      const q = decoding.createDecoder(encodeDurableQuery(nonce))
      expect(decoding.readVarUint(q)).toBe(MessageType.durableQuery)
      expect(readDurableNonce(q)).toBe(nonce)
      const a = decoding.createDecoder(encodeDurableAck(nonce))
      expect(decoding.readVarUint(a)).toBe(MessageType.durableAck)
      expect(readDurableNonce(a)).toBe(nonce)
    }
    expect(Array.from(encodeDurableQuery(5))).toEqual([100, 5])
    expect(Array.from(encodeDurableAck(5))).toEqual([101, 5])
  })
})

describe('DurabilityTracker', () => {
  it('is backed up only when connected, synced and acked up to the local change count', () => {
    const t = new DurabilityTracker()
    expect(t.backedUp).toBe(false)
    t.connectionOpened()
    expect(t.backedUp).toBe(false)
    expect(t.synced()).toBe(0)
    expect(t.backedUp).toBe(false) // no ack on this connection yet
    expect(t.ack(0, 100)).toBe(true)
    expect(t.backedUp).toBe(true)
    expect(t.lastBackupAt).toBe(100)
  })

  it('a newer local edit turns it back to not backed up until its ack arrives', () => {
    const t = new DurabilityTracker()
    t.connectionOpened()
    t.synced()
    t.ack(0, 1)
    expect(t.localChange()).toBe(1)
    expect(t.localChange()).toBe(2)
    expect(t.backedUp).toBe(false)
    expect(t.unbacked).toBe(2)
    t.ack(1, 2)
    expect(t.backedUp).toBe(false)
    expect(t.unbacked).toBe(1)
    expect(t.lastBackupAt).toBe(1)
    t.ack(2, 3)
    expect(t.backedUp).toBe(true)
    expect(t.unbacked).toBe(0)
    expect(t.lastBackupAt).toBe(3)
  })

  it('ignores acks for nonces never queried, stale acks, and acks while disconnected', () => {
    const t = new DurabilityTracker()
    t.localChange()
    expect(t.ack(1, 1)).toBe(false) // not connected
    t.connectionOpened()
    t.synced()
    expect(t.ack(5, 1)).toBe(false) // larger than any query
    expect(t.ack(-1, 1)).toBe(false)
    expect(t.ack(1.5, 1)).toBe(false)
    expect(t.ack(1, 2)).toBe(true)
    expect(t.ack(0, 3)).toBe(false) // older than what we have
    expect(t.state()).toMatchObject({ acked: 1, backedUp: true, lastBackupAt: 2 })
  })

  it('resets per connection: after a reconnect nothing counts as backed up until a fresh ack', () => {
    const t = new DurabilityTracker()
    t.connectionOpened()
    t.synced()
    t.localChange()
    t.ack(1, 10)
    expect(t.backedUp).toBe(true)
    t.connectionClosed()
    expect(t.backedUp).toBe(false)
    expect(t.unbacked).toBe(0) // those changes were confirmed durable before
    t.connectionOpened()
    expect(t.backedUp).toBe(false)
    expect(t.synced()).toBe(1)
    expect(t.backedUp).toBe(false)
    t.ack(1, 20)
    expect(t.backedUp).toBe(true)
    expect(t.lastBackupAt).toBe(20)
  })

  it('changes made while offline stay unbacked until acknowledged after reconnect', () => {
    const t = new DurabilityTracker()
    t.connectionOpened()
    t.synced()
    t.ack(0, 1)
    t.connectionClosed()
    t.localChange()
    t.localChange()
    t.localChange()
    expect(t.unbacked).toBe(3)
    t.connectionOpened()
    expect(t.synced()).toBe(3)
    t.ack(3, 2)
    expect(t.state()).toMatchObject({ backedUp: true, unbacked: 0, durable: 3 })
  })

  it('knows when the oldest unconfirmed edit was made, and the last backup time from an earlier visit (issue 12, item 6)', () => {
    const t = new DurabilityTracker()
    t.restoreLastBackup(50)
    expect(t.lastBackupAt).toBe(50)
    expect(t.unbackedSince).toBeNull()
    t.localChange(100)
    t.localChange(200)
    t.localChange(300)
    expect(t.unbackedSince).toBe(100)
    t.connectionOpened()
    t.synced()
    t.ack(2, 400)
    expect(t.unbackedSince).toBe(300)
    expect(t.lastBackupAt).toBe(50) // not everything yet
    t.ack(3, 500)
    expect(t.state()).toMatchObject({ unbackedSince: null, lastBackupAt: 500 })
    t.restoreLastBackup(60) // this session's own time wins
    expect(t.lastBackupAt).toBe(500)
  })
})
