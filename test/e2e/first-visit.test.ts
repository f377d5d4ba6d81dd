/**
 * g. First visit to a document link after the client was split for it: the
 * text arrives from the server with only the document page's code
 * (compressed), the service worker registers only once the text is shown,
 * the deferred code (Markdown extras, WebRTC) follows, and an offline reload
 * still has everything (service worker precache + IndexedDB).
 */
import { afterAll, beforeAll, expect, test } from 'vitest'
import type { Browser } from 'playwright-core'
import * as Y from 'yjs'
import type { ServerProcess } from '../helpers/server.ts'
import { yClient } from '../helpers/clients.ts'
import { diagnostics, docText, focusEditor, launchBrowser, newUser, screenshot, startE2EServer, testDocId, typeText, waitLoaded, waitServiceWorker, type User } from './harness.ts'

let browser: Browser
let server: ServerProcess
let user: User | null = null

beforeAll(async () => {
  ;[browser, server] = await Promise.all([launchBrowser(), startE2EServer()])
})

afterAll(async () => {
  await user?.close().catch(() => {})
  await browser?.close()
  await server?.stop()
})

const TEXT = '# A shared note\n\nSent as a link to someone on a phone.\n\n- **bold** item\n- `code` item\n'

/** Puts `TEXT` on the server as `docId` through a stock y-websocket client. */
async function seed(docId: string): Promise<void> {
  const doc = new Y.Doc()
  doc.getText('text').insert(0, TEXT)
  const c = yClient(server.wsUrl, docId, { doc })
  try {
    await c.synced
    const check = yClient(server.wsUrl, docId)
    await check.synced
    expect(check.text.toString()).toBe(TEXT)
    check.destroy()
  } finally {
    c.destroy()
  }
}

/** The heading's font size over the body text's: above 1 once the Markdown highlighting (a deferred chunk) is applied. */
function headingScale(page: User['page']): Promise<number> {
  return page.evaluate(() => {
    const line = document.querySelector('.cm-line')
    const span = line?.querySelector('span')
    if (!line || !span) return 0
    return parseFloat(getComputedStyle(span).fontSize) / parseFloat(getComputedStyle(line).fontSize)
  })
}

test('g. first visit: text from the server with the document code only, service worker after the text, offline reload still works', async () => {
  const docId = testDocId('first-visit')
  await seed(docId)
  user = await newUser(browser, { name: 'Dana' })
  const u = user
  // What the page had on screen when it registered the service worker.
  await u.context.addInitScript(() => {
    const sw = navigator.serviceWorker
    if (!sw) return
    const register = sw.register.bind(sw)
    sw.register = (...args: Parameters<ServiceWorkerContainer['register']>) => {
      ;(window as any).__e2eSwRegisteredWith = document.querySelector('.cm-content')?.textContent ?? null
      return register(...args)
    }
  })
  // Hold the deferred chunks back until the text is on screen: if showing the text needed them, it never would be.
  let release!: () => void
  const released = new Promise<void>((resolve) => (release = resolve))
  const held: string[] = []
  await u.page.route(/\/assets\/(extras|y-webrtc)-[^/]+\.js$/, async (route) => {
    held.push(new URL(route.request().url()).pathname)
    await released
    await route.continue()
  })
  const scripts: { url: string; encoding: string | null; vary: string | null }[] = []
  u.page.on('response', (r) => {
    if (new URL(r.url()).pathname.endsWith('.js')) scripts.push({ url: r.url(), encoding: r.headers()['content-encoding'] ?? null, vary: r.headers()['vary'] ?? null })
  })

  await u.page.goto(`${server.url}/d/${docId}`, { waitUntil: 'commit' })
  try {
    await waitLoaded(u.page)
    await u.page.locator('.cm-content', { hasText: 'Sent as a link to someone on a phone.' }).waitFor({ timeout: 30_000 })
    expect(await docText(u.page)).toBe(TEXT)
    console.log(`[e2e] g. deferred chunks requested before the text was shown (held back): ${held.join(', ') || 'none'}`)
    release()

    // Every script came compressed (Chromium asks for br), and the answer says it depends on Accept-Encoding.
    const app = scripts.filter((s) => s.url.includes('/assets/'))
    expect(app.length).toBeGreaterThanOrEqual(3)
    for (const s of app) expect(s, s.url).toMatchObject({ encoding: 'br', vary: 'Accept-Encoding' })

    // The service worker registered only after the text was on screen (src/offline-shell.ts).
    await waitServiceWorker(u.page)
    const shownAtRegistration = await u.page.evaluate(() => (window as any).__e2eSwRegisteredWith as string | null)
    expect(shownAtRegistration).toContain('Sent as a link to someone on a phone.')

    // The deferred code followed: Markdown highlighting (headings larger) and the WebRTC provider.
    await u.page.waitForFunction(() => {
      const line = document.querySelector('.cm-line')
      const span = line?.querySelector('span')
      return !!span && parseFloat(getComputedStyle(span).fontSize) > parseFloat(getComputedStyle(line!).fontSize)
    })
    await u.page.waitForFunction(() => (window as any).__murmur?.session?.webrtc !== null)
    const names = scripts.map((s) => new URL(s.url).pathname)
    expect(names.some((n) => /\/assets\/extras-/.test(n))).toBe(true)
    expect(names.some((n) => /\/assets\/y-webrtc-/.test(n))).toBe(true)

    // Typing works and is stored on this device.
    await focusEditor(u.page)
    await typeText(u.page, 'Typed on the first visit.\n')
    await u.page.locator('[data-testid=status-local][data-state=saved]').waitFor({ state: 'attached' })
    const typed = await docText(u.page)
    expect(typed).toContain('Typed on the first visit.')
    await screenshot(u.page, 'first-visit')

    // Offline reload: the app shell (every chunk, the deferred ones too) from the service worker, the text from IndexedDB.
    await u.context.setOffline(true)
    const failed: string[] = []
    u.page.on('requestfailed', (r) => {
      if (!/\/(config\.json|sync|signal)/.test(r.url())) failed.push(r.url())
    })
    await u.page.reload()
    await waitLoaded(u.page)
    expect(await docText(u.page)).toBe(typed)
    await u.page.waitForFunction(() => (window as any).__murmur?.session?.webrtc !== null)
    expect(await headingScale(u.page)).toBeGreaterThan(1)
    expect(failed).toEqual([])
    expect(u.errors.filter((e) => /could not load/.test(e))).toEqual([])
    await screenshot(u.page, 'first-visit-offline')
  } catch (err) {
    throw new Error(`${(err as Error).message}\n--- diagnostics ---\n${await diagnostics([u])}`)
  }
})
