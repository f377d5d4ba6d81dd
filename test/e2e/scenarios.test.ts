/**
 * The whole story in real browsers: share a link, durable backup that
 * survives kill -9, offline editing with reconnect, and collaboration through
 * the server when WebRTC is unavailable. Each scenario ends with a screenshot
 * in test-results/.
 */
import { afterAll, afterEach, beforeAll, describe, expect, test } from 'vitest'
import type { Browser } from 'playwright-core'
import type { ServerProcess } from '../helpers/server.ts'
import { snapshotOf } from '../helpers/clients.ts'
import {
  docText,
  editorText,
  focusEditor,
  launchBrowser,
  newUser,
  openDoc,
  peerListOf,
  recordServerStates,
  recordedServerStates,
  restartServer,
  rtcFacts,
  screenshot,
  serverState,
  startE2EServer,
  testDocId,
  typeText,
  waitConverged,
  waitForText,
  waitLoaded,
  waitPeer,
  waitRemoteCaret,
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

async function user(name: string, webrtc = true): Promise<User> {
  const u = await newUser(browser, { name, webrtc })
  users.push(u)
  return u
}


describe('scenarios', () => {
  test('a. share a URL: New document, copy the link, the other person opens it and both write', async () => {
    const alice = await user('Alice')
    await alice.context.grantPermissions(['clipboard-read', 'clipboard-write'], { origin: server.url })
    await alice.page.goto(server.url + '/')
    await alice.page.locator('[data-testid=new-doc]').click()
    await alice.page.waitForURL(/\/d\/[A-Za-z0-9_-]{22}#key=[A-Za-z0-9_-]{43}$/) // New document is private: the key is in the link
    await waitLoaded(alice.page)
    await focusEditor(alice.page)
    await typeText(alice.page, '# Trip plan\n\nDay 1: arrive in Lisbon.')

    // The link Copy link puts on the clipboard is the page's URL.
    await alice.page.locator('[data-testid=copy-link]').click()
    const copied = await alice.page.evaluate(() => navigator.clipboard.readText())
    expect(copied).toBe(alice.page.url())
    expect(await alice.page.locator('[data-testid=copy-link]').getAttribute('data-link')).toBe(copied)

    const bob = await user('Bob')
    await openDoc(bob.page, copied)
    await explain(waitForText(bob.page, 'Day 1: arrive in Lisbon.'), [alice, bob])
    const caret = await explain(waitRemoteCaret(bob.page, 'Alice'), [alice, bob])
    expect(caret.opacity).toBeGreaterThan(0.5)

    // Both write at the same time, at different places.
    const aliceLine = '\nDay 2: tram 28, then the castle.'
    const bobLine = 'Packing: sunscreen, good shoes.\n'
    await focusEditor(alice.page, 'end')
    await focusEditor(bob.page, 'start')
    await bob.page.keyboard.press('ArrowDown')
    await bob.page.keyboard.press('ArrowDown')
    await Promise.all([typeText(alice.page, aliceLine, 25), typeText(bob.page, bobLine, 25)])
    const text = await explain(
      waitConverged([alice.page, bob.page], (t) => t.includes(aliceLine) && t.includes(bobLine)),
      [alice, bob],
    )
    expect(text.startsWith('# Trip plan\n')).toBe(true)
    expect(await editorText(bob.page)).toBe(text)
    await waitRemoteCaret(alice.page, 'Bob')

    // Bob renames himself; Alice sees the new name in the peer list and on his caret.
    await bob.page.locator('[data-testid=user-name]').fill('Bob Builder')
    await bob.page.locator('[data-testid=user-name]').press('Enter')
    await explain(waitPeer(alice.page, 'Bob Builder'), [alice, bob])
    // Known defect (y-codemirror.next 0.3.6: YRemoteCaretWidget.eq compares only the colour): the caret
    // label keeps the old name until the renamed user's caret moves. Reported, not asserted.
    const relabelled = await waitRemoteCaret(alice.page, 'Bob Builder', 3000).then(
      () => true,
      () => false,
    )
    if (!relabelled) {
      const labels = await alice.page.locator('.cm-ySelectionInfo').allTextContents()
      console.log(`[e2e] DEFECT a. after Bob renamed himself, Alice's peer list says "Bob Builder" but his caret label still says ${JSON.stringify(labels)}`)
    }
    // Once Bob's caret moves, the label shows the new name.
    await focusEditor(bob.page, 'end')
    await typeText(bob.page, ' (Bob)')
    await waitForText(alice.page, ' (Bob)')
    await waitRemoteCaret(alice.page, 'Bob Builder')
    await screenshot(bob.page, 'share-url')
    await screenshot(alice.page, 'share-url-alice')
  })

  test('b. durable backup: the server alone restores the text after kill -9, to a browser with empty storage', async () => {
    const alice = await user('Alice')
    const docId = testDocId('durable')
    const url = `${server.url}/d/${docId}`
    await openDoc(alice.page, url)
    await focusEditor(alice.page)
    const lines = ['# Durable', '', 'Every acknowledged keystroke is on the server’s disk.', 'Even after kill -9.', 'Line five, with some unicode: café — ok.']
    await typeText(alice.page, lines.join('\n'), 5)
    const aliceText = await docText(alice.page)
    expect(aliceText).toBe(lines.join('\n'))
    await explain(waitServerState(alice.page, 'backed-up'), [alice])
    await screenshot(alice.page, 'durable-backup-alice')
    await alice.close()
    users = users.filter((u) => u !== alice)

    // Crash the server (no flush, no goodbye) and bring it back on the same data.
    expect(await server.stop('SIGKILL')).toBeNull()
    server = await restartServer(server)

    const carol = await user('Carol')
    await openDoc(carol.page, url) // a new context: nothing of this document on this device
    await explain(waitForText(carol.page, (t) => t === aliceText), [carol])
    expect(await editorText(carol.page)).toBe(aliceText)
    // Nobody else was online: the text came from the server.
    expect((await rtcFacts(carol.page)).conns).toBe(0)
    expect(await peerListOf(carol.page)).toEqual([])
    await waitServerState(carol.page, 'backed-up')
    await screenshot(carol.page, 'durable-backup')
  })

  test('c. offline and reconnect: reload offline from the service worker and IndexedDB, keep writing, merge on return', async () => {
    const alice = await user('Alice')
    const bob = await user('Bob')
    const docId = testDocId('reconnect')
    const url = `${server.url}/d/${docId}`
    await Promise.all([openDoc(alice.page, url), openDoc(bob.page, url)])
    await waitServiceWorker(alice.page)
    await focusEditor(alice.page)
    await typeText(alice.page, 'Shared before going offline.\n')
    await waitForText(bob.page, 'Shared before going offline.')
    await explain(waitServerState(alice.page, 'backed-up'), [alice, bob])

    // Alice loses the network, and the server goes down.
    await alice.context.setOffline(true)
    await server.stop()
    await alice.page.reload()
    await explain(waitLoaded(alice.page), [alice])
    await recordServerStates(alice.page)
    expect(await docText(alice.page)).toBe('Shared before going offline.\n')
    await focusEditor(alice.page)
    await typeText(alice.page, 'Alice, offline on the train.\n')
    await alice.page.locator('[data-testid=status-local][data-state=saved]').waitFor({ state: 'attached' })
    // The offline reload says it runs on the server's last known settings (this also proves the selector finds the note).
    const configNote = alice.page.locator('[data-testid=status-config]')
    await configNote.waitFor({ state: 'visible', timeout: 10_000 })
    expect(await configNote.getAttribute('data-source')).toBe('cache')
    expect(await configNote.textContent()).toMatch(/not reachable/i)
    // Not claimed as backed up while offline.
    await expect.poll(() => serverState(alice.page)).toMatch(/^(offline|not-backed-up|connecting)$/)
    await screenshot(alice.page, 'reconnect-offline')

    await focusEditor(bob.page)
    await typeText(bob.page, 'Bob, at the office meanwhile.\n')

    // The server returns on the same port; Alice gets her network back.
    server = await restartServer(server)
    await alice.context.setOffline(false)
    const want = (t: string) => ['Shared before going offline.', 'Alice, offline on the train.', 'Bob, at the office meanwhile.'].every((s) => t.includes(s))
    const text = await explain(waitConverged([alice.page, bob.page], want, 60_000), [alice, bob])
    await explain(waitServerState(alice.page, 'backed-up', 60_000), [alice, bob])
    await explain(waitServerState(bob.page, 'backed-up', 60_000), [alice, bob])
    // The server has exactly what both browsers have.
    expect((await snapshotOf(server.wsUrl, docId)).text).toBe(text)

    const states = await recordedServerStates(alice.page)
    console.log(`[e2e] c. Alice's server status after the offline reload: ${states.join(' → ')}`)
    expect(states[states.length - 1]).toBe('backed-up')
    expect(states.slice(0, -1).some((s) => s === 'offline' || s === 'not-backed-up')).toBe(true)
    // The "server not reachable, using last known settings" note from the offline reload ends with the outage.
    // (The note is rendered only while there is something to say, so it goes away entirely.)
    await configNote.waitFor({ state: 'detached', timeout: 10_000 })
    await screenshot(alice.page, 'reconnect')
  })

  test('d. relay fallback: without WebRTC on one side, both still collaborate through the server', async () => {
    const alice = await user('Alice')
    const bob = await user('Bob', false)
    const docId = testDocId('relay')
    const url = `${server.url}/d/${docId}`
    await openDoc(alice.page, url)
    await openDoc(bob.page, url)
    expect(await bob.page.evaluate(() => typeof (window as any).RTCPeerConnection)).toBe('undefined')

    await focusEditor(alice.page)
    await typeText(alice.page, 'From Alice (has WebRTC).\n')
    await explain(waitForText(bob.page, 'From Alice (has WebRTC).'), [alice, bob])
    await focusEditor(bob.page)
    await typeText(bob.page, 'From Bob (no WebRTC).\n')
    const text = await explain(waitConverged([alice.page, bob.page], (t) => t.includes('From Bob (no WebRTC).')), [alice, bob])
    expect(text).toContain('From Alice (has WebRTC).')

    // Each sees the other, reached through the server; no direct connection exists.
    await explain(waitPeer(alice.page, 'Bob', 'server'), [alice, bob])
    await explain(waitPeer(bob.page, 'Alice', 'server'), [alice, bob])
    expect((await rtcFacts(alice.page)).connected).toBe(0)
    expect(await alice.page.locator('[data-testid=status-peers]').textContent()).toMatch(/\b0\b/)
    await waitRemoteCaret(alice.page, 'Bob')
    await waitRemoteCaret(bob.page, 'Alice')
    if (bob.errors.length) console.log(`[e2e] d. console errors in the page without WebRTC:\n  ${bob.errors.join('\n  ')}`)
    // A browser without WebRTC is a supported configuration: no uncaught exceptions.
    expect(bob.errors.filter((e) => e.startsWith('pageerror'))).toEqual([])
    expect(alice.errors.filter((e) => e.startsWith('pageerror'))).toEqual([])
    await screenshot(alice.page, 'relay-fallback')
    await screenshot(bob.page, 'relay-fallback-bob')
  })
})
