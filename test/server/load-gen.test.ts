/**
 * The load generator (`bench/lib/load-gen.ts`) writes keystroke updates by
 * hand to stay cheap; they must be byte for byte what Yjs sends for the same
 * keystrokes, or the benchmark would measure something no client sends.
 */
import { expect, test } from 'vitest'
import * as Y from 'yjs'
import { keystrokeUpdate } from '../../bench/lib/load-gen.ts'

test('keystrokeUpdate is the update Yjs emits for typing at the end of its own text', () => {
  const doc = new Y.Doc()
  doc.clientID = 123456789
  const emitted: Uint8Array[] = []
  doc.on('update', (u: Uint8Array) => emitted.push(u))
  const text = doc.getText('text')
  for (let i = 0; i < 200; i++) text.insert(text.length, i % 2 ? 'x' : 'é')
  emitted.forEach((u, clock) => expect(keystrokeUpdate(doc.clientID, clock, clock % 2 ? 'x' : 'é'), `clock ${clock}`).toEqual(u))

  // Two generator clients typing into one room converge like Yjs clients.
  const a = new Y.Doc()
  for (const [client, n] of [[7, 5], [4_000_000_000, 3]] as const) for (let clock = 0; clock < n; clock++) Y.applyUpdate(a, keystrokeUpdate(client, clock, 'x'))
  expect(a.getText('text').toString()).toBe('xxxxxxxx')
  expect(a.store.pendingStructs).toBeNull()
})
