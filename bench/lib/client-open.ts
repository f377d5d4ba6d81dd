/**
 * Open time of one document in Chromium, from two sources:
 *   - server: a fresh browser context (empty IndexedDB, no service worker)
 *     opens /d/<id>; the text can only come from the server's /sync;
 *   - IndexedDB: the last of those contexts, once its copy is stored and the
 *     service worker holds the app shell, reloads the page offline, so only
 *     IndexedDB can supply the text.
 * Each sample is the page clock (ms since navigation start) when the session
 * holds the whole text and the editor shows its first line, plus the app's
 * milestones (`installMilestones`) on the way and how long applying the
 * text took in Yjs and in the editor (`installApplyTimer`).
 */
import type { Browser, Page } from 'playwright-core'
import type { ServerProcess } from '../../test/helpers/server.ts'
import { applyTimes, diagnostics, installApplyTimer, installMilestones, milestones, newUser, testDocId, timeUntilShown, waitServiceWorker, type ApplyTimes, type User } from '../../test/e2e/harness.ts'
import { pushDoc, type BenchDoc } from './client-docs.ts'

/** One open of a document. */
export interface OpenSample {
  /** Page clock when the whole text is in the session and the editor shows it (ms since navigation start). */
  pageMs: number
  /** Wall clock from `goto`/`reload` to the same moment, seen from Node (adds Playwright's round trips). */
  wallMs: number
  /** App milestones on the page clock: session, loaded, socketOpen, firstText, synced, shown. */
  steps: Record<string, number>
  /** Where the time of the transactions that brought the text went (`installApplyTimer`). */
  apply: ApplyTimes
}

/** Both sources for one document. */
export interface OpenResult {
  doc: BenchDoc
  server: OpenSample[]
  idb: OpenSample[]
}

async function openOnce(user: User, doc: BenchDoc, go: () => Promise<unknown>): Promise<OpenSample> {
  const t0 = Date.now()
  await go()
  const shown = await timeUntilShown(user.page, doc.text.length, doc.firstLine, t0).catch(async (e) => {
    throw new Error(`${(e as Error).message}\n${await diagnostics([user])}`)
  })
  const text = await user.page.evaluate(() => (window as any).__murmur.session.text.toString() as string)
  if (text !== doc.text) throw new Error(`opened ${doc.edits} edits: text differs (${text.length} vs ${doc.text.length} chars)`)
  return { ...shown, steps: await milestones(user.page), apply: await applyTimes(user.page) }
}

/** Resolves once every IndexedDB write the page's session started has committed (a read-only transaction queues behind them). */
export function idbFlushed(page: Page): Promise<void> {
  return page.evaluate(async () => {
    const idb = (window as any).__murmur.session.idb
    const db: IDBDatabase = await idb._db
    await new Promise<void>((res, rej) => {
      const tx = db.transaction(['updates'], 'readonly')
      tx.oncomplete = () => res()
      tx.onerror = () => rej(tx.error)
      tx.objectStore('updates').count()
    })
  })
}

/**
 * Pushes `doc` to `server`, opens it `reps` times from the server (a new
 * context each time) and `reps` times from IndexedDB (offline reloads of the
 * last context).
 */
export async function measureOpen(browser: Browser, server: ServerProcess, doc: BenchDoc, reps: number): Promise<OpenResult> {
  const docId = testDocId(`open-${doc.edits}`)
  await pushDoc(server.wsUrl, docId, doc)
  const url = `${server.url}/d/${docId}`
  const result: OpenResult = { doc, server: [], idb: [] }
  let user: User | null = null
  try {
    for (let r = 0; r < reps; r++) {
      await user?.close()
      user = await newUser(browser, { name: 'Alice' })
      await installMilestones(user.context)
      await installApplyTimer(user.context)
      const u = user
      result.server.push(await openOnce(u, doc, () => u.page.goto(url)))
    }
    const u = user!
    await u.page.locator('[data-testid=status-local][data-state=saved]').waitFor({ state: 'attached', timeout: 60_000 })
    await waitServiceWorker(u.page)
    await idbFlushed(u.page)
    await u.context.setOffline(true)
    for (let r = 0; r < reps; r++) {
      result.idb.push(await openOnce(u, doc, () => u.page.reload()))
      const server = await u.page.evaluate(() => (window as any).__murmur.session.websocket?.synced === true)
      if (server) throw new Error('offline reload: the backup socket synced, so the text may not have come from IndexedDB')
    }
  } finally {
    await user?.close()
  }
  return result
}
