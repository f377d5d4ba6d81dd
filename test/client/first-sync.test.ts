/**
 * Issue 12 ("the first five minutes"), session side, against a real murmur
 * server process: a link opened while the server is down waits (and says
 * the server is unreachable) and recovers without a reload; a link no one
 * wrote under says so and stays out of the recent list; the last backup
 * time survives a reload; the peer count follows the peer list.
 */
import 'fake-indexeddb/auto'
import { afterAll, afterEach, beforeAll, describe, expect, it, onTestFinished } from 'vitest'
import WebSocket from 'ws'
import * as Y from 'yjs'
import { Awareness, encodeAwarenessUpdate, applyAwarenessUpdate, removeAwarenessStates } from 'y-protocols/awareness'
import { SessionCore, type SessionFacts, type SessionOptions } from '../../src/session/core.ts'
import { configRetryDelay, loadConfig } from '../../src/session/config.ts'
import { initialFirstSync, nextFirstSync } from '../../src/session/first-sync.ts'
import { readRecent } from '../../src/session/recent.ts'
import { memoryStorage } from '../../src/session/storage.ts'
import { serverState } from '../../src/session/status.ts'
import { displayTitle } from '../../src/session/title.ts'
import { startServer, type ServerProcess } from '../helpers/server.ts'
import { untilDoc, yClient } from '../helpers/clients.ts'
import { untilFacts } from '../helpers/session.ts'

/** Facts once `check` holds (up to 30 s here). */
const until = (s: SessionCore, check: (f: SessionFacts) => boolean, what: string, ms = 30_000) => untilFacts(s, check, what, ms)

const identity = { name: 'Newcomer', color: '#2b8a3e', colorLight: '#2b8a3e33' }
let n = 0
const freshId = (p: string) => `${p}-${process.pid}-${Date.now().toString(36)}-${n++}`

const open: SessionCore[] = []
afterEach(async () => {
  await Promise.all(open.splice(0).map((s) => s.destroy()))
})

/** A session that loads its config from `base` (and reloads it the way the app does). */
function session(base: string, docId: string, opts: Partial<SessionOptions> = {}): SessionCore {
  const load = () => loadConfig({ base, fetch, storage: memoryStorage(), timeoutMs: 2000 })
  const s = new SessionCore(docId, { config: load(), reloadConfig: load, identity, webrtc: false, WebSocketPolyfill: WebSocket, titleDebounceMs: 10, ...opts })
  open.push(s)
  return s
}

describe('first-sync state machine', () => {
  it('waits only for links new to this device, and ends on content, an answer, an edit or a choice', () => {
    expect(initialFirstSync(true, false)).toBe('done')
    expect(initialFirstSync(false, true)).toBe('done')
    expect(initialFirstSync(false, false)).toBe('waiting')
    expect(nextFirstSync('waiting', { type: 'answered', empty: true })).toBe('empty')
    expect(nextFirstSync('waiting', { type: 'answered', empty: false })).toBe('done')
    expect(nextFirstSync('empty', { type: 'content' })).toBe('done')
    expect(nextFirstSync('empty', { type: 'edit' })).toBe('done')
    expect(nextFirstSync('waiting', { type: 'start' })).toBe('done')
    expect(nextFirstSync('done', { type: 'answered', empty: true })).toBe('done')
  })

  it('config retries back off from 1 s to at most 10 s', () => {
    expect([0, 1, 2, 3, 4, 5, 60].map((a) => configRetryDelay(a))).toEqual([1000, 2000, 4000, 8000, 10_000, 10_000, 10_000])
  })

  it('the heading never says "Untitled document" before the text is here (item 10)', () => {
    expect(displayTitle({ title: '', loaded: false, firstSync: 'waiting' })).toEqual({ text: 'Opening…', placeholder: true })
    expect(displayTitle({ title: '', loaded: true, firstSync: 'waiting' }).text).not.toMatch(/untitled/i)
    expect(displayTitle({ title: '', loaded: true, firstSync: 'done' })).toEqual({ text: 'Untitled document', placeholder: true })
    expect(displayTitle({ title: 'Meeting notes', loaded: true, firstSync: 'done' })).toEqual({ text: 'Meeting notes', placeholder: false })
  })
})

describe('a shared link against a real server', () => {
  let server: ServerProcess
  beforeAll(async () => {
    server = await startServer()
  })
  afterAll(async () => {
    await server?.stop()
  })

  it('item 1: opened while the server is down, it waits, says the server is unreachable, and recovers without a reload', async () => {
    const id = freshId('down')
    const writer = yClient(server.wsUrl, id)
    writer.text.insert(0, '# The real document\nwritten elsewhere')
    await writer.synced
    await untilDoc(writer.doc, () => true)
    // the server has it durably once a fresh client sees it
    const check = yClient(server.wsUrl, id)
    await untilDoc(check.doc, () => check.text.toString().startsWith('# The real document'), 'text on the server')
    check.destroy()
    writer.destroy()
    const port = server.port
    await server.stop()
    onTestFinished(async () => {
      // keep the server up for the next tests even when this one failed midway
      if (server.child.exitCode !== null || server.child.signalCode !== null) server = await startServer({ port, dataDir: server.dataDir })
    })

    const recent = memoryStorage()
    const s = session(server.url, id, { recent, titleDebounceMs: 60_000 })
    await s.loaded
    const down = await until(s, (f) => f.link === 'offline', 'server reported unreachable')
    expect(down).toMatchObject({ firstSync: 'waiting', configSource: 'none', signaling: 'unreachable' })
    expect(serverState(down.link, down.backedUp)).toBe('offline') // not "Backup off"
    expect(s.websocket).toBeNull()
    expect(readRecent(recent)).toEqual([])

    server = await startServer({ port, dataDir: server.dataDir })
    const arrived = await until(s, (f) => f.firstSync === 'done', 'document arrived after the server returned')
    expect(arrived.title).toBe('The real document') // with the text, not after the title debounce
    const back = await until(s, (f) => f.link === 'synced', 'synced')
    expect(s.text.toString()).toBe('# The real document\nwritten elsewhere')
    expect(back).toMatchObject({ configSource: 'server', title: 'The real document' })
    expect(readRecent(recent).map((e) => e.id)).toEqual([id])
  })

  it('item 3: a link no one has written under is reported empty and stays out of the recent list until written', async () => {
    const recent = memoryStorage()
    const id = freshId('typo')
    const s = session(server.url, id, { recent })
    const f = await until(s, (f) => f.firstSync !== 'waiting', 'an answer from the server')
    expect(f.firstSync).toBe('empty')
    expect(readRecent(recent)).toEqual([])
    await s.destroy()
    expect(readRecent(recent)).toEqual([])

    const again = session(server.url, id, { recent })
    await until(again, (f) => f.firstSync === 'empty', 'still empty on a second visit')
    again.text.insert(0, 'Now someone wrote here')
    await until(again, (f) => f.firstSync === 'done' && f.title === 'Now someone wrote here', 'written')
    expect(readRecent(recent)).toMatchObject([{ id, title: 'Now someone wrote here' }])
  })

  it('item 3: a document created on this device does not wait or warn', async () => {
    const s = session(server.url, freshId('new'), { createdHere: true })
    await s.loaded
    expect(s.facts.firstSync).toBe('done')
  })

  it('item 1: with no server and no peer the user can choose to start writing anyway', async () => {
    const s = new SessionCore(freshId('alone'), { config: null, identity, webrtc: false })
    open.push(s)
    await s.ready
    expect(s.facts).toMatchObject({ firstSync: 'waiting', link: 'off' })
    s.startWriting()
    await until(s, (f) => f.firstSync === 'done', 'started')
  })

  it('item 6: the last backup time survives a reload', async () => {
    const id = freshId('last')
    const a = session(server.url, id, { now: () => 1_700_000_000_000 })
    a.text.insert(0, 'backed up once')
    await until(a, (f) => f.backedUp && f.localChanges === 1, 'backed up')
    expect(a.facts.lastBackupAt).toBe(1_700_000_000_000)
    await a.destroy()

    const b = session('http://127.0.0.1:9', id) // server unreachable this time
    await b.loaded
    expect(b.facts.lastBackupAt).toBe(1_700_000_000_000)
    expect(b.facts.firstSync).toBe('done') // on this device already
  })

  it('item 6: while signaling cannot be reached the state is "unreachable", not "connecting"', async () => {
    const g = globalThis as { WebSocket?: unknown }
    const hadWebSocket = 'WebSocket' in g
    if (!hadWebSocket) g.WebSocket = WebSocket
    onTestFinished(() => {
      if (!hadWebSocket) delete g.WebSocket
    })
    const s = new SessionCore(freshId('sig'), {
      identity,
      peerOpts: { wrtc: {} }, // stands for a WebRTC implementation (Node has none)
      config: { source: 'server', base: 'http://127.0.0.1:9', config: { signaling: ['/signal'], iceServers: [], backup: false, syncUrl: '/sync', auth: false } },
    })
    open.push(s)
    await s.ready
    expect(s.facts.signaling).toBe('connecting')
    await until(s, (f) => f.signaling === 'unreachable', 'signaling unreachable')
  })
})

describe('peer count (item 4)', () => {
  it('counts a direct connection only while its peer is present, so it agrees with the peer list', async () => {
    const s = new SessionCore(freshId('count'), { config: null, identity, pollMs: 60_000 })
    open.push(s)
    await s.ready
    await until(s, () => s.webrtc?.room != null, 'room')
    const room = s.webrtc!.room!
    // A connected peer, as y-webrtc holds it (the real WebRTC path is in the e2e suite).
    const conn = { connected: true, closed: false, synced: true, peer: { send() {}, destroy() {} }, destroy() {} }
    room.webrtcConns.set('carol-peer', conn as never)
    const remote = new Y.Doc()
    const ra = new Awareness(remote)
    ra.setLocalState({ user: { name: 'Carol', color: '#2b8a3e' }, peerId: 'carol-peer' })
    applyAwarenessUpdate(s.awareness, encodeAwarenessUpdate(ra, [remote.clientID]), room)
    const joined = await until(s, (f) => f.peerList.length === 1, 'Carol listed')
    expect(joined.peerList[0].via).toBe('direct')
    expect(joined.peers).toBe(1)

    // Carol leaves: her awareness state goes at once, her RTCPeerConnection lingers until ICE gives up.
    removeAwarenessStates(ra, [remote.clientID], 'leave')
    applyAwarenessUpdate(s.awareness, encodeAwarenessUpdate(ra, [remote.clientID]), room)
    const left = await until(s, (f) => f.peerList.length === 0, 'Carol gone from the list')
    expect(conn.connected).toBe(true)
    expect(left.peers).toBe(0)
    room.webrtcConns.delete('carol-peer')
    ra.destroy()
  })
})
