/**
 * History in real browsers (issue 11): A writes and a version exists; B
 * deletes everything and types over it; A restores the version from the
 * panel; both see the restored text; A undoes the restore. History opens
 * offline. A new browser opening the link after a server restart lists the
 * same versions. With no backup server at all (signaling only), versions
 * travel peer to peer, and a browser that only ever met a peer lists them.
 * A private document's versions reach the server sealed, and a new browser
 * with the full link lists them after a restart. Tabs of one browser list
 * each other's versions as they are saved.
 */
import { existsSync, readFileSync } from 'node:fs'
import { join } from 'node:path'
import { afterAll, afterEach, beforeAll, describe, expect, test } from 'vitest'
import type { Browser, Page } from 'playwright-core'
import type { ServerProcess } from '../helpers/server.ts'
import { untilDoc, yClient } from '../helpers/clients.ts'
import { HistoryLog } from '../../src/history/log.ts'
import { historyDocId } from '../../src/protocol/ids.ts'
import { readLog } from '../helpers/log-client.ts'
import {
  docText,
  focusEditor,
  launchBrowser,
  newUser,
  openDoc,
  restartServer,
  screenshot,
  startE2EServer,
  testDocId,
  typeText,
  waitConverged,
  waitForText,
  waitLoaded,
  waitServiceWorker,
  waitDirectPeers,
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


/** Opens the history panel. */
async function openHistory(page: Page): Promise<void> {
  await page.locator('[data-testid=history-button]').click()
  await page.locator('[data-testid=history-panel]').waitFor({ state: 'visible' })
}

/** Saves a version named `name` from the open panel and waits for its entry; returns its id. */
async function saveVersion(page: Page, name: string): Promise<string> {
  await page.locator('[data-testid=version-name]').fill(name)
  await page.locator('[data-testid=version-save]').click()
  const entry = page.locator('[data-testid=version]', { hasText: name })
  await entry.waitFor({ state: 'visible' })
  return (await entry.getAttribute('data-id'))!
}

/** The editor of the document (the diff view is another CodeMirror editor). */
const documentText = (page: Page) => page.getByRole('textbox', { name: 'Document text' })

/** The ids of the listed versions, top to bottom. */
function listedIds(page: Page): Promise<string[]> {
  return page.locator('[data-testid=version]').evaluateAll((els) => els.map((e) => e.getAttribute('data-id')!))
}

/** Waits until the server holds `n` versions of `docId` (read by a plain y-websocket client). */
async function serverVersions(docId: string, n: number): Promise<string[]> {
  const c = yClient(server.wsUrl, historyDocId(docId))
  const log = new HistoryLog(c.doc)
  try {
    await untilDoc(c.doc, () => log.list().length >= n, `${n} versions on the server`, 30_000)
    return log.list().map((v) => v.id)
  } finally {
    c.destroy()
  }
}

describe('history', () => {
  test('A/B: Bob writes over Alice’s text; Alice restores her version from the panel; both see it; Alice undoes the restore', async () => {
    const alice = await user('Alice')
    const bob = await user('Bob')
    // The panel and its diff view run under the server's Content-Security-Policy too.
    await alice.context.addInitScript(() => {
      document.addEventListener('securitypolicyviolation', (e) => console.error(`CSP violation: ${e.violatedDirective} ${e.blockedURI}`))
    })
    const url = `${server.url}/d/${testDocId('history')}`
    await Promise.all([openDoc(alice.page, url), openDoc(bob.page, url)])
    const original = 'Alice wrote this paragraph.\nAnd a second line worth keeping.\n'
    await focusEditor(alice.page)
    await typeText(alice.page, original, 5)
    await explain(waitForText(bob.page, original), [alice, bob])

    await openHistory(alice.page)
    const id = await saveVersion(alice.page, 'Before Bob')
    expect((await listedIds(alice.page))[0]).toBe(id) // newest first
    expect(await alice.page.locator(`[data-testid=version][data-id="${id}"]`).textContent()).toContain('Alice')

    // Bob deletes everything and types over it.
    await focusEditor(bob.page)
    await bob.page.keyboard.press('Control+a')
    await bob.page.keyboard.press('Delete')
    await typeText(bob.page, 'Bob was here.', 5)
    await explain(waitConverged([alice.page, bob.page], (t) => t === 'Bob was here.'), [alice, bob])

    // Alice selects her version (a diff against the current text), then restores it.
    const entry = alice.page.locator(`[data-testid=version][data-id="${id}"]`)
    await entry.locator('button[aria-pressed]').click()
    await alice.page.locator('[data-testid=version-diff] .cm-deletedChunk').first().waitFor({ state: 'visible' })
    await entry.locator('[data-testid=version-restore]').click()
    await explain(waitConverged([alice.page, bob.page], (t) => t === original), [alice, bob])
    // The diff follows the text: nothing differs from the restored version any more.
    await expect.poll(() => alice.page.locator('[data-testid=version-diff] .cm-deletedChunk').count(), { timeout: 10_000 }).toBe(0)
    await screenshot(alice.page, 'history-restored')

    // Undo is the way back: one Mod-z undoes exactly the restore.
    await documentText(alice.page).focus()
    await alice.page.keyboard.press('Control+z')
    await explain(waitConverged([alice.page, bob.page], (t) => t === 'Bob was here.'), [alice, bob])
    expect(alice.errors.filter((e) => /Content Security Policy|CSP violation/i.test(e))).toEqual([])
  })

  test('leaving the page after changes takes a version automatically', async () => {
    const alice = await user('Alice')
    const docId = testDocId('history-leave')
    const url = `${server.url}/d/${docId}`
    await openDoc(alice.page, url)
    await focusEditor(alice.page)
    await typeText(alice.page, 'Typed, then the tab went away.\n', 5)
    // Navigating away fires pagehide: the recorder saves what changed since the last version.
    await alice.page.goto(server.url + '/')
    const saved = await serverVersions(docId, 1)
    expect(saved).toHaveLength(1)
    await openDoc(alice.page, url)
    await openHistory(alice.page)
    const entry = alice.page.locator('[data-testid=version]')
    await expect.poll(() => entry.count()).toBe(1)
    expect(await entry.getAttribute('data-id')).toBe(saved[0])
    expect(await entry.textContent()).toContain('Alice')
  })

  test('offline: the panel opens and lists the versions with the network off', async () => {
    const alice = await user('Alice')
    const url = `${server.url}/d/${testDocId('history-offline')}`
    await openDoc(alice.page, url)
    await waitServiceWorker(alice.page)
    await focusEditor(alice.page)
    await typeText(alice.page, 'Written before the train.\n', 5)
    await openHistory(alice.page)
    const id = await saveVersion(alice.page, 'On the platform')

    await alice.context.setOffline(true)
    await alice.page.reload()
    await explain(waitLoaded(alice.page), [alice])
    await openHistory(alice.page)
    await alice.page.locator(`[data-testid=version][data-id="${id}"]`).waitFor({ state: 'visible' })
    // And a version can be saved offline too.
    const offlineId = await saveVersion(alice.page, 'In the tunnel')
    expect(await listedIds(alice.page)).toEqual([offlineId, id])
    await screenshot(alice.page, 'history-offline')
    await alice.context.setOffline(false)
  })

  test('a new browser opening the link after a server restart lists the same versions', async () => {
    const alice = await user('Alice')
    const docId = testDocId('history-restart')
    const url = `${server.url}/d/${docId}`
    await openDoc(alice.page, url)
    await focusEditor(alice.page)
    await typeText(alice.page, 'Version one.\n', 5)
    await openHistory(alice.page)
    await saveVersion(alice.page, 'one')
    await documentText(alice.page).focus()
    await alice.page.keyboard.press('Control+End')
    await typeText(alice.page, 'Version two.\n', 5)
    await saveVersion(alice.page, 'two')
    const ids = await listedIds(alice.page)
    expect(ids).toHaveLength(2)
    expect((await serverVersions(docId, 2)).sort()).toEqual([...ids].sort())
    await alice.close()
    users = []

    await server.stop()
    server = await restartServer(server)
    const carol = await user('Carol')
    await openDoc(carol.page, url)
    await waitForText(carol.page, 'Version two.')
    await openHistory(carol.page)
    await expect.poll(() => listedIds(carol.page), { timeout: 30_000 }).toEqual(ids)
    expect(await docText(carol.page)).toBe('Version one.\nVersion two.\n')
  })

  test('no backup server: Bob lists Alice’s version over WebRTC; Carol, who only ever meets Bob, lists it too', async () => {
    // A signaling-only server: /sync and /log do not exist, so every version travels over the mesh.
    const p2p = await startE2EServer({ args: ['--backup=false'] })
    try {
      const alice = await user('Alice')
      const bob = await user('Bob')
      const url = `${p2p.url}/d/${testDocId('history-p2p')}`
      await Promise.all([openDoc(alice.page, url), openDoc(bob.page, url)])
      await explain(Promise.all([waitDirectPeers(alice.page), waitDirectPeers(bob.page)]), [alice, bob])
      expect(await alice.page.locator('[data-testid=status-server]').getAttribute('data-state')).toBe('off')
      await focusEditor(alice.page)
      await typeText(alice.page, 'Written with no server to keep it.\n', 5)
      await explain(waitForText(bob.page, 'Written with no server to keep it.\n'), [alice, bob])
      await openHistory(alice.page)
      const id = await saveVersion(alice.page, 'Peer to peer')

      await openHistory(bob.page)
      await explain(bob.page.locator(`[data-testid=version][data-id="${id}"]`).waitFor({ state: 'visible' }), [alice, bob])
      expect(await bob.page.locator(`[data-testid=version][data-id="${id}"]`).textContent()).toContain('Alice')

      // Alice leaves; Carol's browser never met her.
      await alice.close()
      users = users.filter((u) => u !== alice)
      const carol = await user('Carol')
      await openDoc(carol.page, url)
      await explain(waitDirectPeers(carol.page), [bob, carol])
      await openHistory(carol.page)
      await explain(carol.page.locator(`[data-testid=version][data-id="${id}"]`).waitFor({ state: 'visible' }), [bob, carol])
      expect(await listedIds(carol.page)).toEqual(await listedIds(bob.page))
      await screenshot(carol.page, 'history-p2p')
    } finally {
      for (const u of users) await u.close().catch(() => {})
      users = []
      await p2p.stop()
    }
  })

  test('private document: the server holds its versions only sealed; a new browser with the full link lists them after a restart', async () => {
    const alice = await user('Alice')
    await alice.page.goto(server.url + '/')
    await alice.page.locator('[data-testid=new-doc]').click()
    await alice.page.waitForURL(/\/d\/[A-Za-z0-9_-]{22}#key=[A-Za-z0-9_-]{43}$/)
    await waitLoaded(alice.page)
    const url = alice.page.url()
    const docId = url.split('/d/')[1]!.split('#')[0]!
    const marker = `history-private-${Date.now().toString(36)}`
    await focusEditor(alice.page)
    await typeText(alice.page, `Sealed ${marker}.\n`, 5)
    await openHistory(alice.page)
    const id = await saveVersion(alice.page, `Named ${marker}`)
    // The version's entry is committed in /log/<docId>.history (one append per version).
    await expect.poll(async () => (await readLog(server.wsUrl, historyDocId(docId))).entries.length, { timeout: 30_000 }).toBeGreaterThan(0)
    const log = await readLog(server.wsUrl, historyDocId(docId))
    for (const f of log.raw) expect(Buffer.from(f).includes(marker)).toBe(false)
    await alice.close()
    users = []

    await server.stop()
    const files = ['murmur.db', 'murmur.db-wal'].map((n) => join(server.dataDir, n)).filter(existsSync)
    expect(files.length).toBeGreaterThan(0)
    for (const file of files) expect(readFileSync(file).includes(marker), file).toBe(false)
    server = await restartServer(server)
    const carol = await user('Carol')
    await openDoc(carol.page, url)
    await waitForText(carol.page, `Sealed ${marker}.\n`)
    await openHistory(carol.page)
    const entry = carol.page.locator(`[data-testid=version][data-id="${id}"]`)
    await explain(entry.waitFor({ state: 'visible' }), [carol])
    expect(await entry.textContent()).toContain(`Named ${marker}`)
  })

  test('two tabs of one browser: a version saved in one is listed in the other at once', async () => {
    // No backup server, so nothing but the tabs themselves can carry it (tabs do not pair over WebRTC).
    const p2p = await startE2EServer({ args: ['--backup=false'] })
    try {
      const alice = await user('Alice')
      await alice.page.goto(p2p.url + '/')
      await alice.page.locator('[data-testid=new-plain-doc]').click()
      await alice.page.waitForURL(/\/d\/[A-Za-z0-9_-]{22}$/)
      await waitLoaded(alice.page)
      await focusEditor(alice.page)
      await typeText(alice.page, 'Two tabs, one history.\n', 5)
      // The second tab gets the text from the first (y-webrtc's BroadcastChannel).
      const second = await alice.context.newPage()
      await openDoc(second, alice.page.url())
      await openHistory(second)
      await openHistory(alice.page)
      const id = await saveVersion(alice.page, 'From the first tab')
      await explain(second.locator(`[data-testid=version][data-id="${id}"]`).waitFor({ state: 'visible' }), [alice])
    } finally {
      for (const u of users) await u.close().catch(() => {})
      users = []
      await p2p.stop()
    }
  })
})
