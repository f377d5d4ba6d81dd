/**
 * The client's backup path against the real murmur server (child process):
 * config.json → y-websocket → durable query/ack → "backed up", across a
 * server restart, and with access tokens.
 */
import 'fake-indexeddb/auto'
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest'
import WebSocket from 'ws'
import { SessionCore, type SessionFacts, type SessionOptions } from '../../src/session/core.ts'
import { loadConfig } from '../../src/session/config.ts'
import { memoryStorage } from '../../src/session/storage.ts'
import { serverState } from '../../src/session/status.ts'
import { startServer, type ServerProcess } from '../helpers/server.ts'
import { untilDoc, yClient } from '../helpers/clients.ts'
import { mintToken } from '../../server/auth.ts'
import { untilFacts as until } from '../helpers/session.ts'

const identity = { name: 'Backup tester', color: '#2b8a3e', colorLight: '#2b8a3e33' }
let n = 0
const freshId = (p: string) => `${p}-${process.pid}-${Date.now().toString(36)}-${n++}`

const open: SessionCore[] = []
afterEach(async () => {
  await Promise.all(open.splice(0).map((s) => s.destroy()))
})

function session(server: ServerProcess, docId: string, opts: Partial<SessionOptions> = {}): SessionCore {
  const s = new SessionCore(docId, {
    config: loadConfig({ base: server.url, fetch, storage: memoryStorage() }),
    identity,
    webrtc: false, // WebRTC is covered by the e2e suite; here only the backup path
    WebSocketPolyfill: WebSocket,
    ...opts,
  })
  open.push(s)
  return s
}

const state = (f: SessionFacts) => serverState(f.link, f.backedUp)

describe('backup against the murmur server', () => {
  let server: ServerProcess
  beforeAll(async () => {
    server = await startServer()
  })
  afterAll(async () => {
    await server?.stop()
  })

  it('reads config.json, connects, and is backed up only after the durable ack', async () => {
    const id = freshId('backup')
    const s = session(server, id)
    await s.ready
    expect(s.facts.configSource).toBe('server')
    expect(s.websocket).not.toBeNull()
    expect(s.websocket!.url).toBe(`${server.wsUrl}/sync/${id}`)
    await until(s, (f) => state(f) === 'backed-up', 'backed up (empty doc)')

    s.text.insert(0, 'durable words')
    // The edit immediately makes it "not yet backed up"...
    expect(s.tracker.backedUp).toBe(false)
    await until(s, (f) => state(f) === 'not-backed-up' || state(f) === 'backed-up', 'state after edit')
    // ...until the server acknowledges nonce 1.
    const f = await until(s, (f) => state(f) === 'backed-up' && f.localChanges === 1, 'backed up after edit')
    expect(f.unbackedChanges).toBe(0)
    expect(f.lastBackupAt).not.toBeNull()

    // The server really has it: a stock client that never saw our session reads it.
    const reader = yClient(server.wsUrl, id)
    await reader.synced
    await untilDoc(reader.doc, () => reader.text.toString() === 'durable words', 'reader sees the text')
    reader.destroy()
  })

  it('synced is not "backed up" until the server acknowledges', async () => {
    const s = session(server, freshId('noack'))
    await s.ready
    const acks: number[] = []
    let acked: () => void = () => {}
    const edit = 1
    const ackOfEdit = new Promise<void>((res) => (acked = res))
    // Swallow acks: the session must stay "not yet backed up" although it is synced.
    s.websocket!.messageHandlers[101] = (_e, d) => {
      acks.push(d.arr[d.pos])
      if (d.arr[d.pos] >= edit) acked()
    }
    await until(s, (f) => f.link === 'synced', 'synced')
    s.text.insert(0, 'x')
    await ackOfEdit // the server did answer the query that covers the edit
    expect(acks).toContain(edit)
    expect(state(s.facts)).toBe('not-backed-up')
    expect(s.facts.unbackedChanges).toBe(1)
  })

  it('many fast edits end backed up with nonce = number of local changes', async () => {
    const s = session(server, freshId('burst'))
    await until(s, (f) => f.link === 'synced', 'synced')
    for (let i = 0; i < 200; i++) s.text.insert(s.text.length, `${i} `)
    const f = await until(s, (f) => f.backedUp && f.localChanges === 200, 'all 200 acked')
    expect(f.unbackedChanges).toBe(0)
    expect(s.tracker.state().acked).toBe(200)
  })

  it('a server restart: offline, unbacked edits, then backed up again after reconnect', async () => {
    const dataDir = server.dataDir
    const port = server.port
    const id = freshId('restart')
    const s = session(server, id)
    await until(s, (f) => f.backedUp, 'initially backed up')
    s.text.insert(0, 'before ')
    await until(s, (f) => f.backedUp && f.localChanges === 1, 'first edit backed up')

    await server.stop()
    await until(s, (f) => f.link === 'offline', 'offline')
    expect(state(s.facts)).toBe('offline')
    expect(s.facts.backedUp).toBe(false)
    expect(s.facts.unbackedChanges).toBe(0) // the first edit was confirmed durable
    s.text.insert(s.text.length, 'during outage')
    await until(s, (f) => f.unbackedChanges === 1, 'offline edit counted')

    server = await startServer({ dataDir, port })
    const f = await until(s, (f) => f.backedUp && f.localChanges === 2, 'backed up after restart', 30_000)
    expect(f.unbackedChanges).toBe(0)

    const reader = yClient(server.wsUrl, id)
    await reader.synced
    await untilDoc(reader.doc, () => reader.text.toString() === 'before during outage', 'reader sees both edits')
    reader.destroy()
  })

  it('destroy closes the socket: the server sees the connection go', async () => {
    // The server's own count of open /sync sockets (earlier tests' closes may still be landing).
    const syncSockets = async () => Number(/^murmur_connections\{endpoint="sync"\} (\d+)/m.exec(await (await fetch(`${server.url}/metrics`)).text())?.[1] ?? 0)
    await expect.poll(syncSockets, { timeout: 10_000 }).toBe(0)
    const s = session(server, freshId('close'))
    await until(s, (f) => f.link === 'synced', 'synced')
    const socket = s.websocket!.ws as unknown as WebSocket
    expect(socket.readyState).toBe(WebSocket.OPEN)
    expect(await syncSockets()).toBe(1)
    await s.destroy()
    await new Promise<void>((res) => (socket.readyState === WebSocket.CLOSED ? res() : socket.once('close', () => res())))
    expect(s.websocket!.shouldConnect).toBe(false)
    await expect.poll(syncSockets, { timeout: 10_000 }).toBe(0)
  })
})

describe('backup with access tokens', () => {
  const secret = 'test-secret-for-client-tests'
  let server: ServerProcess
  beforeAll(async () => {
    server = await startServer({ args: ['--auth-secret', secret] })
  })
  afterAll(async () => {
    await server?.stop()
  })

  it('passes the fragment token as ?token= and is refused without it', async () => {
    const id = freshId('auth')
    const denied = session(server, id)
    await denied.ready
    expect(denied.facts.auth).toBe(true)
    const f = await until(denied, (f) => f.link === 'offline' && f.serverDetail !== null, 'refused')
    expect(f.serverDetail).toMatch(/access denied/)

    await denied.destroy()

    const token = mintToken(secret, id, 'rw', 600)
    const ok = session(server, id, { token })
    await until(ok, (f) => f.backedUp, 'backed up with token')
    expect(ok.websocket!.url).toBe(`${server.wsUrl}/sync/${id}?token=${encodeURIComponent(token)}`)
  })
})
