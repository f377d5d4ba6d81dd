import 'fake-indexeddb/auto'
import { afterEach, describe, expect, it, onTestFinished } from 'vitest'
import * as Y from 'yjs'
import { SessionCore, type SessionFacts, type SessionOptions } from '../../src/session/core.ts'
import { readRecent } from '../../src/session/recent.ts'
import { memoryStorage } from '../../src/session/storage.ts'
import { createDocumentWithText } from '../../src/session/runtime.ts'
import { untilFacts } from '../helpers/session.ts'

/** Facts once `check` holds (up to 10 s here). */
const until = (s: SessionCore, check: (f: SessionFacts) => boolean, what: string, ms = 10_000) => untilFacts(s, check, what, ms)

const identity = { name: 'Tester', color: '#1971c2', colorLight: '#1971c233' }
let n = 0
const freshId = (p = 'doc') => `${p}-${process.pid}-${Date.now().toString(36)}-${n++}`

const open: SessionCore[] = []
function session(docId: string, opts: Partial<SessionOptions> = {}): SessionCore {
  const s = new SessionCore(docId, { config: null, identity, titleDebounceMs: 10, ...opts })
  open.push(s)
  return s
}
afterEach(async () => {
  await Promise.all(open.splice(0).map((s) => s.destroy()))
})

/** Resolves when `check(facts)` holds, re-checking on every change. */

describe('SessionCore with IndexedDB (fake-indexeddb in Node; real IndexedDB in test/e2e)', () => {
  it('open → edit → destroy → reopen shows the same text', async () => {
    const id = freshId()
    const a = session(id)
    await a.loaded
    expect(a.facts).toMatchObject({ loaded: true, local: 'saved' })
    a.text.insert(0, 'Hello murmur\nsecond line')
    a.text.insert(5, ',')
    await until(a, (f) => f.local === 'saved' && f.localChanges === 2, 'local save')
    await a.destroy()
    expect(a.doc.isDestroyed).toBe(true)

    const b = session(id)
    await b.loaded
    expect(b.text.toString()).toBe('Hello, murmur\nsecond line')
    expect(b.facts.title).toBe('Hello, murmur')
    expect(b.facts.localChanges).toBe(0) // loading from IndexedDB is not a local change
  })

  it('reports saving until IndexedDB has committed, then saved', async () => {
    const s = session(freshId())
    await s.loaded
    const seen: string[] = []
    s.onChange((f) => seen.push(f.local))
    s.text.insert(0, 'x')
    expect(s.facts.local).toBe('saving')
    await until(s, (f) => f.local === 'saved', 'saved')
    expect(seen).toContain('saved')
  })

  it('records the document in the recent list with its first line as title, once something is written', async () => {
    const recent = memoryStorage()
    const id = freshId()
    const s = session(id, { recent, now: () => 1234 })
    await s.loaded
    expect(readRecent(recent)).toEqual([]) // a link no one wrote under is not a document of this device
    s.text.insert(0, '# Meeting notes\n- item')
    await until(s, () => readRecent(recent).length === 1, 'listed after the first edit')
    expect(readRecent(recent)[0]).toMatchObject({ id, openedAt: 1234 })
    await until(s, (f) => f.title === 'Meeting notes', 'title')
    expect(readRecent(recent)[0].title).toBe('Meeting notes')
  })

  it('counts only local transactions as local changes', async () => {
    const s = session(freshId())
    await s.loaded
    s.text.insert(0, 'abc')
    s.doc.transact(() => s.text.insert(0, 'z'), 'some-local-origin')
    const remote = new Y.Doc()
    remote.getText('text').insert(0, 'remote ')
    Y.applyUpdate(s.doc, Y.encodeStateAsUpdate(remote), s.idb) // as if loaded from storage
    await until(s, (f) => f.localChanges === 2, 'two local changes')
    expect(s.facts.unbackedChanges).toBe(2)
    expect(s.tracker.localChanges).toBe(2)
  })

  it('imported text is on disk before the document is opened', async () => {
    const id = freshId('import')
    await createDocumentWithText(id, '# Imported\nbody')
    const s = session(id)
    await s.loaded
    expect(s.text.toString()).toBe('# Imported\nbody')
  })

  it('never uses public signaling or STUN defaults', async () => {
    const s = session(freshId(), { peerOpts: { wrtc: {} } })
    await s.ready
    expect(s.webrtc).not.toBeNull()
    expect(s.webrtc!.signalingUrls).toEqual([])
    expect(s.webrtc!.peerOpts).toMatchObject({ config: { iceServers: [] } })
    expect(s.webrtc!.peerOpts.config.iceServers).toEqual([])
    expect(s.websocket).toBeNull()
    expect(s.facts).toMatchObject({ configSource: 'none', link: 'off', signaling: 'none' })
    await until(s, () => typeof s.awareness.getLocalState()?.peerId === 'string', 'peerId in awareness')
    expect(s.awareness.getLocalState()?.peerId).toBe(s.webrtc!.room!.peerId)
    expect(s.awareness.getLocalState()?.user).toEqual(identity)
  })

  it('uses the configured signaling and ICE servers, with the token on every signaling URL', async () => {
    // y-webrtc's signaling client needs a global WebSocket (browsers have one; Node 20 does not).
    const g = globalThis as { WebSocket?: unknown }
    const hadWebSocket = 'WebSocket' in g
    if (!hadWebSocket) g.WebSocket = (await import('ws')).WebSocket
    onTestFinished(() => {
      if (!hadWebSocket) delete g.WebSocket
    })
    const s = session(freshId(), {
      peerOpts: { wrtc: {} }, // stands for a WebRTC implementation (Node has none)
      token: 'tok123',
      config: {
        source: 'server',
        base: 'http://127.0.0.1:9',
        config: { signaling: ['/signal', 'wss://127.0.0.1:9/s'], iceServers: [{ urls: 'stun:127.0.0.1:9' }], backup: false, syncUrl: '/sync', auth: true },
      },
    })
    await s.ready
    expect(s.webrtc!.signalingUrls).toEqual(['ws://127.0.0.1:9/signal?token=tok123', 'wss://127.0.0.1:9/s?token=tok123'])
    expect(s.webrtc!.peerOpts).toMatchObject({ config: { iceServers: [{ urls: 'stun:127.0.0.1:9' }] } })
    expect(s.facts).toMatchObject({ auth: true, signaling: 'connecting', link: 'off' })
  })

  it('without WebRTC support it does not announce itself on signaling', async () => {
    expect(typeof (globalThis as { RTCPeerConnection?: unknown }).RTCPeerConnection).toBe('undefined')
    const s = session(freshId(), {
      config: { source: 'server', base: 'http://127.0.0.1:9', config: { signaling: ['/signal'], iceServers: [], backup: false, syncUrl: '/sync', auth: false } },
    })
    await s.ready
    expect(s.webrtc!.signalingUrls).toEqual([])
    expect(s.facts.signaling).toBe('no-webrtc')
  })

  it('shows two tabs of one browser to each other (BroadcastChannel) as "browser" peers', async () => {
    // y-webrtc allows one room per process, so the second "tab" uses a different room
    // and we check the route classification through the first session's awareness.
    const s = session(freshId())
    await s.ready
    await until(s, () => s.webrtc?.room !== null, 'room')
    const room = s.webrtc!.room!
    room.bcConns.add('other-tab-peer')
    const remote = new Y.Doc()
    const { Awareness, encodeAwarenessUpdate, applyAwarenessUpdate } = await import('y-protocols/awareness')
    const ra = new Awareness(remote)
    ra.setLocalState({ user: { name: 'Other tab', color: '#e8590c' }, peerId: 'other-tab-peer' })
    applyAwarenessUpdate(s.awareness, encodeAwarenessUpdate(ra, [remote.clientID]), room)
    const f = await until(s, (f) => f.peerList.length === 1, 'peer listed')
    expect(f.peerList[0]).toMatchObject({ name: 'Other tab', via: 'browser' })
    ra.destroy()
  })
})

describe('SessionCore without IndexedDB', () => {
  it('says "unavailable" when IndexedDB refuses to open (private mode, blocked storage), and still edits', async () => {
    const real = globalThis.indexedDB
    // An IndexedDB whose open() fails the way a browser's does when storage is blocked. (y-indexeddb
    // leaves that rejection unhandled; vite.config.ts ignores it by this message and nothing else.)
    const refusing = {
      open() {
        const req = { error: new DOMException('murmur test: IndexedDB refused (storage blocked)', 'InvalidStateError') } as Record<string, unknown>
        setTimeout(() => (req.onerror as ((e: unknown) => void) | undefined)?.({ target: req }))
        return req
      },
    }
    globalThis.indexedDB = refusing as unknown as IDBFactory
    onTestFinished(() => {
      globalThis.indexedDB = real
    })
    const s = session(freshId('noidb'))
    const f = await until(s, (f) => f.loaded, 'loaded')
    expect(f.local).toBe('unavailable')
    s.text.insert(0, 'kept in memory')
    expect(s.text.toString()).toBe('kept in memory')
    expect(s.facts.local).toBe('unavailable') // never claims "saved on this device"
  })
})

describe('SessionCore lifecycle', () => {
  it('destroying many sessions leaves no listeners, timers or channels behind', async () => {
    // Warm up once so lazily created module-level resources are not counted.
    const warm = session(freshId('warm'))
    await warm.ready
    await warm.destroy()
    // A destroyed session's BroadcastChannel (MessagePort) and last timers go within ~100 ms: wait for that, not a fixed time.
    const active = () => process.getActiveResourcesInfo().filter((r) => r !== 'TTYWrap')
    await expect.poll(() => active().filter((r) => r === 'MessagePort' || r === 'Immediate'), { timeout: 5000, interval: 10 }).toEqual([])
    const exitBefore = process.listenerCount('exit')
    const resourcesBefore = active().length

    const docs: Y.Doc[] = []
    for (let i = 0; i < 25; i++) {
      const s = session(freshId('leak'))
      await s.ready
      s.text.insert(0, `doc ${i}`)
      docs.push(s.doc)
      const updateObservers = () => (s.doc as unknown as { _observers: Map<string, Set<unknown>> })._observers.get('update')?.size ?? 0
      expect(updateObservers()).toBeGreaterThanOrEqual(3) // ours, IndexedDB, y-webrtc room
      await s.destroy()
      expect(updateObservers()).toBe(0)
      expect(s.awareness.getLocalState()).toBeNull()
    }
    open.splice(0)
    expect(docs.every((d) => d.isDestroyed)).toBe(true)
    expect(process.listenerCount('exit')).toBe(exitBefore)
    // Whatever the 25 sessions held is released (bounded wait: a leak never reaches the baseline).
    await expect.poll(() => active().length, { timeout: 5000, interval: 10 }).toBeLessThanOrEqual(resourcesBefore)
  })

  it('destroy() right after construction (before IndexedDB loaded) is clean', async () => {
    const s = session(freshId())
    await s.destroy()
    await s.ready
    expect(s.destroyed).toBe(true)
    expect(s.webrtc).toBeNull()
    expect(s.doc.isDestroyed).toBe(true)
  })
})

describe('DocSession (runes wrapper)', () => {
  it('mirrors the core facts into its fields', async () => {
    const { DocSession } = await import('../../src/session/DocSession.svelte.ts')
    const id = freshId('runes')
    const s = new DocSession(id, { config: null, identity, titleDebounceMs: 10 })
    try {
      await s.core.loaded
      s.text.insert(0, 'Runes title\nbody')
      await until(s.core, (f) => f.title === 'Runes title' && f.local === 'saved', 'title')
      await new Promise((r) => setTimeout(r, 0))
      expect(s.loaded).toBe(true)
      expect(s.local).toBe('saved')
      expect(s.title).toBe('Runes title')
      expect(s.serverState).toBe('off')
      expect(s.unbackedChanges).toBe(1)
      expect(s.warnOnLeave).toBe(true)
      expect(s.doc).toBe(s.core.doc)
    } finally {
      await s.destroy()
    }
    const again = new DocSession(id, { config: null, identity })
    await again.core.loaded
    expect(again.text.toString()).toBe('Runes title\nbody')
    await again.destroy()
  })
})
