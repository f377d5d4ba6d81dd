/**
 * Private documents against a real server (child process, SQLite file):
 * the server stores and relays only ciphertext, a fresh client with the full
 * link restores from the server alone, a wrong or missing key reads
 * nothing, and forged writes are refused with 4403 with nothing stored.
 */
import 'fake-indexeddb/auto'
import { readFileSync, existsSync } from 'node:fs'
import { join } from 'node:path'
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest'
import WebSocket from 'ws'
import * as Y from 'yjs'
import { WebsocketProvider } from 'y-websocket'
import type { SessionCore, SessionOptions } from '../../src/session/core.ts'
import { newDocId } from '../../src/protocol/ids.ts'
import { CloseCode } from '../../src/protocol/messages.ts'
import { LogMessage } from '../../src/protocol/log.ts'
import { newLinkKey } from '../../src/private/key.ts'
import { deriveDocKeys, open } from '../../src/private/crypto.ts'
import { startServer, type ServerProcess } from '../helpers/server.ts'
import { backupSession, healthz as healthy, untilFacts } from '../helpers/session.ts'
import { is, rawLog, readLog } from '../helpers/log-client.ts'

const sessions: SessionCore[] = []
afterEach(async () => {
  await Promise.all(sessions.splice(0).map((s) => s.destroy()))
})

function session(server: ServerProcess, docId: string, opts: Partial<SessionOptions>): SessionCore {
  const s = backupSession(server, docId, opts)
  sessions.push(s)
  return s
}

/** Drops this process's IndexedDB copy of `docId`, so the next session has only the server. */
function forget(docId: string): Promise<void> {
  return new Promise((res, rej) => {
    const req = indexedDB.deleteDatabase(docId)
    req.onsuccess = () => res()
    req.onerror = () => rej(req.error)
  })
}

const contains = (hay: Uint8Array, needle: string) => Buffer.from(hay.buffer, hay.byteOffset, hay.byteLength).includes(Buffer.from(needle))

describe('private documents', () => {
  let server: ServerProcess
  beforeAll(async () => {
    server = await startServer({ args: ['--log-level', 'debug'] })
  })
  afterAll(async () => {
    await server?.stop()
  })

  it('the server never holds the text: not in its database files (with WAL), its logs, /sync frames or /log frames; a fresh client with the link restores it from the server alone', async () => {
    const docId = newDocId()
    const key = newLinkKey()
    const marker = `secret-marker-${Math.random().toString(36).slice(2)}`
    const a = session(server, docId, { linkKey: key, createdHere: true })
    await untilFacts(a, (f) => f.link === 'synced', 'A synced')
    a.text.insert(0, `# Plans\n${marker}\n`)
    a.awareness.setLocalStateField('user', { name: `name-${marker}`, color: '#123456', colorLight: '#12345633' })
    await untilFacts(a, (f) => f.backedUp && f.unbackedChanges === 0, 'A backed up')

    // A stock y-websocket client on /sync/<docId>: every frame it gets is free of the marker.
    const frames: Uint8Array[] = []
    class Capture extends WebSocket {
      constructor(url: string) {
        super(url)
        this.on('message', (d: Buffer) => frames.push(new Uint8Array(d)))
      }
    }
    const stock = new WebsocketProvider(`${server.wsUrl}/sync`, docId, new Y.Doc(), { WebSocketPolyfill: Capture as unknown as typeof globalThis.WebSocket, disableBc: true })
    await new Promise<void>((res) => stock.once('sync', () => res()))
    expect(stock.doc.getText('text').toString()).toBe('')
    stock.destroy()
    expect(frames.length).toBeGreaterThan(0)
    for (const f of frames) expect(contains(f, marker)).toBe(false)

    // What /log serves anyone who knows the docId: ciphertext only.
    const log = await readLog(server.wsUrl, docId)
    expect(log.entries.length).toBeGreaterThan(0)
    for (const f of log.raw) expect(contains(f, marker)).toBe(false)

    // The database files, WAL included, and everything the server printed.
    const files = ['murmur.db', 'murmur.db-wal'].map((n) => join(server.dataDir, n)).filter(existsSync)
    expect(files.length).toBeGreaterThan(0)
    for (const file of files) expect(readFileSync(file).includes(marker), file).toBe(false)
    expect(server.output()).not.toContain(marker)

    // A fresh client (no IndexedDB copy) with the full link gets the text from the server alone.
    await a.destroy()
    await forget(docId)
    const b = session(server, docId, { linkKey: key })
    await untilFacts(b, (f) => f.link === 'synced', 'B synced')
    expect(b.text.toString()).toContain(marker)
    expect(b.privateLog?.skipped).toBe(0)
  })

  it('a wrong key reads nothing and cannot write (4403, nothing stored); a keyless raw reader gets only ciphertext', async () => {
    const docId = newDocId()
    const key = newLinkKey()
    const marker = `wrong-key-marker-${Math.random().toString(36).slice(2)}`
    const a = session(server, docId, { linkKey: key, createdHere: true })
    await untilFacts(a, (f) => f.link === 'synced', 'A synced')
    a.text.insert(0, marker)
    await untilFacts(a, (f) => f.backedUp, 'A backed up')
    await a.destroy()
    await forget(docId)
    const before = await readLog(server.wsUrl, docId)

    const warnings: unknown[][] = []
    const warn = console.warn
    console.warn = (...args: unknown[]) => warnings.push(args)
    try {
      const c = session(server, docId, { linkKey: newLinkKey() })
      await untilFacts(c, (f) => f.link === 'synced', 'C synced')
      expect(c.text.toString()).toBe('')
      expect(c.privateLog!.skipped).toBeGreaterThan(0)
      expect(warnings.filter((w) => String(w[0]).includes('skipping')).length).toBe(1)
      c.text.insert(0, 'vandalism')
      await untilFacts(c, (f) => f.serverDetail !== null && f.serverDetail.includes('cannot write'), 'C refused')
    } finally {
      console.warn = warn
    }
    const after = await readLog(server.wsUrl, docId)
    expect(after.lastSeq).toBe(before.lastSeq)
    // The right key decrypts what is stored.
    const keys = await deriveDocKeys(key, docId)
    const doc = new Y.Doc()
    for (const e of after.entries) Y.applyUpdate(doc, await open(keys.content, e.data))
    expect(doc.getText('text').toString()).toBe(marker)
  })

  it('forged appends and forged snapshots are refused with 4403 and change nothing', async () => {
    const docId = newDocId()
    const keys = await deriveDocKeys(newLinkKey(), docId)
    const owner = await rawLog(server.wsUrl, docId)
    owner.send({ type: LogMessage.append, nonce: 1, proof: keys.writeProof, data: new Uint8Array([1, 2, 3]) })
    expect((await owner.until(is.appended)).seq).toBe(1)
    owner.close()

    const forged = crypto.getRandomValues(new Uint8Array(32))
    const a = await rawLog(server.wsUrl, docId)
    a.send({ type: LogMessage.append, nonce: 1, proof: forged, data: new Uint8Array([9, 9, 9]) })
    expect(await a.closed).toBe(CloseCode.forbidden)
    const s = await rawLog(server.wsUrl, docId)
    s.send({ type: LogMessage.snapshot, nonce: 1, proof: forged, upToSeq: 1, data: new Uint8Array([9, 9, 9]) })
    expect(await s.closed).toBe(CloseCode.forbidden)
    const m = await rawLog(server.wsUrl, docId)
    m.send({ type: LogMessage.append, nonce: 1, proof: new Uint8Array(0), data: new Uint8Array([9]) })
    expect(await m.closed).toBe(CloseCode.badMessage)

    const log = await readLog(server.wsUrl, docId)
    expect(log.lastSeq).toBe(1)
    expect(log.entries.map((e) => [...e.data])).toEqual([[1, 2, 3]])
  })

  it('GET /log/<docId> tells whether an id is a private document, nothing else', async () => {
    const docId = newDocId()
    expect(await (await fetch(`${server.url}/log/${docId}`)).json()).toEqual({ private: false })
    const keys = await deriveDocKeys(newLinkKey(), docId)
    const owner = await rawLog(server.wsUrl, docId)
    owner.send({ type: LogMessage.append, nonce: 1, proof: keys.writeProof, data: new Uint8Array([1]) })
    await owner.until(is.appended)
    owner.close()
    expect(await (await fetch(`${server.url}/log/${docId}`)).json()).toEqual({ private: true })
    expect((await fetch(`${server.url}/log/bad%20id`)).status).toBe(404)
  })

  it('presence travels through the server sealed: a peer sees the name, a raw listener only ciphertext', async () => {
    const docId = newDocId()
    const key = newLinkKey()
    const marker = `presence-${Math.random().toString(36).slice(2)}`
    const listener = await rawLog(server.wsUrl, docId)
    listener.send({ type: LogMessage.subscribe, cursor: 0 })
    const a = session(server, docId, { linkKey: key, createdHere: true })
    const b = session(server, docId, { linkKey: key, createdHere: true })
    await Promise.all([untilFacts(a, (f) => f.link === 'synced', 'A synced'), untilFacts(b, (f) => f.link === 'synced', 'B synced')])
    a.setUser({ name: marker, color: '#123456', colorLight: '#12345633' })
    const seen = await untilFacts(b, (f) => f.peerList.some((p) => p.name === marker), 'B sees A by name')
    expect(seen.peerList.find((p) => p.name === marker)?.via).toBe('server')
    await listener.until((f): f is Extract<typeof f, { type: 3 }> => f.type === LogMessage.awareness)
    listener.close()
    for (const f of listener.raw) expect(contains(f, marker)).toBe(false)
  })

  it('bad input on /log closes only that socket with a documented code', async () => {
    const docId = newDocId()
    const text = await rawLog(server.wsUrl, docId)
    text.ws.send('hello')
    expect(await text.closed).toBe(CloseCode.badMessage)
    const junk = await rawLog(server.wsUrl, docId)
    junk.ws.send(new Uint8Array([99, 1, 2]))
    expect(await junk.closed).toBe(CloseCode.badMessage)
    const big = await rawLog(server.wsUrl, docId)
    big.send({ type: LogMessage.awareness, data: new Uint8Array(64 * 1024 + 1) })
    expect(await big.closed).toBe(CloseCode.badMessage)
    const past = await rawLog(server.wsUrl, docId)
    const keys = await deriveDocKeys(newLinkKey(), docId)
    past.send({ type: LogMessage.append, nonce: 1, proof: keys.writeProof, data: new Uint8Array([1]) })
    await past.until(is.appended)
    past.send({ type: LogMessage.snapshot, nonce: 2, proof: keys.writeProof, upToSeq: 5, data: new Uint8Array([1]) })
    expect(await past.closed).toBe(CloseCode.badMessage)
    const ws = new WebSocket(`${server.wsUrl}/log/bad%20id`)
    expect(await new Promise((res) => ws.once('close', res))).toBe(CloseCode.notFound)
    // The hybrid path's frames: a tag above 32 bytes, an unknown link mode (frame or URL), a backwards fetch range.
    const tagged = await rawLog(server.wsUrl, docId)
    tagged.send({ type: LogMessage.append, nonce: 1, proof: keys.writeProof, data: new Uint8Array([1]), tag: new Uint8Array(33) })
    expect(await tagged.closed).toBe(CloseCode.badMessage)
    const mode = await rawLog(server.wsUrl, docId)
    mode.send({ type: LogMessage.linkMode, mode: 7 })
    expect(await mode.closed).toBe(CloseCode.badMessage)
    const modeUrl = new WebSocket(`${server.wsUrl}/log/${docId}?link=sideways`)
    expect(await new Promise((res) => modeUrl.once('close', res))).toBe(CloseCode.badMessage)
    const range = await rawLog(server.wsUrl, docId)
    range.send({ type: LogMessage.fetch, from: 5, to: 2 })
    expect(await range.closed).toBe(CloseCode.badMessage)
    expect(await healthy(server)).toBe(200)
  })
})

it('a write to a private log while storage is above --max-storage-bytes is refused with 4507', async () => {
  const server = await startServer({ args: ['--max-storage-bytes', '1'] })
  try {
    const docId = newDocId()
    const keys = await deriveDocKeys(newLinkKey(), docId)
    // The size is read once a second: wait until a write is refused.
    let code = 0
    for (let i = 0; i < 30 && code !== CloseCode.storageFull; i++) {
      const c = await rawLog(server.wsUrl, docId)
      c.send({ type: LogMessage.append, nonce: 1, proof: keys.writeProof, data: new Uint8Array([1]) })
      const stored = await Promise.race([c.closed.then(() => false), c.until(is.appended).then(() => true)])
      if (stored) {
        c.close()
        await new Promise((r) => setTimeout(r, 250))
      } else code = await c.closed
    }
    expect(code).toBe(CloseCode.storageFull)
  } finally {
    await server.stop()
  }
})
