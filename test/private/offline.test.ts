/**
 * A private document edited while the server is down: the edits stay on the
 * device (across a reload), reach the server's log once it is back, and
 * "backed up" is reported only after its commit.
 */
import 'fake-indexeddb/auto'
import { afterEach, expect, it } from 'vitest'
import type { SessionCore } from '../../src/session/core.ts'
import { newDocId } from '../../src/protocol/ids.ts'
import { newLinkKey } from '../../src/private/key.ts'
import { loadConfig } from '../../src/session/config.ts'
import { memoryStorage } from '../../src/session/storage.ts'
import { startServer, type ServerProcess } from '../helpers/server.ts'
import { backupSession, untilFacts } from '../helpers/session.ts'

const sessions: SessionCore[] = []
const servers: ServerProcess[] = []
afterEach(async () => {
  await Promise.all(sessions.splice(0).map((s) => s.destroy()))
  await Promise.all(servers.splice(0).map((s) => s.stop()))
})

function forget(docId: string): Promise<void> {
  return new Promise((res, rej) => {
    const req = indexedDB.deleteDatabase(docId)
    req.onsuccess = () => res()
    req.onerror = () => rej(req.error)
  })
}

it('offline edits (one of them a pure deletion), a reload while offline, then the server is back: the log gets everything', async () => {
  let server = await startServer()
  servers.push(server)
  const docId = newDocId()
  const key = newLinkKey()
  const a = backupSession(server, docId, { linkKey: key, createdHere: true })
  sessions.push(a)
  await untilFacts(a, (f) => f.link === 'synced', 'A synced')
  a.text.insert(0, 'one, drop-me, two')
  await untilFacts(a, (f) => f.backedUp, 'A backed up')

  expect(await server.stop()).toBe(0)
  servers.length = 0
  await untilFacts(a, (f) => f.link === 'offline', 'A offline')
  a.text.insert(a.text.length, ', three')
  await untilFacts(a, (f) => !f.backedUp && f.unbackedChanges > 0, 'A has unbacked changes')
  await a.destroy()
  sessions.length = 0

  // Reload while the server is still down; delete a word (no new insertions: the state vector does not move).
  const port = server.port
  const reloaded = backupSession(server, docId, { linkKey: key, reloadConfig: () => loadConfig({ base: `http://127.0.0.1:${port}`, fetch, storage: memoryStorage() }) })
  sessions.push(reloaded)
  await reloaded.loaded
  expect(reloaded.text.toString()).toBe('one, drop-me, two, three')
  reloaded.text.delete('one, '.length, 'drop-me, '.length)

  server = await startServer({ port: server.port, dataDir: server.dataDir })
  servers.push(server)
  await untilFacts(reloaded, (f) => f.link === 'synced' && f.backedUp, 'reloaded backed up', 60_000)
  await reloaded.destroy()
  sessions.length = 0

  await forget(docId)
  const fresh = backupSession(server, docId, { linkKey: key })
  sessions.push(fresh)
  await untilFacts(fresh, (f) => f.link === 'synced', 'fresh synced')
  expect(fresh.text.toString()).toBe('one, two, three')
}, 90_000)
