/**
 * One first visit and one repeat visit of a document link in Chromium under
 * network emulation (CDP `Network.emulateNetworkConditions`, which throttles
 * loopback too): a fresh browser context (empty HTTP cache, no service
 * worker, empty IndexedDB) opens `/d/<id>`, and once the service worker is
 * active and the document is stored, the same context reloads it. Each visit
 * yields the page clock (ms since navigation start) when the editor shows
 * the document's first line, and the bytes transferred before then.
 */
import type { Browser, CDPSession, Page } from 'playwright-core'
import { newUser, waitServiceWorker } from '../../test/e2e/harness.ts'
import { idbFlushed } from './client-open.ts'

/** A network profile for Chromium's emulation. */
export interface NetProfile {
  name: string
  /** Added to every request's round trip (ms). */
  latencyMs: number
  downMbit: number
  upMbit: number
}

/** The profiles: Chrome's "Fast 3G" numbers, and a 4G link. */
export const PROFILES: NetProfile[] = [
  { name: 'Fast 3G', latencyMs: 150, downMbit: 1.6, upMbit: 0.75 },
  { name: '4G', latencyMs: 60, downMbit: 9, upMbit: 9 },
]

/** One visit. */
export interface VisitSample {
  /** Page clock when `.cm-content` shows the first line (ms since navigation start). */
  textMs: number
  /** HTTP bytes (Resource Timing `transferSize`, headers included; 0 when the service worker answered) finished before then, plus WebSocket payload bytes received by then. */
  bytes: number
  /** HTTP requests that went to the network before then. */
  requests: number
}

/** First and repeat visit of one context. */
export interface VisitPair {
  first: VisitSample
  repeat: VisitSample
}

async function emulate(page: Page, p: NetProfile): Promise<{ cdp: CDPSession; wsBytes: () => number }> {
  const cdp = await page.context().newCDPSession(page)
  await cdp.send('Network.enable')
  await cdp.send('Network.emulateNetworkConditions', {
    offline: false,
    latency: p.latencyMs,
    downloadThroughput: (p.downMbit * 1e6) / 8,
    uploadThroughput: (p.upMbit * 1e6) / 8,
  })
  let ws = 0
  cdp.on('Network.webSocketFrameReceived', (e) => {
    const f = e.response
    ws += f.opcode === 1 ? Buffer.byteLength(f.payloadData) : Math.floor((f.payloadData.length * 3) / 4)
  })
  return { cdp, wsBytes: () => ws }
}

async function visit(page: Page, firstLine: string, wsBytes: () => number, go: () => Promise<unknown>): Promise<VisitSample> {
  const ws0 = wsBytes()
  await go()
  const handle = await page.waitForFunction(
    (line) => (document.querySelector('.cm-content')?.textContent?.includes(line) ? performance.now() : false),
    firstLine,
    { timeout: 60_000, polling: 'raf' },
  )
  const textMs = (await handle.jsonValue()) as number
  const ws = wsBytes() - ws0
  const http = await page.evaluate((t) => {
    const entries = [...performance.getEntriesByType('navigation'), ...performance.getEntriesByType('resource')] as PerformanceResourceTiming[]
    const before = entries.filter((e) => e.responseEnd > 0 && e.responseEnd <= t && e.transferSize > 0)
    return { bytes: before.reduce((n, e) => n + e.transferSize, 0), requests: before.length }
  }, textMs)
  return { textMs: Math.round(textMs), bytes: http.bytes + ws, requests: http.requests }
}

/** Opens `url` in a fresh context under `profile`, then reloads it once the offline copy is in place. */
export async function firstAndRepeat(browser: Browser, url: string, firstLine: string, profile: NetProfile): Promise<VisitPair> {
  const user = await newUser(browser, { name: 'Alice' })
  try {
    const { page } = user
    const { wsBytes } = await emulate(page, profile)
    const first = await visit(page, firstLine, wsBytes, () => page.goto(url, { waitUntil: 'commit' }))
    await waitServiceWorker(page, 120_000)
    await page.locator('[data-testid=status-local][data-state=saved]').waitFor({ state: 'attached', timeout: 60_000 })
    await idbFlushed(page)
    const repeat = await visit(page, firstLine, wsBytes, () => page.reload({ waitUntil: 'commit' }))
    return { first, repeat }
  } finally {
    await user.close()
  }
}
