/**
 * A private document's versions (issue 11) against a real server: they are
 * backed up sealed, in a log of their own (`/log/<docId>.history`, keys
 * derived from the same link key), so the server never holds a version's
 * text or name in plaintext, and a new device with the full link lists
 * them from the server alone. A wrong key lists nothing.
 */
import 'fake-indexeddb/auto'
import { existsSync, readFileSync } from 'node:fs'
import { join } from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import * as Y from 'yjs'
import { WebsocketProvider } from 'y-websocket'
import WebSocket from 'ws'
import type { SessionCore } from '../../src/session/core.ts'
import { historyDocId, newDocId } from '../../src/protocol/ids.ts'
import { newLinkKey } from '../../src/private/key.ts'
import { openHistory, type History } from '../../src/history/index.ts'
import { startServer, type ServerProcess } from '../helpers/server.ts'
import { backupSession, untilFacts } from '../helpers/session.ts'
import { readLog } from '../helpers/log-client.ts'

const contains = (hay: Uint8Array, needle: string) => Buffer.from(hay.buffer, hay.byteOffset, hay.byteLength).includes(Buffer.from(needle))

function forget(name: string): Promise<void> {
  return new Promise((res, rej) => {
    const req = indexedDB.deleteDatabase(name)
    req.onsuccess = () => res()
    req.onerror = () => rej(req.error)
  })
}

/** Resolves once `history` lists a version for which `check` holds (re-checked on every change of the list). */
function untilVersions(history: History, check: (names: string[]) => boolean, what: string, ms = 20_000): Promise<void> {
  const names = () => history.log.list().map((v) => v.name)
  if (check(names())) return Promise.resolve()
  return new Promise((res, rej) => {
    const timer = setTimeout(() => (off(), rej(new Error(`timed out waiting for ${what}; versions: ${JSON.stringify(names())}`))), ms)
    const off = history.log.onChange(() => {
      if (!check(names())) return
      clearTimeout(timer)
      off()
      res()
    })
  })
}

async function close(history: History, core: SessionCore) {
  await history.destroy()
  await core.destroy()
}

describe('private documents: history', () => {
  let server: ServerProcess
  beforeAll(async () => {
    server = await startServer({ args: ['--log-level', 'debug'] })
  })
  afterAll(async () => {
    await server?.stop()
  })

  it('versions go to the server sealed (no plaintext in its files, logs or frames); a new device with the full link lists them, a wrong key nothing', async () => {
    const docId = newDocId()
    const key = newLinkKey()
    const marker = `history-marker-${Math.random().toString(36).slice(2)}`
    const a = backupSession(server, docId, { linkKey: key, createdHere: true })
    const ha = openHistory(a)
    await untilFacts(a, (f) => f.link === 'synced', 'A synced')
    const backup = await ha.whenBackup
    expect(backup?.private).toBeTruthy()
    const link = backup!.private!
    if (!link.synced) await new Promise<void>((res) => link.on('synced', (s) => s && res()))

    a.text.insert(0, `text-${marker}\n`)
    const acked = new Promise((res) => link.once('ack', res))
    ha.recorder!.save(`name-${marker}`)
    await acked

    // What /log/<docId>.history serves anyone: entries, sealed.
    const log = await readLog(server.wsUrl, historyDocId(docId))
    expect(log.entries.length).toBeGreaterThan(0)
    for (const f of log.raw) expect(contains(f, marker)).toBe(false)
    // Nothing on /sync/<docId>.history (the plain backup of other documents' versions).
    const stock = new WebsocketProvider(`${server.wsUrl}/sync`, historyDocId(docId), new Y.Doc(), { WebSocketPolyfill: WebSocket as unknown as typeof globalThis.WebSocket, disableBc: true })
    await new Promise<void>((res) => stock.once('sync', () => res()))
    expect(stock.doc.getArray('versions').length).toBe(0)
    stock.destroy()
    // The database files, WAL included, and everything the server printed.
    const files = ['murmur.db', 'murmur.db-wal'].map((n) => join(server.dataDir, n)).filter(existsSync)
    expect(files.length).toBeGreaterThan(0)
    for (const file of files) expect(readFileSync(file).includes(marker), file).toBe(false)
    expect(server.output()).not.toContain(marker)

    // A new device (no IndexedDB copy of either) with the full link lists the version from the server alone.
    await close(ha, a)
    await Promise.all([forget(docId), forget(historyDocId(docId))])
    const b = backupSession(server, docId, { linkKey: key })
    const hb = openHistory(b)
    await untilVersions(hb, (names) => names.includes(`name-${marker}`), 'the version on a new device')
    expect(hb.log.newest()!.text).toBe(`text-${marker}\n`)
    await close(hb, b)

    // A wrong key: the entries do not open, nothing is listed.
    await Promise.all([forget(docId), forget(historyDocId(docId))])
    const c = backupSession(server, docId, { linkKey: newLinkKey() })
    const hc = openHistory(c)
    const wrong = (await hc.whenBackup)!.private!
    await new Promise<void>((res) => (wrong.synced ? res() : wrong.on('synced', (s) => s && res())))
    expect(wrong.skipped).toBeGreaterThan(0)
    expect(hc.log.list()).toEqual([])
    await close(hc, c)

    // Only a document's own companion has a log: anything else after the id is refused (4404).
    const ws = new WebSocket(`${server.wsUrl}/log/${docId}.history.history`)
    expect(await new Promise<number>((res) => ws.on('close', (code) => res(code)))).toBe(4404)
  })

  it('the sealed history log is compacted every 20 versions, and a new device still lists them all', async () => {
    const docId = newDocId()
    const key = newLinkKey()
    const a = backupSession(server, docId, { linkKey: key, createdHere: true })
    const ha = openHistory(a)
    await untilFacts(a, (f) => f.link === 'synced', 'A synced')
    const link = (await ha.whenBackup)!.private!
    if (!link.synced) await new Promise<void>((res) => link.on('synced', (s) => s && res()))
    const compacted = new Promise((res) => link.once('compacted', res))
    let acks = 0
    const allAcked = new Promise<void>((res) => link.on('ack', () => ++acks === 45 && res()))
    for (let i = 0; i < 45; i++) {
      a.text.insert(a.text.length, `line ${i}\n`)
      ha.recorder!.save(`v${i}`)
    }
    // Every version appended and acknowledged (one append each), and the log compacted meanwhile.
    await Promise.all([compacted, allAcked])
    expect(ha.log.list()).toHaveLength(45)
    await close(ha, a)
    const log = await readLog(server.wsUrl, historyDocId(docId))
    expect(log.entries.some((e) => e.snapshot)).toBe(true)
    expect(log.entries.length).toBeLessThan(45)

    await Promise.all([forget(docId), forget(historyDocId(docId))])
    const b = backupSession(server, docId, { linkKey: key })
    const hb = openHistory(b)
    await untilVersions(hb, (names) => names.length === 45, 'all 45 versions on a new device')
    await close(hb, b)
  })
})
