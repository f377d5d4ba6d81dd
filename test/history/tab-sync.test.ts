/**
 * Versions between tabs of one browser (`HistoryTabSync` over a real
 * BroadcastChannel, which Node has too): a tab opened later gets the
 * versions the others hold, and a version taken in one tab shows in the
 * others at once, with what it builds on (a version that came from a peer).
 */
import { afterEach, expect, it } from 'vitest'
import * as Y from 'yjs'
import { HistoryLog } from '../../src/history/log.ts'
import { HistoryTabSync } from '../../src/history/tab-sync.ts'
import type { Version } from '../../src/history/versions.ts'

const open: HistoryTabSync[] = []
afterEach(() => open.splice(0).forEach((t) => t.destroy()))

const version = (id: string, at: number): Version => ({ id, at, by: [], name: '', manual: true, added: 0, removed: 0, text: id })

function untilIds(log: HistoryLog, ids: string[]): Promise<void> {
  const has = () => ids.every((id) => log.list().some((v) => v.id === id))
  if (has()) return Promise.resolve()
  return new Promise((res, rej) => {
    const timer = setTimeout(() => rej(new Error(`timed out: ${JSON.stringify(log.list().map((v) => v.id))}`)), 10_000)
    const off = log.onChange(() => has() && (clearTimeout(timer), off(), res()))
  })
}

it('a later tab gets the versions the others hold; a version taken in one tab shows in the others, with what it builds on', async () => {
  const name = `tabs-${process.pid}-${Date.now()}`
  const one = new HistoryLog()
  one.add(version('from-one', 1))
  open.push(new HistoryTabSync(name, one.doc))
  const two = new HistoryLog()
  open.push(new HistoryTabSync(name, two.doc))
  await untilIds(two, ['from-one'])
  two.add(version('from-two', 2))
  await untilIds(one, ['from-two'])
  // A version from a peer reaches tab one (not two), then tab one takes its own after it.
  const peer = new HistoryLog()
  peer.add(version('from-peer', 3))
  Y.applyUpdate(one.doc, Y.encodeStateAsUpdate(peer.doc), 'mesh')
  one.add(version('later', 4))
  await untilIds(two, ['from-peer', 'later'])
  expect(two.list().map((v) => v.id)).toEqual(one.list().map((v) => v.id))
})
