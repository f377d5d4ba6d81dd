/**
 * Issue 12, "the first five minutes" (session and status half), in real
 * browsers: a shared link opened while the server is down, a truncated link,
 * and the peer count after someone leaves. Screenshots land in test-results/.
 */
import { afterAll, afterEach, beforeAll, describe, expect, onTestFinished, test } from 'vitest'
import type { Browser, Page } from 'playwright-core'
import type { ServerProcess } from '../helpers/server.ts'
import { snapshotOf, yClient } from '../helpers/clients.ts'
import {
  docText,
  focusEditor,
  launchBrowser,
  newUser,
  openDoc,
  recordTimings,
  restartServer,
  screenshot,
  startE2EServer,
  testDocId,
  typeText,
  waitDirectPeers,
  waitForText,
  waitLoaded,
  waitPeer,
  waitServerState,
  waitServiceWorker,
  type User,
  explain,
} from './harness.ts'

let browser: Browser
let server: ServerProcess
let users: User[] = []

beforeAll(async () => {
  ;[browser, server] = await Promise.all([launchBrowser(), startE2EServer()])
})

afterEach(async () => {
  for (const u of users) await u.close().catch(() => {})
  users = []
})

afterAll(async () => {
  await browser?.close()
  await server?.stop()
})

async function user(name: string): Promise<User> {
  const u = await newUser(browser, { name })
  users.push(u)
  return u
}


const title = (page: Page) => page.locator('[data-testid=doc-title]').textContent()

describe('the first five minutes', () => {
  test('item 1: a shared link opened while the server is down waits for the document, then gets it when the server is back, without a reload', async () => {
    // The document exists on the server, written by someone else.
    const docId = testDocId('unseen')
    const realText = '# Shared agenda\n\n1. Budget\n2. Hiring'
    const writer = yClient(server.wsUrl, docId)
    writer.text.insert(0, realText)
    await writer.synced
    writer.destroy()
    expect((await snapshotOf(server.wsUrl, docId)).text).toBe(realText)

    // Alice has the app cached from an earlier visit, but not this document and no server settings.
    const alice = await user('Alice')
    await alice.page.goto(server.url + '/')
    await waitServiceWorker(alice.page)
    await alice.page.waitForFunction(() => !!navigator.serviceWorker.controller) // claimed: navigations now go through it
    await alice.page.evaluate(() => {
      for (const k of Object.keys(localStorage)) if (k.startsWith('murmur:config:')) localStorage.removeItem(k)
    })
    let configRequests = 0
    alice.page.on('request', (r) => {
      if (new URL(r.url()).pathname === '/config.json') configRequests++
    })
    await server.stop()
    onTestFinished(async () => {
      // keep the server up for the next tests even when this one failed midway
      if (server.child.exitCode !== null || server.child.signalCode !== null) server = await restartServer(server)
    })

    await alice.page.goto(`${server.url}/d/${docId}`)
    await explain(alice.page.locator('[data-testid=doc-waiting]').waitFor({ state: 'visible' }), [alice])
    expect(await alice.page.locator('[data-testid=doc-waiting]').textContent()).toMatch(/not reached this device yet/)
    // No editor to type a stray first line into, and no claim that this is an untitled new document.
    expect(await alice.page.locator('.cm-content').count()).toBe(0)
    expect(await title(alice.page)).not.toMatch(/untitled/i)
    // The status says the server is unreachable, not that backup is off, and is announced politely.
    await alice.page.locator('[data-testid=status-server][data-state=offline]').waitFor({ state: 'attached' })
    expect(await alice.page.locator('[data-testid=status-server]').textContent()).toMatch(/not reachable/i)
    expect(await alice.page.locator('[data-testid=status-peers]').textContent()).not.toMatch(/looking for peers/i)
    const bar = alice.page.locator('[data-testid=status-bar]')
    expect([await bar.getAttribute('role'), await bar.getAttribute('aria-live')]).toEqual(['status', 'polite'])
    // The configuration is asked for again (with backoff) while the server is down.
    await expect.poll(() => configRequests, { timeout: 20_000 }).toBeGreaterThanOrEqual(3)
    await screenshot(alice.page, 'unseen-link-server-down')

    const downAt = Date.now()
    server = await restartServer(server)
    const text = await explain(waitForText(alice.page, (t) => t === realText, 60_000), [alice])
    const arrivedMs = Date.now() - downAt
    await alice.page.locator('.cm-content').waitFor({ state: 'visible' })
    expect(await alice.page.locator('[data-testid=doc-waiting]').count()).toBe(0)
    expect(await title(alice.page)).toBe('Shared agenda')
    await explain(waitServerState(alice.page, 'backed-up'), [alice])
    expect(text).toBe(realText) // nothing stray merged in
    expect((await snapshotOf(server.wsUrl, docId)).text).toBe(realText)
    console.log(`[e2e] item 1: document arrived ${arrivedMs} ms after the server was restarted (config retried ${configRequests} times)`)
    recordTimings({ 'first-five.server-back-to-text': { ms: arrivedMs, configRequests } })
    await screenshot(alice.page, 'unseen-link-server-back')
  })

  test('item 3: a truncated link says no one has written there, and stays out of "On this device"', async () => {
    const alice = await user('Alice')
    await alice.page.goto(server.url + '/')
    await alice.page.locator('[data-testid=new-doc]').click()
    await alice.page.waitForURL(/\/d\/[A-Za-z0-9_-]{22}#key=[A-Za-z0-9_-]{43}$/) // New document is private: the key is in the link
    await waitLoaded(alice.page)
    // A document made on this device is not "a link no one has written under".
    expect(await alice.page.locator('[data-testid=doc-empty]').count()).toBe(0)
    expect(await alice.page.locator('[data-testid=doc-waiting]').count()).toBe(0)
    await focusEditor(alice.page)
    await typeText(alice.page, '# Budget **2025**\n\nRent, food, travel.')
    await explain(waitServerState(alice.page, 'backed-up'), [alice])
    await expect.poll(() => title(alice.page)).toBe('Budget 2025')
    const url = alice.page.url()
    const docId = url.split('/d/')[1]!.split('#')[0]!
    const truncatedId = docId.slice(0, -4)

    const bob = await user('Bob')
    await openDoc(bob.page, `${server.url}/d/${truncatedId}`)
    const notice = bob.page.locator('[data-testid=doc-empty]')
    await explain(notice.waitFor({ state: 'visible' }), [bob])
    expect(await notice.textContent()).toMatch(/no one has written here yet — check the link/i)
    expect(await docText(bob.page)).toBe('')
    await screenshot(bob.page, 'truncated-link')

    // Going home: the mistyped link is not among the documents on this device.
    await bob.page.goto(server.url + '/')
    await bob.page.locator('h2', { hasText: 'On this device' }).waitFor()
    expect(await bob.page.locator(`[data-testid=recent-doc][data-doc-id="${truncatedId}"]`).count()).toBe(0)

    // The whole link works, without the notice, and is then listed.
    await openDoc(bob.page, url)
    await explain(waitForText(bob.page, 'Rent, food, travel.'), [alice, bob])
    expect(await bob.page.locator('[data-testid=doc-empty]').count()).toBe(0)
    await bob.page.goto(server.url + '/')
    await bob.page.locator(`[data-testid=recent-doc][data-doc-id="${docId}"]`).waitFor()
    expect(await bob.page.locator(`[data-testid=recent-doc][data-doc-id="${truncatedId}"]`).count()).toBe(0)
  })

  test('item 4: the peer count follows the peer list when someone leaves', async () => {
    const [alice, bob, carol] = await Promise.all([user('Alice'), user('Bob'), user('Carol')])
    const url = `${server.url}/d/${testDocId('leave')}`
    await openDoc(alice.page, url)
    await focusEditor(alice.page)
    await typeText(alice.page, 'Three people here.')
    await Promise.all([openDoc(bob.page, url), openDoc(carol.page, url)])
    await explain(waitDirectPeers(alice.page, 2), [alice, bob, carol])
    await explain(Promise.all([waitPeer(alice.page, 'Bob', 'direct'), waitPeer(alice.page, 'Carol', 'direct')]), [alice, bob, carol])
    await alice.page.locator('[data-testid=status-peers][data-count="2"]').waitFor({ state: 'attached' })

    // Record, on every DOM change, how many direct chips are shown and what the count says.
    await alice.page.evaluate(() => {
      const w = window as any
      const seen: { t: number; chips: number; count: number }[] = (w.__e2ePeerSnapshots = [])
      const snap = () => {
        const chips = document.querySelectorAll('[data-testid=peer-list] [data-testid=peer][data-via=direct]').length
        const count = Number(document.querySelector('[data-testid=status-peers]')?.getAttribute('data-count'))
        const last = seen[seen.length - 1]
        if (!last || last.chips !== chips || last.count !== count) seen.push({ t: performance.now(), chips, count })
      }
      snap()
      new MutationObserver(snap).observe(document.body, { subtree: true, childList: true, attributes: true, characterData: true })
    })

    await carol.close() // Carol closes her browser
    users = users.filter((u) => u !== carol)
    await explain(
      alice.page.waitForFunction(() => {
        const s = (window as any).__e2ePeerSnapshots as { chips: number; count: number }[]
        const last = s[s.length - 1]
        return last.chips === 1 && last.count === 1
      }, null, { timeout: 60_000 }),
      [alice, bob],
    )
    const snaps = await alice.page.evaluate(() => (window as any).__e2ePeerSnapshots as { t: number; chips: number; count: number }[])
    console.log(`[e2e] item 4: Alice's direct chips/count after Carol left: ${snaps.map((s) => `${s.chips}/${s.count}@${Math.round(s.t - snaps[0].t)}ms`).join(' → ')}`)
    // The list and the count change together: never "2 peers connected" beside one chip.
    expect(snaps.filter((s) => s.chips !== s.count)).toEqual([])
    expect(await alice.page.locator('[data-testid=status-peers]').textContent()).toMatch(/^\s*1 peer connected/)
    // Carol leaves the list too: at once when her direct connection was her only route, else when the
    // server drops her (her socket closes; at the latest when her presence times out after 30 s).
    await expect
      .poll(() => alice.page.locator('[data-testid=peer-list] [data-testid=peer]').allTextContents(), { timeout: 35_000 })
      .toEqual([expect.stringContaining('Bob')])
    await screenshot(alice.page, 'peer-left')
  })
})
