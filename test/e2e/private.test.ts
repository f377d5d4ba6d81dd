/**
 * Private documents in real browsers: two people co-edit an end-to-end
 * encrypted document peer to peer; after both leave and the server restarts,
 * a third browser with the full link gets the text from the server's
 * ciphertext alone; the link without the key shows the private screen.
 */
import { readFileSync, existsSync } from 'node:fs'
import { join } from 'node:path'
import { afterAll, afterEach, beforeAll, describe, expect, test } from 'vitest'
import type { Browser } from 'playwright-core'
import type { ServerProcess } from '../helpers/server.ts'
import {
  docText,
  editorText,
  focusEditor,
  launchBrowser,
  newUser,
  openDoc,
  restartServer,
  rtcFacts,
  screenshot,
  startE2EServer,
  typeText,
  waitConverged,
  waitDirectPeers,
  waitForText,
  waitLoaded,
  waitServerState,
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
  const u = await newUser(browser, { name, webrtc: true })
  users.push(u)
  return u
}


describe('private documents', () => {
  test('co-edit P2P, leave, server restarts, a third browser restores from ciphertext; the keyless link shows the private screen', async () => {
    const alice = await user('Alice')
    await alice.page.goto(server.url + '/')
    await alice.page.locator('[data-testid=new-doc]').click()
    await alice.page.waitForURL(/\/d\/[A-Za-z0-9_-]{22}#key=[A-Za-z0-9_-]{43}$/)
    await waitLoaded(alice.page)
    await alice.page.locator('[data-testid=private-lock]').waitFor({ state: 'visible' })
    expect(await alice.page.locator('[data-testid=status-private]').textContent()).toContain('end-to-end encrypted — the server stores only ciphertext')
    const url = alice.page.url()
    expect(await alice.page.locator('[data-testid=copy-link]').getAttribute('data-link')).toBe(url)
    const docId = url.split('/d/')[1]!.split('#')[0]!

    const bob = await user('Bob')
    await openDoc(bob.page, url)
    await explain(waitDirectPeers(alice.page, 1), [alice, bob])
    const marker = `private-e2e-${Date.now().toString(36)}`
    await focusEditor(alice.page)
    await typeText(alice.page, `# Secret plan\n\n${marker} from Alice.`)
    await explain(waitForText(bob.page, `${marker} from Alice.`), [alice, bob])
    await focusEditor(bob.page, 'end')
    await typeText(bob.page, '\nBob agrees.')
    const text = await explain(waitConverged([alice.page, bob.page], (t) => t.includes('Bob agrees.')), [alice, bob])
    await Promise.all([waitServerState(alice.page, 'backed-up'), waitServerState(bob.page, 'backed-up')])
    // The hybrid path on ciphertext: paired directly, both /log links are backup-only (nothing relayed to them).
    for (const p of [alice.page, bob.page]) expect(await p.evaluate(() => (window as any).__murmur.session.core.privateLog?.mode)).toBe('backup')
    await screenshot(alice.page, 'private-doc')
    await alice.close()
    await bob.close()
    users = []

    // The server restarts; nothing it stored contains the text.
    expect(await server.stop()).toBe(0)
    server = await restartServer(server)
    for (const f of ['murmur.db', 'murmur.db-wal'].map((n) => join(server.dataDir, n)).filter(existsSync)) expect(readFileSync(f).includes(marker), f).toBe(false)

    const carol = await user('Carol')
    await openDoc(carol.page, url)
    await explain(waitForText(carol.page, (t) => t === text), [carol])
    expect(await editorText(carol.page)).toBe(text)
    expect((await rtcFacts(carol.page)).conns).toBe(0)
    await waitServerState(carol.page, 'backed-up')

    // The same link without its key: the private screen, no editor, no text.
    const dave = await user('Dave')
    await dave.page.goto(`${server.url}/d/${docId}`)
    await dave.page.locator('[data-testid=doc-private]').waitFor({ state: 'visible' })
    expect(await dave.page.locator('[data-testid=doc-private] h2').textContent()).toBe('This document is private: ask for the full link')
    expect(await dave.page.locator('.cm-content').count()).toBe(0)
    expect(await docText(dave.page).catch(() => '')).not.toContain(marker)
    await screenshot(dave.page, 'private-keyless')
  })
})
