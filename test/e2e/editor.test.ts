/**
 * The editor in real browsers: two people (separate browser contexts, like
 * two devices) edit one document over a real WebRTC connection, see each
 * other's caret, and keep working through a server outage and an offline
 * reload.
 */
import { afterAll, beforeAll, describe, expect, test } from 'vitest'
import type { Browser } from 'playwright-core'
import type { ServerProcess } from '../helpers/server.ts'
import { snapshotOf } from '../helpers/clients.ts'
import {
  diagnostics,
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
  testDocId,
  typeText,
  waitConverged,
  waitDirectPeers,
  waitForText,
  waitLoaded,
  waitPeer,
  waitRemoteCaret,
  waitServerState,
  waitServiceWorker,
  type User,
} from './harness.ts'

let browser: Browser
let server: ServerProcess
const users: User[] = []

beforeAll(async () => {
  ;[browser, server] = await Promise.all([launchBrowser(), startE2EServer()])
})

afterAll(async () => {
  for (const u of users) await u.close().catch(() => {})
  await browser?.close()
  await server?.stop()
})

async function user(name: string): Promise<User> {
  const u = await newUser(browser, { name })
  users.push(u)
  return u
}

describe('the editor', () => {
  test('two users type concurrently over WebRTC, converge, and see each other’s caret', async () => {
    const alice = await user('Alice')
    const bob = await user('Bob')
    const url = `${server.url}/d/${testDocId('editor')}`
    await Promise.all([openDoc(alice.page, url), openDoc(bob.page, url)])

    // A real WebRTC data channel between the two contexts (they share no BroadcastChannel).
    const [ra, rb] = await Promise.all([waitDirectPeers(alice.page), waitDirectPeers(bob.page)])
    expect(ra.connected).toBeGreaterThanOrEqual(1)
    expect(rb.connected).toBeGreaterThanOrEqual(1)
    expect(ra.bcConns).toBe(0)
    expect(rb.bcConns).toBe(0)
    await expect.poll(() => alice.page.locator('[data-testid=status-peers]').textContent()).toMatch(/\b1\b/)
    await waitPeer(alice.page, 'Bob', 'direct')
    await waitPeer(bob.page, 'Alice', 'direct')

    // A heading both then write under, at different places, at the same time.
    await focusEditor(alice.page)
    await typeText(alice.page, '# Meeting notes\n\n')
    await waitForText(bob.page, '# Meeting notes\n\n')

    const aliceLine = 'Alice: the sync layer is ready for review.'
    const bobLine = 'Bob: I will test it on my phone tonight.'
    await focusEditor(bob.page, 'end')
    await focusEditor(alice.page, 'start')
    await alice.page.keyboard.press('End') // end of the heading line
    await Promise.all([typeText(alice.page, `\n${aliceLine}`, 25), typeText(bob.page, bobLine, 25)])

    const text = await waitConverged([alice.page, bob.page], (t) => t.includes(aliceLine) && t.includes(bobLine)).catch(async (e) => {
      throw new Error(`${(e as Error).message}\n${await diagnostics([alice, bob])}`)
    })
    expect(text.startsWith('# Meeting notes\n')).toBe(true)
    // The editors show exactly the shared text.
    expect(await editorText(alice.page)).toBe(text)
    expect(await editorText(bob.page)).toBe(text)

    // Each sees the other's caret with the other's name.
    const caretOfBob = await waitRemoteCaret(alice.page, 'Bob')
    const caretOfAlice = await waitRemoteCaret(bob.page, 'Alice')
    expect(caretOfBob.opacity).toBeGreaterThan(0.5)
    expect(caretOfAlice.opacity).toBeGreaterThan(0.5)
    expect(caretOfBob.box?.width ?? 0).toBeGreaterThan(5)

    // The edits travelled over WebRTC (still connected at the end).
    expect((await rtcFacts(alice.page)).connected).toBeGreaterThanOrEqual(1)
    const shot = await screenshot(alice.page, 'two-users')
    await screenshot(bob.page, 'two-users-bob')
    console.log(`[e2e] screenshot ${shot}`)
  })

  test('offline: edits survive a server outage and a reload, and merge when the server returns', async () => {
    const alice = await user('Alice')
    const bob = await user('Bob')
    const docId = testDocId('offline')
    const url = `${server.url}/d/${docId}`
    await Promise.all([openDoc(alice.page, url), openDoc(bob.page, url)])
    await waitServiceWorker(alice.page)

    await focusEditor(alice.page)
    await typeText(alice.page, 'Written before the outage.\n')
    await waitForText(bob.page, 'Written before the outage.')
    await alice.page.locator('[data-testid=status-local][data-state=saved]').waitFor({ state: 'attached' })

    // The server goes away; Alice reloads: service worker + IndexedDB bring the page and the text back.
    await server.stop()
    await alice.page.reload()
    await waitLoaded(alice.page)
    expect(await docText(alice.page)).toContain('Written before the outage.')
    await expect.poll(() => editorText(alice.page)).toContain('Written before the outage.')

    // Both keep editing while the server is down (Alice's reload cut her WebRTC link; signaling is down).
    await focusEditor(alice.page)
    await typeText(alice.page, 'Alice, while the server was down.\n')
    await focusEditor(bob.page)
    await typeText(bob.page, 'Bob, while the server was down.\n')
    await screenshot(alice.page, 'offline-alice-server-down')

    // Server back on the same port and data: everything merges.
    server = await restartServer(server)
    const text = await waitConverged([alice.page, bob.page], (t) => ['Written before the outage.', 'Alice, while the server was down.', 'Bob, while the server was down.'].every((s) => t.includes(s)), 60_000).catch(
      async (e) => {
        throw new Error(`${(e as Error).message}\n${await diagnostics([alice, bob])}`)
      },
    )
    expect(text.indexOf('Written before the outage.')).toBe(0)

    // And the backup catches up: both report backed up, and the server holds the merged text.
    await Promise.all([waitServerState(alice.page, 'backed-up', 60_000), waitServerState(bob.page, 'backed-up', 60_000)])
    expect((await snapshotOf(server.wsUrl, docId)).text).toBe(text)
    await screenshot(alice.page, 'offline-merged')
  })
})
