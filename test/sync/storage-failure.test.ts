/**
 * The server's own failure paths, injected for real: the data directory is a
 * small tmpfs in a private mount namespace (`test/helpers/small-disk.ts`) that
 * the test fills to make SQLite appends fail with "database or disk is full",
 * and frees to let them succeed again; a database page corrupted on disk makes
 * a document fail to load. Needs root (tests and CI run as root).
 */
import 'fake-indexeddb/auto'
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest'
import * as Y from 'yjs'
import Database from 'better-sqlite3'
import { closeSync, openSync, writeSync } from 'node:fs'
import { join } from 'node:path'
import type { SessionCore, SessionFacts } from '../../src/session/core.ts'
import { serverState } from '../../src/session/status.ts'
import { CloseCode, MessageType } from '../../src/protocol/messages.ts'
import { startServer, type ServerProcess } from '../helpers/server.ts'
import { smallDisk, type SmallDisk } from '../helpers/small-disk.ts'
import { backupSession, healthz, untilFacts } from '../helpers/session.ts'
import { frameType, rawSync, snapshotOf, syncMessage, uintMessage } from '../helpers/clients.ts'

let n = 0
const freshId = (p: string) => `${p}-${process.pid}-${Date.now().toString(36)}-${n++}`
const APPEND_FAILED = /storage append failed; retrying/

const sessions: SessionCore[] = []
afterEach(async () => {
  await Promise.all(sessions.splice(0).map((s) => s.destroy()))
})

/** An update that inserts `text` at the start of a fresh document's `text`. */
function insertUpdate(text: string): Uint8Array {
  const doc = new Y.Doc()
  doc.getText('text').insert(0, text)
  return Y.encodeStateAsUpdate(doc)
}

describe('storage that fills up (tmpfs in a mount namespace)', () => {
  let disk: SmallDisk
  let server: ServerProcess
  const start = (args: string[] = []) => startServer({ prefix: disk.prefix, dataDir: disk.dir, args })

  beforeAll(async () => {
    disk = await smallDisk(32 * 1024 * 1024)
  })
  afterEach(async () => {
    disk.free()
    await server?.stop('SIGKILL')
  })
  afterAll(async () => {
    await disk?.close()
  })

  it('retries a failed append, withholds the ack (never "backed up"), answers /healthz 503, and recovers when space returns', async () => {
    server = await start()
    const id = freshId('full')
    const s = backupSession(server, id)
    sessions.push(s)
    s.text.insert(0, 'before ')
    await untilFacts(s, (f) => f.backedUp && f.localChanges === 1, 'first edit backed up')
    expect(await healthz(server)).toBe(200)

    disk.fill()
    const seen: SessionFacts[] = []
    s.onChange((f) => seen.push({ ...f }))
    // Big enough that the commit needs pages the full tmpfs cannot give.
    const big = 'x'.repeat(64 * 1024)
    s.text.insert(s.text.length, big)
    await server.printed(APPEND_FAILED, 2) // failed, waited, failed again: it retries
    // /healthz may be cached for up to a second: poll until it reports the failure.
    await expect.poll(() => healthz(server), { timeout: 10_000, interval: 100 }).toBe(503)
    expect(s.facts.link).toBe('synced')
    expect(s.facts.unbackedChanges).toBe(1)
    expect(serverState(s.facts.link, s.facts.backedUp)).toBe('not-backed-up')
    expect(seen.filter((f) => f.backedUp), 'never "backed up" while the append fails').toEqual([])

    disk.free()
    const f = await untilFacts(s, (f) => f.backedUp && f.localChanges === 2, 'backed up once storage returns', 30_000)
    expect(f.unbackedChanges).toBe(0)
    await expect.poll(() => healthz(server), { timeout: 10_000, interval: 100 }).toBe(200)

    // It is on disk: a restarted server on the same storage serves it to a fresh client.
    expect(await server.stop()).toBe(0)
    server = await start()
    expect((await snapshotOf(server.wsUrl, id)).text).toBe('before ' + big)
  })

  it('SIGTERM closes /sync sockets with 1001, flushes writes still queued, and exits 0', async () => {
    server = await start()
    const id = freshId('drain')
    const raw = await rawSync(server.wsUrl, `/sync/${id}`)
    await raw.waitFor((f) => frameType(f) === MessageType.sync)
    disk.fill()
    raw.send(syncMessage(2, insertUpdate('queued while the disk was full ' + 'y'.repeat(64 * 1024))))
    await server.printed(APPEND_FAILED) // the write is queued in the room, not on disk
    disk.free()
    const exit = server.stop('SIGTERM')
    expect((await raw.closed).code).toBe(CloseCode.goingAway)
    expect(await exit).toBe(0)
    server = await start()
    expect((await snapshotOf(server.wsUrl, id)).text).toMatch(/^queued while the disk was full y+$/)
  })

  it('exits 1 after the grace period when storage never comes back during shutdown', async () => {
    server = await start(['--shutdown-grace-ms', '1000'])
    const raw = await rawSync(server.wsUrl, `/sync/${freshId('stuck')}`)
    await raw.waitFor((f) => frameType(f) === MessageType.sync)
    disk.fill()
    raw.send(syncMessage(2, insertUpdate('z'.repeat(64 * 1024))))
    await server.printed(APPEND_FAILED)
    const exit = server.stop('SIGTERM')
    expect((await raw.closed).code).toBe(CloseCode.goingAway)
    const timeout = new Promise<string>((res) => setTimeout(() => res('still running 20 s after SIGTERM'), 20_000).unref())
    expect(await Promise.race([exit, timeout])).toBe(1)
    expect(server.output()).toMatch(/shutdown grace period over/)
  })
})

describe('a document that cannot be loaded (a corrupt database page)', () => {
  it('closes the socket with 4500 and the client says "server storage error"', async () => {
    let server = await startServer()
    const id = freshId('corrupt')
    const seed = await rawSync(server.wsUrl, `/sync/${id}`)
    seed.send(syncMessage(2, insertUpdate('stored text')))
    seed.send(uintMessage(MessageType.durableQuery, 1))
    await seed.waitFor((f) => frameType(f) === MessageType.durableAck)
    seed.ws.close()
    expect(await server.stop()).toBe(0)

    // Overwrite the type byte of the `updates` table's root page: SQLite reports the file as malformed.
    const file = join(server.dataDir, 'murmur.db')
    const db = new Database(file, { readonly: true })
    const root = db.prepare("SELECT rootpage FROM sqlite_master WHERE name = 'updates'").pluck().get() as number
    const pageSize = db.pragma('page_size', { simple: true }) as number
    db.close()
    const fd = openSync(file, 'r+')
    writeSync(fd, Uint8Array.of(0xff), 0, 1, (root - 1) * pageSize)
    closeSync(fd)

    server = await startServer({ dataDir: server.dataDir })
    try {
      const raw = await rawSync(server.wsUrl, `/sync/${id}`)
      expect((await raw.closed).code).toBe(CloseCode.storageError)
      const s = backupSession(server, id)
      sessions.push(s)
      const f = await untilFacts(s, (f) => f.serverDetail !== null, 'a close reason')
      expect(f.serverDetail).toBe('server storage error')
      expect(f.backedUp).toBe(false)
      expect(await healthz(server)).toBe(200) // the server itself keeps serving
    } finally {
      await server.stop()
    }
  })
})
