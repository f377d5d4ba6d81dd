import { describe, expect, it } from 'vitest'
import { formatTime, localLabel, peersLabel, serverLabel, serverState, shouldWarnBeforeUnload, unbackedLabel } from '../../src/session/status.ts'

describe('status derivation', () => {
  it('maps link + durability to the five server states', () => {
    expect(serverState('off', false)).toBe('off')
    expect(serverState('connecting', true)).toBe('connecting')
    expect(serverState('offline', true)).toBe('offline')
    expect(serverState('synced', false)).toBe('not-backed-up')
    expect(serverState('synced', true)).toBe('backed-up')
  })

  it('labels say where the work is', () => {
    expect(localLabel('saved')).toMatch(/saved on this device/i)
    expect(localLabel('loading')).not.toMatch(/saved/i)
    expect(peersLabel(0, 0, 'connected')).toBe('0 peers connected')
    expect(peersLabel(1, 0, 'connected')).toBe('1 peer connected')
    expect(peersLabel(2, 1, 'connected')).toBe('2 peers connected · 1 other tab')
    expect(peersLabel(0, 0, 'none')).toMatch(/^0 peers connected.*this browser only/)
    expect(peersLabel(0, 0, 'no-webrtc')).toMatch(/^0 peers connected.*WebRTC unavailable/)
    const t = new Date(2024, 0, 2, 9, 5, 7).getTime()
    expect(formatTime(t)).toBe('09:05:07')
    expect(serverLabel('backed-up', t, null, t + 1000)).toBe('Backed up · last backup 09:05:07')
    expect(serverLabel('offline', t, null, t + 86_400_000)).toBe('Backup server not reachable · last backup 2024-01-02 09:05:07')
    expect(serverLabel('not-backed-up', null)).toBe('Not yet backed up')
    expect(serverLabel('offline', null, 'access denied')).toBe('Backup server not reachable (access denied)')
    expect(serverLabel('off', t)).toBe('Backup off')
  })

  it('speaks in human terms: no raw change counts, no "looking for peers" when signaling is unreachable (issue 12, item 6)', () => {
    const t = new Date(2024, 0, 2, 9, 5, 7).getTime()
    expect(unbackedLabel(t, t + 5000)).toBe('Edits since 09:05:07 are not yet confirmed by the backup server')
    expect(unbackedLabel(null)).not.toMatch(/\d/)
    expect(peersLabel(0, 0, 'connecting')).toMatch(/looking for peers/)
    expect(peersLabel(0, 0, 'unreachable')).not.toMatch(/looking for peers/)
    expect(peersLabel(0, 0, 'unreachable')).toMatch(/server not reachable/)
    expect(peersLabel(1, 0, 'unreachable')).toBe('1 peer connected')
  })

  it('warns before unload only when changes exist nowhere else', () => {
    expect(shouldWarnBeforeUnload({ unbacked: 0, peers: 0, backedUp: false })).toBe(false)
    expect(shouldWarnBeforeUnload({ unbacked: 2, peers: 0, backedUp: false })).toBe(true)
    expect(shouldWarnBeforeUnload({ unbacked: 2, peers: 1, backedUp: false })).toBe(false)
    expect(shouldWarnBeforeUnload({ unbacked: 2, peers: 0, backedUp: true })).toBe(false)
  })
})
