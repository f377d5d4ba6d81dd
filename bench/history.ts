/**
 * History benchmark (`npm run bench -- history [--quick]`): the 260k-edit
 * automerge-paper trace with 100 versions taken along it.
 *
 * - Take a version: `Recorder.flush()` (read the text, size the change,
 *   append the record to the history document), per version.
 * - Storage per version: the history document's encoded state (what
 *   IndexedDB and the server store) divided by the versions, next to the
 *   text itself, the same state gzipped, and the alternative design of Yjs
 *   snapshots (which needs a `gc: false` document: its extra size is the
 *   price of that design).
 * - Over WebRTC: a new peer's first sync of the 100 versions on a real
 *   data channel (@roamhq/wrtc in this process, `iceServers: []`), and one
 *   version taken while connected reaching the peer.
 * - Open the panel: in Chromium, a new browser opens the document (history
 *   from the server) and, after a reload, from IndexedDB; time from the
 *   History click to 100 listed versions, then to the diff of the oldest.
 *
 * Chromium runs without WebRTC (one user; the server on loopback), so
 * nothing leaves the machine.
 */
import { gzipSync } from 'node:zlib'
import { rmSync } from 'node:fs'
import * as Y from 'yjs'
import { chromium, type Browser, type Page } from 'playwright-core'
import { CHROMIUM_ARGS, chromiumPath, KEEP_NAMES_SHIM, stats, testDocId } from '../test/e2e/harness.ts'
import { loadTrace } from '../test/helpers/trace.ts'
import { startServer } from '../test/helpers/server.ts'
import { untilDoc, yClient } from '../test/helpers/clients.ts'
import { HistoryLog } from '../src/history/log.ts'
import { Recorder } from '../src/history/recorder.ts'
import { historyDocId } from '../src/protocol/ids.ts'
import { buildClient } from './lib/client-build.ts'
import { rtcPair } from '../test/helpers/rtc-pair.ts'
import { MeshPort } from '../src/session/mesh-port.ts'
import { HistoryMeshSync } from '../src/history/mesh-sync.ts'
import { MeshMessage } from '../src/protocol/messages.ts'

const quick = process.argv.includes('--quick')
const VERSIONS = 100
const reps = quick ? 1 : 3
const kib = (n: number) => `${(n / 1024).toFixed(1)} KiB`
const ms = (n: number) => `${n.toFixed(n < 10 ? 2 : 0)} ms`
const row = (cells: (string | number)[], widths: number[]) => cells.map((c, i) => String(c).padEnd(widths[i]!)).join('  ')

// ---- Node: take versions along the trace ------------------------------------
const trace = loadTrace()
const doc = new Y.Doc()
const text = doc.getText('text')
const nogc = new Y.Doc({ gc: false })
const nogcText = nogc.getText('text')
const log = new HistoryLog()
let clock = Date.now() - (VERSIONS + 1) * 60_000 // recent: all kept by retention
const rec = new Recorder(text, log, null, { now: () => clock, prune: false })
const every = Math.ceil(trace.patches.length / VERSIONS)
const takeMs: number[] = []
let snapshotBytes = 0
text.insert(0, trace.startContent)
nogcText.insert(0, trace.startContent)
for (let i = 0; i < trace.patches.length; i += 1000) {
  const end = Math.min(trace.patches.length, i + 1000)
  for (const [t, d] of [
    [text, doc],
    [nogcText, nogc],
  ] as const) {
    d.transact(() => {
      for (let k = i; k < end; k++) {
        const [pos, del, ins] = trace.patches[k]!
        if (del) t.delete(pos, del)
        if (ins) t.insert(pos, ins)
      }
    })
  }
  if (Math.floor(end / every) > Math.floor(i / every) || end === trace.patches.length) {
    clock += 60_000
    const t0 = performance.now()
    rec.flush()
    takeMs.push(performance.now() - t0)
    snapshotBytes += Y.encodeSnapshot(Y.snapshot(nogc)).byteLength
  }
}
rec.destroy()
const versions = log.list()
const state = Y.encodeStateAsUpdate(log.doc)
const textBytes = versions.reduce((n, v) => n + Buffer.byteLength(v.text), 0)
const gcBytes = Y.encodeStateAsUpdate(doc).byteLength
const nogcBytes = Y.encodeStateAsUpdate(nogc).byteLength
const loadMs: number[] = []
for (let r = 0; r < 5; r++) {
  const t0 = performance.now()
  const copy = new HistoryLog()
  Y.applyUpdate(copy.doc, state)
  copy.list()
  loadMs.push(performance.now() - t0)
}

console.log(`\nHistory of the ${trace.patches.length.toLocaleString('en-US')}-edit trace: ${versions.length} versions, final text ${trace.endContent.length.toLocaleString('en-US')} chars\n`)
const s = stats(takeMs)
console.log(row(['take a version (Recorder.flush)', 'median', 'p90', 'max'], [34, 10, 10, 10]))
console.log(row(['', ms(s.median), ms(s.p90), ms(s.max)], [34, 10, 10, 10]))
console.log(row(['load + list 100 versions (Node)', ms(stats(loadMs).median)], [34, 10]))
console.log('\nStorage per version (average over the 100):')
const w = [52, 14, 14]
console.log(row(['design', 'per version', 'total'], w))
console.log(row(['full text in the history doc (murmur, as stored)', kib(state.byteLength / versions.length), kib(state.byteLength)], w))
console.log(row(['  the text alone (UTF-8)', kib(textBytes / versions.length), kib(textBytes)], w))
console.log(row(['  the history doc gzipped (not done today)', kib(gzipSync(state).byteLength / versions.length), kib(gzipSync(state).byteLength)], w))
console.log(row(['Yjs snapshots (needs gc:false) — snapshot itself', kib(snapshotBytes / versions.length), kib(snapshotBytes)], w))
console.log(row(['  + what gc:false adds to the document', kib((nogcBytes - gcBytes) / versions.length), kib(nogcBytes - gcBytes)], w))

// ---- WebRTC: a new peer gets the history over the mesh ----------------------
{
  const firstSync: number[] = []
  const live: number[] = []
  let sent = 0
  for (let r = 0; r < reps; r++) {
    const pair = rtcPair()
    const from = new MeshPort(MeshMessage.history)
    const to = new MeshPort(MeshMessage.history)
    from.adopt('to', pair.a as never)
    to.adopt('from', pair.b as never)
    const copy = new HistoryLog()
    const opts = { forward: () => false, isProviderOrigin: () => false }
    const sender = new HistoryMeshSync(log.doc, from, opts)
    const receiver = new HistoryMeshSync(copy.doc, to, opts)
    const until = (n: number) => new Promise<void>((res) => (copy.list().length >= n ? res() : copy.onChange(() => copy.list().length >= n && res())))
    await pair.connect()
    const t0 = performance.now()
    await until(versions.length)
    firstSync.push(performance.now() - t0)
    sent = sender.sentBytes
    const t1 = performance.now()
    log.add({ ...versions[0]!, id: `live-${r}`, at: versions[0]!.at + 1 + r })
    await until(versions.length + 1)
    live.push(performance.now() - t1)
    log.remove([`live-${r}`])
    sender.destroy()
    receiver.destroy()
    pair.close()
  }
  console.log(`\nOver WebRTC (a real data channel, ${reps} runs):`)
  const w3 = [52, 10, 10]
  console.log(row(['', 'median', 'max'], w3))
  console.log(row([`a new peer gets all ${versions.length} versions (${kib(sent)} in 16 KiB parts)`, ms(stats(firstSync).median), ms(stats(firstSync).max)], w3))
  console.log(row(['a version taken while connected reaches the peer', ms(stats(live).median), ms(stats(live).max)], w3))
}

// ---- Chromium: open the panel with 100 versions -----------------------------
const clientDir = buildClient()
const server = await startServer({ args: ['--client', clientDir] })
let browser: Browser | null = null
try {
  const docId = testDocId('bench-history')
  for (const [id, d] of [
    [docId, doc],
    [historyDocId(docId), log.doc],
  ] as const) {
    const pusher = yClient(server.wsUrl, id, { doc: d })
    await pusher.synced
    const check = yClient(server.wsUrl, id)
    await untilDoc(check.doc, () => Y.encodeStateAsUpdate(check.doc).byteLength >= Y.encodeStateAsUpdate(d).byteLength, `the server to hold ${id}`, 60_000)
    check.destroy()
    pusher.destroy()
  }
  browser = await chromium.launch({ executablePath: chromiumPath(), args: CHROMIUM_ARGS })
  const fromServer: number[] = []
  const fromIdb: number[] = []
  const diffMs: number[] = []
  const openPanel = async (page: Page) => {
    await page.locator('.cm-content').first().waitFor({ state: 'visible' })
    await page.waitForFunction((n) => (window as any).__murmur?.session?.text?.length === n, trace.endContent.length, { timeout: 60_000 })
    const t0 = Date.now()
    await page.locator('[data-testid=history-button]').click()
    await page.locator('[data-testid=version]').nth(versions.length - 1).waitFor({ state: 'attached', timeout: 60_000 })
    const listed = Date.now() - t0
    const t1 = Date.now()
    await page.locator('[data-testid=version] button[aria-pressed]').last().click()
    await page.locator('[data-testid=version-diff] .cm-editor').waitFor({ state: 'visible', timeout: 60_000 })
    diffMs.push(Date.now() - t1)
    return listed
  }
  for (let r = 0; r < reps; r++) {
    const context = await browser.newContext({ viewport: { width: 1280, height: 800 } })
    await context.addInitScript(KEEP_NAMES_SHIM)
    await context.addInitScript(() => {
      delete (window as any).RTCPeerConnection
    })
    const page = await context.newPage()
    await page.goto(`${server.url}/d/${docId}`)
    fromServer.push(await openPanel(page))
    await page.reload()
    fromIdb.push(await openPanel(page))
    await context.close()
  }
  console.log(`\nOpen the history panel in Chromium (click → ${versions.length} versions listed; ${reps} runs):`)
  const w2 = [44, 10, 10]
  console.log(row(['', 'median', 'max'], w2))
  console.log(row(['new browser (versions from the server)', ms(stats(fromServer).median), ms(stats(fromServer).max)], w2))
  console.log(row(['after a reload (versions from IndexedDB)', ms(stats(fromIdb).median), ms(stats(fromIdb).max)], w2))
  console.log(row(['select the oldest → its diff drawn', ms(stats(diffMs).median), ms(stats(diffMs).max)], w2))
} finally {
  await browser?.close()
  await server.stop()
  rmSync(clientDir, { recursive: true, force: true })
}
