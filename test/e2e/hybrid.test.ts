/**
 * Issue 8, the hybrid data path in Chromium: three people on one document,
 * Carol's browser cannot reach `/signal` (an init script points its signaling
 * WebSocket at a closed port). Alice and Bob pair directly and their `/sync`
 * links are backup-only; Carol's link switches to relay, so the server
 * forwards between her and them. Everyone co-edits live with carets and the
 * status of each is truthful: peer list says direct or via server, and every
 * browser ends backed up. Run under /work/shared/isolated-net.
 */
import { afterAll, beforeAll, describe, expect, test } from 'vitest'
import type { Browser } from 'playwright-core'
import type { ServerProcess } from '../helpers/server.ts'
import { metricSample } from '../signaling/helpers.ts'
import { snapshotOf } from '../helpers/clients.ts'
import { diagnostics, focusEditor, launchBrowser, newUser, openDoc, peerListOf, screenshot, startE2EServer, testDocId, typeText, waitConverged, waitDirectPeers, waitPeer, waitRemoteCaret, waitServerState, type User } from './harness.ts'

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

async function explain<T>(p: Promise<T>): Promise<T> {
  try {
    return await p
  } catch (err) {
    throw new Error(`${(err as Error).message}\n--- diagnostics ---\n${await diagnostics(users)}`)
  }
}

/** The link mode the page's backup link is in. */
const linkMode = (u: User) => u.page.evaluate(() => (window as any).__murmur?.session?.core?.link?.mode ?? null)

describe('hybrid data path', () => {
  test('three browsers, one with /signal blocked: live co-editing with carets, truthful status', async () => {
    const [alice, bob] = await Promise.all([newUser(browser, { name: 'Alice' }), newUser(browser, { name: 'Bob' })])
    const carol = await newUser(browser, { name: 'Carol' })
    users.push(alice, bob, carol)
    // Carol's network blocks signaling: every WebSocket to /signal goes to a path that refuses it.
    await carol.context.addInitScript(() => {
      const Native = WebSocket
      ;(window as any).WebSocket = class extends Native {
        constructor(url: string | URL, protocols?: string | string[]) {
          // Same origin (the page's CSP allows only that), a path the server does not serve.
          super(String(url).replace(/\/signal(?=$|[?/])/, '/signal-blocked'), protocols)
        }
      }
    })
    const url = `${server.url}/d/${testDocId('hybrid')}`
    await Promise.all([openDoc(alice.page, url), openDoc(bob.page, url), openDoc(carol.page, url)])

    // Alice and Bob pair directly: backup-only links. Carol cannot: her link relays.
    await explain(Promise.all([waitDirectPeers(alice.page, 1), waitDirectPeers(bob.page, 1)]))
    await explain(alice.page.waitForFunction(() => (window as any).__murmur?.session?.core?.link?.mode === 'backup', null, { timeout: 30_000 }))
    await explain(carol.page.waitForFunction(() => (window as any).__murmur?.session?.core?.link?.mode === 'relay', null, { timeout: 30_000 }))

    await focusEditor(alice.page)
    await typeText(alice.page, 'Alice, direct.\n')
    await focusEditor(carol.page)
    await typeText(carol.page, 'Carol, via the server.\n')
    // Bob types at the end once Carol's line is there (else his keystrokes may land inside it).
    await explain(bob.page.waitForFunction(() => document.querySelector('.cm-content')?.textContent?.includes('Carol, via the server.'), null, { timeout: 30_000 }))
    await focusEditor(bob.page)
    await typeText(bob.page, 'Bob, direct.\n')
    const all = (t: string) => ['Alice, direct.', 'Carol, via the server.', 'Bob, direct.'].every((s) => t.includes(s))
    const text = await explain(waitConverged([alice.page, bob.page, carol.page], all))

    // The peer lists tell the truth: Alice–Bob direct, Carol via the server (both ways).
    await explain(Promise.all([
      waitPeer(alice.page, 'Bob', 'direct'),
      waitPeer(alice.page, 'Carol', 'server'),
      waitPeer(bob.page, 'Alice', 'direct'),
      waitPeer(bob.page, 'Carol', 'server'),
      waitPeer(carol.page, 'Alice', 'server'),
      waitPeer(carol.page, 'Bob', 'server'),
    ]))
    // Carets cross both paths (Alice moves to the top first, so no two carets share a spot).
    await focusEditor(alice.page, 'start')
    await explain(waitRemoteCaret(alice.page, 'Carol'))
    await explain(waitRemoteCaret(bob.page, 'Carol'))
    await explain(waitRemoteCaret(carol.page, 'Alice'))
    await explain(waitRemoteCaret(carol.page, 'Bob'))
    await explain(waitRemoteCaret(bob.page, 'Alice'))
    // Backed up everywhere, and the server has exactly the text.
    await explain(Promise.all([alice, bob, carol].map((u) => waitServerState(u.page, 'backed-up', 30_000))))
    expect((await snapshotOf(server.wsUrl, testDocIdOf(url))).text).toBe(text)
    expect(await linkMode(alice)).toBe('backup')
    expect(await linkMode(bob)).toBe('backup')
    expect(await linkMode(carol)).toBe('relay')
    // (The e2e server may be shared with other files' browsers: at least these three.)
    expect(await metricSample(server, 'murmur_sync_clients', { mode: 'backup' })).toBeGreaterThanOrEqual(2)
    expect(await metricSample(server, 'murmur_sync_clients', { mode: 'relay' })).toBeGreaterThanOrEqual(1)
    console.log(`[e2e] hybrid peer lists: alice ${JSON.stringify(await peerListOf(alice.page))}, carol ${JSON.stringify(await peerListOf(carol.page))}`)
    await screenshot(carol.page, 'hybrid-relayed-carol')
  })
})

function testDocIdOf(url: string): string {
  return url.slice(url.lastIndexOf('/') + 1)
}
