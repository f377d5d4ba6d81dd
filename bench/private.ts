/**
 * `npm run bench -- private`: what end-to-end encryption costs. The
 * 260k-edit automerge-paper trace (test/helpers/trace.ts) is stored as a
 * plain document (snapshot + 499 updates in the `updates` table, as the
 * server keeps it just before compacting) and as a private one (encrypted
 * snapshot + 499 encrypted entries in the log): open time of a fresh client
 * from a real server process, then from IndexedDB (fake-indexeddb in Node),
 * the same in Chromium (the built app, real IndexedDB and WebCrypto: a new
 * browser context opens the link, then reloads offline so only IndexedDB can
 * supply the text), bytes stored per keystroke update, and the CPU of
 * sealing/opening one keystroke. Target: private open time ≤ 1.5× plain.
 * `--runs N` (default 5); `--no-chromium` skips the browser part.
 */
import 'fake-indexeddb/auto'
import { mkdtempSync, statSync } from 'node:fs'
import { createHash } from 'node:crypto'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { loadavg } from 'node:os'
import { rmSync } from 'node:fs'
import pino from 'pino'
import WebSocket from 'ws'
import { chromium, type Browser } from 'playwright-core'
import { CHROMIUM_ARGS, chromiumPath, newUser, timeUntilShown, waitServiceWorker, type User } from '../test/e2e/harness.ts'
import { buildClient } from './lib/client-build.ts'
import { idbFlushed } from './lib/client-open.ts'
import { SessionCore } from '../src/session/core.ts'
import { loadConfig } from '../src/session/config.ts'
import { memoryStorage } from '../src/session/storage.ts'
import { newLinkKey } from '../src/private/key.ts'
import { deriveDocKeys, open, seal } from '../src/private/crypto.ts'
import { openSqliteStore } from '../server/store/sqlite.ts'
import { openSqliteLogStore } from '../server/store/sqlite-log.ts'
import { loadTrace, replayTrace } from '../test/helpers/trace.ts'
import { startServer, type ServerProcess } from '../test/helpers/server.ts'

const runsArg = process.argv.indexOf('--runs')
const RUNS = runsArg > 0 ? Number(process.argv[runsArg + 1]) : 5
const TAIL = 499
const identity = { name: 'bench', color: '#000000', colorLight: '#00000033' }
const silent = pino({ level: 'silent' })

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!
const fmt = (n: number, d = 1) => n.toFixed(d)

function forget(docId: string): Promise<void> {
  return new Promise((res) => {
    const req = indexedDB.deleteDatabase(docId)
    req.onsuccess = req.onerror = () => res()
  })
}

/** Opens `docId` in a fresh session and resolves with ms until the text has `length` characters. */
async function timeOpen(docId: string, length: number, opts: { server: ServerProcess | null; linkKey?: string }): Promise<number> {
  const t0 = performance.now()
  const s = new SessionCore(docId, {
    config: opts.server ? loadConfig({ base: opts.server.url, fetch, storage: memoryStorage() }) : null,
    identity,
    webrtc: false,
    WebSocketPolyfill: WebSocket,
    linkKey: opts.linkKey ?? null,
  })
  await new Promise<void>((res, rej) => {
    const timer = setTimeout(() => rej(new Error(`open of ${docId} timed out at ${s.text.length}/${length}`)), 120_000)
    const check = () => {
      if (s.facts.loaded && s.text.length === length) {
        clearTimeout(timer)
        res()
      }
    }
    s.doc.on('update', check)
    s.onChange(check)
    check()
  })
  const ms = performance.now() - t0
  await s.destroy()
  return ms
}

async function main() {
  console.log('replaying the trace (one update per keystroke)…')
  const trace = loadTrace()
  const updates: Uint8Array[] = []
  const full = replayTrace(trace, { onUpdate: (u) => updates.push(u) })
  const length = full.text.length
  // The state before the last TAIL keystrokes (same operations, so the same ids: the tail applies on top).
  const snapshot = replayTrace(trace, { edits: full.edits - TAIL, batch: 1000 }).update
  const tail = updates.slice(-TAIL)
  console.log(`${updates.length} updates, text ${length} chars, snapshot ${snapshot.byteLength} bytes + ${TAIL} updates`)

  // CPU per keystroke: seal and open every update of a 20k sample.
  const key = newLinkKey()
  const docIdPrivate = 'bench-private-doc'
  const docIdPlain = 'bench-plain-doc'
  const keys = await deriveDocKeys(key, docIdPrivate)
  const sample = updates.slice(0, 20_000)
  let t = performance.now()
  const sealed: Uint8Array[] = []
  for (const u of sample) sealed.push(await seal(keys.content, u))
  const sealUs = ((performance.now() - t) * 1000) / sample.length
  t = performance.now()
  for (const b of sealed) await open(keys.content, b)
  const openUs = ((performance.now() - t) * 1000) / sample.length

  // Bytes stored per update: 20k keystroke updates into each table of a fresh database.
  const dirA = mkdtempSync(join(tmpdir(), 'murmur-bench-plain-'))
  const dirB = mkdtempSync(join(tmpdir(), 'murmur-bench-private-'))
  const plainStore = openSqliteStore(dirA, { log: silent })
  const logStore = openSqliteLogStore(dirB, { log: silent })
  const hash = new Uint8Array(createHash('sha256').update(keys.writeProof).digest())
  const base = (d: string) => statSync(join(d, 'murmur.db')).size + (statSync(join(d, 'murmur.db-wal'), { throwIfNoEntry: false })?.size ?? 0)
  await plainStore.append('warm', [new Uint8Array([0])])
  await logStore.append('warm', hash, [new Uint8Array([0])])
  const a0 = plainStore.stats().usedBytes
  for (let i = 0; i < sample.length; i += 100) await plainStore.append(docIdPlain, sample.slice(i, i + 100))
  const a1 = plainStore.stats().usedBytes
  for (let i = 0; i < sealed.length; i += 100) await logStore.append(docIdPrivate, hash, sealed.slice(i, i + 100))
  await plainStore.close()
  await logStore.close()
  const probe = openSqliteStore(dirB, { log: silent })
  const b1 = probe.stats().usedBytes
  await probe.close()
  void base
  const payloadPlain = sample.reduce((n, u) => n + u.byteLength, 0) / sample.length
  const payloadPrivate = sealed.reduce((n, u) => n + u.byteLength, 0) / sealed.length

  // Open time from a real server: the same document stored plain and private.
  const dataDir = mkdtempSync(join(tmpdir(), 'murmur-bench-open-'))
  {
    const store = openSqliteStore(dataDir, { log: silent })
    await store.append(docIdPlain, [snapshot])
    await store.append(docIdPlain, tail)
    await store.close()
    const logs = openSqliteLogStore(dataDir, { log: silent })
    await logs.append(docIdPrivate, hash, [await seal(keys.content, snapshot)])
    await logs.replace(docIdPrivate, hash, 1, await seal(keys.content, snapshot))
    const boxes: Uint8Array[] = []
    for (const u of tail) boxes.push(await seal(keys.content, u))
    await logs.append(docIdPrivate, hash, boxes)
    await logs.close()
  }
  const server = await startServer({ dataDir, args: ['--compact-after-updates', '100000'] })
  const fromServer = { plain: [] as number[], private: [] as number[] }
  const fromIdb = { plain: [] as number[], private: [] as number[] }
  try {
    for (let r = 0; r < RUNS; r++) {
      for (const kind of ['plain', 'private'] as const) {
        const docId = kind === 'plain' ? docIdPlain : docIdPrivate
        await forget(docId)
        fromServer[kind].push(await timeOpen(docId, length, { server, linkKey: kind === 'private' ? key : undefined }))
        fromIdb[kind].push(await timeOpen(docId, length, { server: null, linkKey: kind === 'private' ? key : undefined }))
      }
    }
  } finally {
    await server.stop()
  }

  // The same documents in Chromium: the built app, real IndexedDB, real WebCrypto.
  const chrome = { server: { plain: [] as number[], private: [] as number[] }, idb: { plain: [] as number[], private: [] as number[] } }
  const loadBefore = loadavg()[0]!
  if (!process.argv.includes('--no-chromium')) {
    const clientDir = buildClient()
    const web = await startServer({ dataDir, args: ['--compact-after-updates', '100000', '--client', clientDir] })
    let browser: Browser | null = null
    const firstLine = full.text.toString().split('\n')[0]!.slice(0, 40)
    try {
      browser = await chromium.launch({ executablePath: chromiumPath(), args: CHROMIUM_ARGS })
      for (const kind of ['plain', 'private'] as const) {
        const url = kind === 'plain' ? `${web.url}/d/${docIdPlain}` : `${web.url}/d/${docIdPrivate}#key=${key}`
        let user: User | null = null
        try {
          // Cold device: a new context (empty IndexedDB, no service worker) each run.
          for (let r = 0; r < RUNS; r++) {
            await user?.close()
            user = await newUser(browser, { name: 'Alice', webrtc: false })
            const u = user
            const t0 = Date.now()
            await u.page.goto(url)
            chrome.server[kind].push((await timeUntilShown(u.page, length, firstLine, t0)).pageMs)
          }
          // Reload offline: only IndexedDB can supply the text.
          const u = user!
          await u.page.locator('[data-testid=status-local][data-state=saved]').waitFor({ state: 'attached', timeout: 60_000 })
          await waitServiceWorker(u.page)
          await idbFlushed(u.page)
          await u.context.setOffline(true)
          for (let r = 0; r < RUNS; r++) {
            const t0 = Date.now()
            await u.page.reload()
            chrome.idb[kind].push((await timeUntilShown(u.page, length, firstLine, t0)).pageMs)
          }
        } finally {
          await user?.close()
        }
      }
    } finally {
      await browser?.close()
      await web.stop()
      rmSync(clientDir, { recursive: true, force: true })
    }
  }

  const ratio = (k: 'server' | 'idb') => {
    const m = k === 'server' ? fromServer : fromIdb
    return median(m.private) / median(m.plain)
  }
  console.log(`\nOpen time of the ${updates.length}-edit trace (${length} chars), median of ${RUNS} runs, fresh Node client (fake-indexeddb):\n`)
  console.log('| from | plain (ms) | private (ms) | private / plain | target |')
  console.log('|---|---:|---:|---:|---|')
  console.log(`| server (cold device) | ${fmt(median(fromServer.plain))} | ${fmt(median(fromServer.private))} | ${fmt(ratio('server'), 2)}× | ≤ 1.5× ${ratio('server') <= 1.5 ? 'met' : 'MISSED'} |`)
  console.log(`| IndexedDB (reload) | ${fmt(median(fromIdb.plain))} | ${fmt(median(fromIdb.private))} | ${fmt(ratio('idb'), 2)}× | ≤ 1.5× ${ratio('idb') <= 1.5 ? 'met' : 'MISSED'} |`)
  if (chrome.server.plain.length) {
    const row = (what: string, m: { plain: number[]; private: number[] }) => {
      const r = median(m.private) / median(m.plain)
      return `| ${what} | ${fmt(median(m.plain), 0)} | ${fmt(median(m.private), 0)} | ${fmt(r, 2)}× | ≤ 1.5× ${r <= 1.5 ? 'met' : 'MISSED'} |`
    }
    console.log(`\nThe same in Chromium (built app, real IndexedDB and WebCrypto; page clock from navigation until the whole text is in the session and the editor shows it), median of ${RUNS} runs, load average ${fmt(loadBefore)} → ${fmt(loadavg()[0]!)}:\n`)
    console.log('| from | plain (ms) | private (ms) | private / plain | target |')
    console.log('|---|---:|---:|---:|---|')
    console.log(row('server (new browser context)', chrome.server))
    console.log(row('IndexedDB (offline reload)', chrome.idb))
  }
  console.log(`\nStorage per keystroke update (${sample.length} updates of the trace, SQLite pages in use):\n`)
  console.log('| | payload (bytes) | database (bytes/update) |')
  console.log('|---|---:|---:|')
  console.log(`| plain \`updates\` | ${fmt(payloadPlain)} | ${fmt((a1 - a0) / sample.length)} |`)
  console.log(`| private \`log_entries\` | ${fmt(payloadPrivate)} | ${fmt(b1 / sample.length)} |`)
  console.log(`\nCPU per keystroke (WebCrypto AES-GCM-256 in Node ${process.version}, ${sample.length} updates): seal ${fmt(sealUs)} µs, open ${fmt(openUs)} µs\n`)
}

await main()
process.exit(0)
