/**
 * History (issue 11): capture, retention, restore as one undoable change,
 * restore merging with another user's concurrent edits, versions of the
 * 260k-edit trace, and the version list backed up through the real server.
 */
import 'fake-indexeddb/auto'
import { afterAll, afterEach, beforeAll, describe, expect, it, vi } from 'vitest'
import WebSocket from 'ws'
import * as Y from 'yjs'
import { Awareness } from 'y-protocols/awareness'
import { HistoryLog } from '../../src/history/log.ts'
import { Recorder } from '../../src/history/recorder.ts'
import { prunable, DEFAULT_RETENTION } from '../../src/history/retention.ts'
import { restoreChanges, restoreText } from '../../src/history/restore.ts'
import { readVersion, type Version } from '../../src/history/versions.ts'
import { changeSize } from '../../src/history/diff.ts'
import { openHistory } from '../../src/history/index.ts'
import { historyDocId, roomDocId } from '../../src/protocol/ids.ts'
import { SessionCore } from '../../src/session/core.ts'
import { loadConfig } from '../../src/session/config.ts'
import { memoryStorage } from '../../src/session/storage.ts'
import { mintToken } from '../../server/auth.ts'
import { loadTrace } from '../helpers/trace.ts'
import { startServer, type ServerProcess } from '../helpers/server.ts'
import { untilDoc, yClient } from '../helpers/clients.ts'

const HOUR = 3600_000
const DAY = 24 * HOUR

/** A doc with its text, an awareness naming the user, and a history log. */
function editor(name: string, clientID: number) {
  const doc = new Y.Doc()
  doc.clientID = clientID
  const awareness = new Awareness(doc)
  awareness.setLocalStateField('user', { name })
  return { doc, text: doc.getText('text'), awareness, log: new HistoryLog() }
}

/** Connects two docs both ways (every update is delivered at once, as a remote update). */
function link(a: Y.Doc, b: Y.Doc) {
  Y.applyUpdate(b, Y.encodeStateAsUpdate(a), 'remote')
  Y.applyUpdate(a, Y.encodeStateAsUpdate(b), 'remote')
  a.on('update', (u: Uint8Array, origin: unknown) => origin !== 'remote' && Y.applyUpdate(b, u, 'remote'))
  b.on('update', (u: Uint8Array, origin: unknown) => origin !== 'remote' && Y.applyUpdate(a, u, 'remote'))
}

const version = (at: number, extra: Partial<Version> = {}): Version => ({ id: `v${at}`, at, by: [], name: '', manual: false, added: 0, removed: 0, text: String(at), ...extra })

afterEach(() => {
  vi.useRealTimers()
})

describe('capture', () => {
  it('takes a version once edits pause, naming who edited', () => {
    vi.useFakeTimers()
    const a = editor('Ada', 1)
    const rec = new Recorder(a.text, a.log, a.awareness, { idleMs: 1000 })
    a.text.insert(0, 'hello')
    vi.advanceTimersByTime(500)
    a.text.insert(5, ' world')
    vi.advanceTimersByTime(999)
    expect(a.log.list()).toHaveLength(0)
    vi.advanceTimersByTime(1)
    const [v] = a.log.list()
    expect(v).toMatchObject({ text: 'hello world', by: ['Ada'], manual: false, added: 11, removed: 0 })
    // Nothing changed since: no new version, even after another pause.
    vi.advanceTimersByTime(5000)
    expect(a.log.list()).toHaveLength(1)
    rec.destroy()
  })

  it('takes versions at least every maxEveryMs during a long burst', () => {
    let now = 0
    const a = editor('Ada', 1)
    const rec = new Recorder(a.text, a.log, a.awareness, { idleMs: 60_000, maxEveryMs: 10_000, now: () => now })
    for (let i = 0; i < 25; i++) {
      now = i * 1000
      a.text.insert(a.text.length, 'x')
    }
    // A burst started at 0: versions at 10 s and 21 s (the second burst starts at 11 s).
    expect(a.log.list().map((v) => v.at)).toEqual([21_000, 10_000])
    rec.destroy()
  })

  it('records the names of remote editors but leaves automatic versions to devices that edited', () => {
    vi.useFakeTimers()
    const a = editor('Ada', 1)
    const b = editor('Bob', 2)
    link(a.doc, b.doc)
    // A knows B's presence (as awareness would tell it).
    a.awareness.states.set(2, { user: { name: 'Bob' } })
    const rec = new Recorder(a.text, a.log, a.awareness, { idleMs: 1000 })
    b.text.insert(0, 'from Bob')
    vi.advanceTimersByTime(5000)
    expect(a.log.list()).toHaveLength(0) // only remote edits: Bob's device records them
    a.text.insert(0, '> ')
    vi.advanceTimersByTime(1000)
    expect(a.log.list()[0]).toMatchObject({ text: '> from Bob', by: ['Bob', 'Ada'] })
    // A deletion advances no clock: a remote one is credited to the others present.
    b.text.delete(0, 2)
    a.text.insert(a.text.length, '!')
    expect(rec.flush()).toMatchObject({ text: 'from Bob!', by: ['Bob', 'Ada'], added: 1, removed: 2 })
    rec.destroy()
  })

  it('saves by hand (named, even when unchanged) and on flush only after changes', () => {
    const a = editor('Ada', 1)
    let t = 0
    const rec = new Recorder(a.text, a.log, a.awareness, { now: () => ++t })
    expect(rec.flush()).toBeNull()
    a.text.insert(0, 'draft')
    expect(rec.pending).toBe(true)
    expect(rec.flush()).toMatchObject({ text: 'draft', manual: false })
    expect(rec.flush()).toBeNull()
    rec.save('  Before the rewrite  ')
    expect(a.log.list().map((v) => [v.name, v.manual])).toEqual([
      ['Before the rewrite', true],
      ['', false],
    ])
    rec.destroy()
  })

  it('measures the size of a change with a character diff', () => {
    expect(changeSize('hello world', 'hello brave world')).toEqual({ added: 6, removed: 0 })
    expect(changeSize('abcdef', 'abXf')).toEqual({ added: 1, removed: 3 })
    expect(changeSize('aaa', 'aa')).toEqual({ added: 0, removed: 1 })
    expect(changeSize('> from Bob', 'from Bob!')).toEqual({ added: 1, removed: 2 })
  })

  it('ignores malformed records from the network and clips oversized fields', () => {
    const log = new HistoryLog()
    log.array.push([null, 42, { id: 'x' }, { id: 'y', at: 'now', text: '' }, { id: 'ok', at: 5, text: 't', by: ['n'.repeat(500), 7], name: 'z'.repeat(500) }])
    const list = log.list()
    expect(list).toHaveLength(1)
    expect(list[0]!.by).toEqual(['n'.repeat(64)])
    expect(list[0]!.name).toHaveLength(100)
    expect(readVersion({ id: 'big', at: 1, text: 'x'.repeat(4_000_001) })).toBeNull()
    log.prune(10)
    expect(log.array.length).toBe(1) // invalid records are dropped when pruning
  })
})

describe('retention', () => {
  const now = 100 * DAY

  it('keeps everything of the last day, the newest per hour up to a week, then the newest per day', () => {
    const vs = [
      version(now - 10 * 60_000),
      version(now - 23 * HOUR),
      version(now - 2 * DAY - 10 * 60_000), // same hour: keep the newer
      version(now - 2 * DAY - 20 * 60_000),
      version(now - 2 * DAY - 2 * HOUR),
      version(10 * DAY + 5 * HOUR), // same day: keep the newer
      version(10 * DAY + 3 * HOUR),
      version(9 * DAY + 3 * HOUR),
    ]
    expect(prunable(vs, now).sort()).toEqual([`v${now - 2 * DAY - 20 * 60_000}`, `v${10 * DAY + 3 * HOUR}`].sort())
  })

  it('never drops named versions or the newest one, and caps unnamed versions', () => {
    const old = [version(1, { name: 'kept' }), version(2), version(3)]
    expect(prunable(old, now)).toEqual([]) // 1-3 ms after the epoch: the same day, the newest of it kept; named kept
    const many = Array.from({ length: 10 }, (_, i) => version(now - i * 1000))
    expect(prunable(many, now, { ...DEFAULT_RETENTION, maxVersions: 4 })).toEqual(many.slice(4).map((v) => v.id))
  })

  it('caps named versions too (the oldest go first)', () => {
    const named = Array.from({ length: 5 }, (_, i) => version(now - i * 1000, { name: `n${i}` }))
    expect(prunable(named, now, { ...DEFAULT_RETENTION, maxNamed: 3 })).toEqual(['v' + (now - 3000), 'v' + (now - 4000)])
  })

  it('drops the oldest unnamed versions once the kept text passes maxChars', () => {
    const vs = [version(now, { text: 'a'.repeat(40) }), version(now - 1000, { text: 'b'.repeat(40), name: 'n' }), version(now - 2000, { text: 'c'.repeat(15) }), version(now - 3000, { text: 'd'.repeat(10) })]
    expect(prunable(vs, now, { ...DEFAULT_RETENTION, maxChars: 100 })).toEqual([`v${now - 3000}`])
  })

  it('prunes the log after each automatic version', () => {
    let t = 0
    const a = editor('Ada', 1)
    a.log.add(version(0, { id: 'old1' }))
    a.log.add(version(1000, { id: 'old2' }))
    const rec = new Recorder(a.text, a.log, a.awareness, { now: () => t })
    t = 30 * DAY
    a.text.insert(0, 'new')
    rec.flush()
    expect(a.log.list().map((v) => v.id)).toEqual([a.log.newest()!.id, 'old2'])
    rec.destroy()
  })
})

describe('restore', () => {
  it('computes a minimal diff', () => {
    expect(restoreChanges('hello world', 'hello brave world')).toEqual([{ from: 6, to: 6, insert: 'brave ' }])
    const cur = 'The quick brown fox'
    const target = 'A quick red fox!'
    let out = cur
    for (const c of restoreChanges(cur, target).reverse()) out = out.slice(0, c.from) + c.insert + out.slice(c.to)
    expect(out).toBe(target)
  })

  it('is one change the restorer can undo', () => {
    const a = editor('Ada', 1)
    const origin = { restore: true }
    const undo = new Y.UndoManager(a.text, { trackedOrigins: new Set([origin]) })
    a.text.insert(0, 'first draft, kept')
    const v = a.text.toString()
    a.text.delete(0, a.text.length)
    a.text.insert(0, 'something else entirely')
    let transactions = 0
    a.doc.on('afterTransaction', () => transactions++)
    restoreText(a.text, v, origin)
    expect(transactions).toBe(1)
    expect(a.text.toString()).toBe(v)
    expect(undo.undoStack).toHaveLength(1)
    undo.undo()
    expect(a.text.toString()).toBe('something else entirely')
  })

  it('merges with another user editing at the same time: both survive', () => {
    const a = editor('Ada', 1)
    const b = editor('Bob', 2)
    a.text.insert(0, 'Intro\n\nSection one\n\nSection two\n')
    const saved = a.text.toString()
    Y.applyUpdate(b.doc, Y.encodeStateAsUpdate(a.doc))
    // Bob pastes over section one; both now hold the damaged text.
    b.text.delete(7, 'Section one'.length)
    b.text.insert(7, 'PASTED')
    Y.applyUpdate(a.doc, Y.encodeStateAsUpdate(b.doc))
    // Concurrently: Ada restores, Bob keeps typing at the end.
    restoreText(a.text, saved, 'restore')
    b.text.insert(b.text.length, 'Bob adds a line\n')
    Y.applyUpdate(a.doc, Y.encodeStateAsUpdate(b.doc))
    Y.applyUpdate(b.doc, Y.encodeStateAsUpdate(a.doc))
    expect(a.text.toString()).toBe(b.text.toString())
    expect(a.text.toString()).toBe(saved + 'Bob adds a line\n')
  })
})

describe('restore merges like any edit (seeded)', () => {
  it('random concurrent inserts by another user all survive around the restored text', () => {
    const seed = Number(process.env.HISTORY_SEED ?? Date.now() % 1_000_000)
    console.log(`[history] restore merge seed=${seed} (HISTORY_SEED=${seed} re-runs it)`)
    // mulberry32
    let st = seed >>> 0
    const rand = () => {
      st = (st + 0x6d2b79f5) >>> 0
      let t = st
      t = Math.imul(t ^ (t >>> 15), t | 1)
      t ^= t + Math.imul(t ^ (t >>> 7), t | 61)
      return ((t ^ (t >>> 14)) >>> 0) / 4294967296
    }
    const int = (n: number) => Math.floor(rand() * n)
    const words = (n: number) => Array.from({ length: n }, () => 'abcde \n'[int(7)]).join('')
    for (let round = 0; round < 50; round++) {
      const a = editor('Ada', 1)
      const b = editor('Bob', 2)
      a.text.insert(0, words(20 + int(200)))
      const saved = a.text.toString()
      Y.applyUpdate(b.doc, Y.encodeStateAsUpdate(a.doc))
      // Damage: random deletions and pastes by Bob, seen by both.
      for (let k = 0; k < 1 + int(6); k++) {
        const pos = int(b.text.length + 1)
        const del = Math.min(int(40), b.text.length - pos)
        if (del) b.text.delete(pos, del)
        b.text.insert(pos, words(int(30)))
      }
      Y.applyUpdate(a.doc, Y.encodeStateAsUpdate(b.doc))
      // Concurrently: Ada restores, Bob inserts markers anywhere.
      restoreText(a.text, saved, 'restore')
      const markers: string[] = []
      for (let k = 0; k < 1 + int(5); k++) {
        const m = 'ABCDEFGHIJ'[k]! // one character each (never in the text): a marker cannot land inside another
        markers.push(m)
        b.text.insert(int(b.text.length + 1), m)
      }
      Y.applyUpdate(a.doc, Y.encodeStateAsUpdate(b.doc))
      Y.applyUpdate(b.doc, Y.encodeStateAsUpdate(a.doc))
      const final = a.text.toString()
      expect(b.text.toString(), `seed ${seed} round ${round}`).toBe(final)
      for (const m of markers) expect(final, `seed ${seed} round ${round}`).toContain(m)
      expect(markers.reduce((t, m) => t.replace(m, ''), final), `seed ${seed} round ${round}`).toBe(saved)
    }
  })
})

describe('versions of the 260k-edit trace', () => {
  it('stores 100 versions along the trace, each equal to the text at that point, and restores the oldest', () => {
    const trace = loadTrace()
    const doc = new Y.Doc()
    const text = doc.getText('text')
    const log = new HistoryLog()
    let t = 0
    const rec = new Recorder(text, log, null, { now: () => t, prune: false })
    const every = Math.ceil(trace.patches.length / 100)
    const expected: string[] = []
    let s = trace.startContent
    text.insert(0, s)
    trace.patches.forEach(([pos, del, ins], i) => {
      doc.transact(() => {
        if (del) text.delete(pos, del)
        if (ins) text.insert(pos, ins)
      })
      s = s.slice(0, pos) + ins + s.slice(pos + del)
      if ((i + 1) % every === 0 || i === trace.patches.length - 1) {
        t += 60_000
        rec.flush()
        expected.push(s)
      }
    })
    expect(text.toString()).toBe(trace.endContent)
    const list = log.list()
    expect(list).toHaveLength(expected.length)
    expect(list.map((v) => v.text).reverse()).toEqual(expected)
    // A copy of the version list (what a new device loads) lists the same versions.
    const copy = new HistoryLog()
    Y.applyUpdate(copy.doc, Y.encodeStateAsUpdate(log.doc))
    expect(copy.list().map((v) => v.id)).toEqual(list.map((v) => v.id))
    restoreText(text, list.at(-1)!.text, 'restore')
    expect(text.toString()).toBe(expected[0])
    rec.destroy()
  }, 120_000) // ~6 s on a quiet machine; the shared 2-core machine can be many times slower
})

describe('history companion ids', () => {
  it('cannot collide with a document id and maps back to its document', () => {
    expect(historyDocId('abc')).toBe('abc.history')
    expect(roomDocId('abc.history')).toBe('abc')
    expect(roomDocId('abc')).toBe('abc')
    expect(roomDocId('.history')).toBeNull()
    expect(roomDocId('abc.history.history')).toBeNull()
    expect(roomDocId('a.b')).toBeNull()
  })
})

describe('versions backed up on the server', () => {
  let server: ServerProcess
  const secret = 'history-test-secret'
  beforeAll(async () => {
    server = await startServer({ args: ['--auth-secret', secret] })
  })
  afterAll(async () => {
    await server?.stop()
  })

  it('syncs the version list through /sync/<id>.history with the document token; survives a restart', async () => {
    const docId = `hist-${process.pid}-${Date.now().toString(36)}`
    const token = mintToken(secret, docId, 'rw', 3600)
    const core = new SessionCore(docId, {
      config: loadConfig({ base: server.url, fetch, storage: memoryStorage() }),
      identity: { name: 'Ada', color: '#2b8a3e', colorLight: '#2b8a3e33' },
      token,
      webrtc: false,
      WebSocketPolyfill: WebSocket,
    })
    const history = openHistory(core)
    await Promise.all([core.ready, history.loaded])
    core.text.insert(0, 'kept on the server')
    const v = history.recorder!.save('first')
    // Another device (a stock y-websocket client with the same token) sees it.
    const other = yClient(server.wsUrl, historyDocId(docId), { params: { token } })
    const otherLog = new HistoryLog(other.doc)
    await untilDoc(other.doc, () => otherLog.list().length === 1, 'the version on another device')
    expect(otherLog.newest()).toMatchObject({ id: v.id, name: 'first', text: 'kept on the server' })
    other.destroy()
    await history.destroy()
    await core.destroy()

    await server.stop()
    server = await startServer({ dataDir: server.dataDir, args: ['--auth-secret', secret] })
    const after = yClient(server.wsUrl, historyDocId(docId), { params: { token } })
    const afterLog = new HistoryLog(after.doc)
    await untilDoc(after.doc, () => afterLog.list().length === 1, 'the version after a restart')
    expect(afterLog.newest()!.id).toBe(v.id)
    after.destroy()

    // The server applies retention itself when a history is opened: old versions from one day
    // collapse to the newest of that day, named ones stay.
    const writer = yClient(server.wsUrl, historyDocId(docId), { params: { token } })
    await writer.synced
    const old = 40 * DAY * Math.floor(Date.now() / (40 * DAY)) - 30 * DAY
    new HistoryLog(writer.doc).array.push([version(old, { id: 'old-a' }), version(old + HOUR, { id: 'old-b' }), version(old + 2 * HOUR, { id: 'old-named', name: 'keep me' })])
    await untilDoc(writer.doc, () => writer.provider.synced, 'the old versions written')
    const reader = yClient(server.wsUrl, historyDocId(docId), { params: { token } })
    const readerLog = new HistoryLog(reader.doc)
    await untilDoc(reader.doc, () => readerLog.list().length === 3, 'the pruned history', 20_000)
    expect(readerLog.list().map((x) => x.id)).toEqual([v.id, 'old-named', 'old-b'])
    writer.destroy()
    reader.destroy()

    // A token for another document does not open this history; a bad companion id is refused.
    const wrong = mintToken(secret, 'another-doc', 'rw', 3600)
    for (const [path, code] of [
      [`/sync/${historyDocId(docId)}?token=${wrong}`, 4401],
      [`/sync/${docId}.history.history?token=${token}`, 4404],
    ] as const) {
      const ws = new WebSocket(server.wsUrl + path)
      const closed = await new Promise<number>((res) => ws.on('close', (c) => res(c)))
      expect(closed).toBe(code)
    }
  }, 60_000)
})
