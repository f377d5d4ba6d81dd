import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import WebSocket from 'ws'
import * as Y from 'yjs'
import { Awareness } from 'y-protocols/awareness'
import { WebsocketProvider } from 'y-websocket'
import { BackupLink, type LinkModeName } from '../../src/session/backup-link.ts'
import { metric, startServer, type ServerProcess } from '../helpers/server.ts'
import { snapshotOf, untilDoc } from '../helpers/clients.ts'

/** The origin this test gives updates that "came over WebRTC". */
const PEER = Symbol('peer')

/** A real y-websocket link with the hybrid policy, as SessionCore composes it. */
function linked(server: ServerProcess, docId: string, mode: LinkModeName = 'backup', pollMs = 60_000) {
  const doc = new Y.Doc()
  const awareness = new Awareness(doc)
  const ws = new WebsocketProvider(`${server.wsUrl}/sync`, docId, doc, { awareness, params: { link: mode }, disableBc: true, WebSocketPolyfill: WebSocket as never })
  const waiters = new Set<() => void>()
  const link = new BackupLink(ws, awareness, { mode, isPeerOrigin: (o) => o === PEER, reconcileMs: 50, pollMs, onChange: () => waiters.forEach((w) => w()) })
  ws.on('sync', (s: boolean) => s && link.synced())
  return {
    doc,
    ws,
    link,
    waiters,
    text: doc.getText('text'),
    destroy() {
      link.destroy()
      ws.destroy()
      awareness.destroy()
    },
  }
}

/** Resolves when `link.covered === value`, observed through its onChange hook. */
function coveredIs(l: ReturnType<typeof linked>, value: boolean, what: string): Promise<void> {
  if (l.link.covered === value) return Promise.resolve()
  return new Promise((res, rej) => {
    const timer = setTimeout(() => (l.waiters.delete(check), rej(new Error(`timed out: ${what}`))), 15_000)
    const check = () => {
      if (l.link.covered !== value) return
      clearTimeout(timer)
      l.waiters.delete(check)
      res()
    }
    l.waiters.add(check)
  })
}

/** Resolves once a fresh client of the server reads `text`. */
async function serverHas(server: ServerProcess, docId: string, text: string): Promise<void> {
  for (;;) {
    if ((await snapshotOf(server.wsUrl, docId)).text === text) return
  }
}

const send = (from: Y.Doc, to: Y.Doc, origin: unknown, since?: Uint8Array) => Y.applyUpdate(to, Y.encodeStateAsUpdate(from, since ?? Y.encodeStateVector(to)), origin)

describe('BackupLink (hybrid data path, client side) against the real server', () => {
  let server: ServerProcess
  beforeAll(async () => {
    server = await startServer()
  })
  afterAll(async () => {
    await server?.stop()
  })

  it('uploads a change from a peer that cannot reach the server, deletes included, and is covered only once the server has it', async () => {
    const docId = 'link-offline-author'
    const l = linked(server, docId)
    await coveredIs(l, true, 'covered after the first sync')
    // The author has no server link: its insert arrives over "WebRTC" only.
    const author = new Y.Doc()
    author.getText('text').insert(0, 'written where the server cannot hear')
    send(author, l.doc, PEER)
    expect(l.link.covered).toBe(false)
    await coveredIs(l, true, 'covered after uploading the peer insert')
    expect(l.link.uploads).toBe(1)
    expect((await snapshotOf(server.wsUrl, docId)).text).toBe('written where the server cannot hear')
    // A delete-only change: no state vector moves, only the delete set.
    const sv = Y.encodeStateVector(author)
    author.getText('text').delete(0, 8)
    send(author, l.doc, PEER, sv)
    expect(l.link.covered).toBe(false)
    await coveredIs(l, true, 'covered after uploading the peer delete')
    expect((await snapshotOf(server.wsUrl, docId)).text).toBe('where the server cannot hear')
    l.destroy()
  })

  it('uploads nothing for a peer change its linked author already backed up (each change reaches the server once)', async () => {
    const docId = 'link-author-linked'
    const a = linked(server, docId)
    const b = linked(server, docId)
    await Promise.all([coveredIs(a, true, 'a covered'), coveredIs(b, true, 'b covered')])
    const uploaded = () => metric(server, 'murmur_sync_update_bytes_total{kind="uploaded"}')
    const before = await uploaded()
    // Every update frame B sends from here on.
    const sentByB: Uint8Array[] = []
    const socket = b.ws.ws!
    const realSend = socket.send.bind(socket)
    socket.send = (data: Uint8Array) => (data[0] === 0 && data[1] === 2 && sentByB.push(data), realSend(data))
    // A types (uploads it itself); B gets it directly from A ("WebRTC").
    const svB = Y.encodeStateVector(b.doc)
    a.text.insert(0, 'typed by a')
    await serverHas(server, docId, 'typed by a')
    send(a.doc, b.doc, PEER, svB)
    expect(b.link.covered).toBe(false)
    await coveredIs(b, true, 'b covered by the server state')
    const sv = Y.encodeStateVector(a.doc)
    a.text.delete(0, 9)
    await serverHas(server, docId, 'a')
    send(a.doc, b.doc, PEER, sv)
    expect(b.link.covered).toBe(false)
    // Covered again means B's reconcile ran: had it uploaded anything, that happened before.
    await coveredIs(b, true, 'b covered after the delete')
    expect(b.link.uploads).toBe(0)
    expect(sentByB).toEqual([])
    const after = await uploaded()
    expect(after - before).toBeGreaterThan(0)
    a.destroy()
    b.destroy()
  })

  it('split meshes: two backup-only links that never meet converge through the server', async () => {
    const docId = 'link-split'
    const a = linked(server, docId, 'backup', 200)
    const b = linked(server, docId, 'backup', 200)
    await Promise.all([coveredIs(a, true, 'a covered'), coveredIs(b, true, 'b covered')])
    a.text.insert(0, 'group one. ')
    b.text.insert(0, 'group two. ')
    await untilDoc(a.doc, () => a.text.length === 22, 'a has both')
    await untilDoc(b.doc, () => b.text.length === 22, 'b has both')
    expect(a.text.toString()).toBe(b.text.toString())
    a.destroy()
    b.destroy()
  })

  it('relay mode uploads peer changes at once and gets live updates from backup-only links', async () => {
    const docId = 'link-relay'
    const r = linked(server, docId, 'relay')
    const b = linked(server, docId, 'backup')
    await Promise.all([coveredIs(r, true, 'r covered'), coveredIs(b, true, 'b covered')])
    b.text.insert(0, 'live to the relayed peer')
    await untilDoc(r.doc, () => r.text.toString() === 'live to the relayed peer', 'relayed peer sees it live')
    r.text.insert(0, '> ')
    await untilDoc(b.doc, () => b.text.toString().startsWith('> '), 'backup link sees the relayed peer live')
    r.destroy()
    b.destroy()
  })

  it('a companion link follows its document link’s mode (live relay of the history while the document relays)', async () => {
    const main = linked(server, 'link-follow-main', 'backup')
    const companion = linked(server, 'link-follow-main.history', 'relay')
    const other = linked(server, 'link-follow-main.history', 'relay')
    const stop = main.link.follow(companion.link)
    expect(companion.link.mode).toBe('backup')
    expect(companion.ws.params.link).toBe('backup') // and so its next connection greets in backup mode
    main.link.setMode('relay', 0, 1)
    expect(companion.link.mode).toBe('relay')
    // Relayed again: another client's change reaches it live.
    await Promise.all([coveredIs(companion, true, 'companion covered'), coveredIs(other, true, 'other covered')])
    other.text.insert(0, 'live')
    await untilDoc(companion.doc, () => companion.text.toString() === 'live', 'the companion gets it live')
    stop()
    main.link.setMode('backup', 1, 0)
    expect(companion.link.mode).toBe('relay')
    main.destroy()
    companion.destroy()
    other.destroy()
  })
})
