/**
 * Big pastes between browsers over WebRTC alone (a server with
 * `--backup=false`, so nothing can come through it). Chromium refuses to
 * send a data channel message above 256 KiB (it throws, y-webrtc swallows
 * the error, and the paste never arrives); y-webrtc sends each update as one
 * message, so these arrive only because `session/mesh-parts.ts` cuts them
 * into parts: Alice pastes 1 MB, Bob answers with 300 KB, and Carol, who
 * joins last, gets the whole 1.3 MB document in y-webrtc's sync step 2.
 */
import { afterAll, beforeAll, describe, expect, test } from 'vitest'
import type { Browser, Page } from 'playwright-core'
import type { ServerProcess } from '../helpers/server.ts'
import { diagnostics, focusEditor, launchBrowser, newUser, openDoc, startE2EServer, testDocId, waitDirectPeers, waitServerState, type User } from './harness.ts'

let browser: Browser
let server: ServerProcess

beforeAll(async () => {
  ;[browser, server] = await Promise.all([launchBrowser(), startE2EServer({ args: ['--backup=false'] })])
})

afterAll(async () => {
  await browser?.close()
  await server?.stop()
})

/** Pastes `chars` generated characters at the end of the editor, through CodeMirror's paste handler. */
async function paste(page: Page, chars: number, seed: number): Promise<void> {
  await focusEditor(page)
  await page.evaluate(
    ({ chars, seed }) => {
      let text = ''
      for (let i = 0; text.length < chars; i++) text += `${seed}:${i} the quick brown fox jumps over the lazy dog\n`
      const data = new DataTransfer()
      data.setData('text/plain', text.slice(0, chars))
      document.querySelector('.cm-content')!.dispatchEvent(new ClipboardEvent('paste', { clipboardData: data, bubbles: true, cancelable: true }))
    },
    { chars, seed },
  )
}

/** Counts the page's WebRTC connections that close (`window.__rtcCloses`). */
async function countCloses(page: Page): Promise<void> {
  await page.evaluate(() => {
    const w = window as any
    w.__rtcCloses = 0
    const seen = new WeakSet()
    setInterval(() => {
      for (const conn of w.__murmur?.session?.webrtc?.room?.webrtcConns.values() ?? []) {
        if (seen.has(conn.peer)) continue
        seen.add(conn.peer)
        conn.peer.once('close', () => w.__rtcCloses++)
      }
    }, 10)
  })
}

/** The page's text length, a hash of it, and its closed connections. */
function summary(page: Page): Promise<{ length: number; hash: number; closes: number }> {
  return page.evaluate(() => {
    const w = window as any
    const text: string = w.__murmur.session.text.toString()
    let h = 0x811c9dc5
    for (let i = 0; i < text.length; i++) h = Math.imul(h ^ text.charCodeAt(i), 16777619)
    return { length: text.length, hash: h >>> 0, closes: w.__rtcCloses as number }
  })
}

/** Waits until the page's document has `n` characters; fails at once if a WebRTC connection of it closes. */
async function waitLength(page: Page, n: number): Promise<void> {
  const handle = await page.waitForFunction((n) => (window as any).__rtcCloses > 0 || (window as any).__murmur.session.text.length === n, n, { timeout: 60_000, polling: 100 })
  await handle.dispose()
  expect((await summary(page)).closes).toBe(0)
}

describe('big pastes over WebRTC, no backup server', () => {
  test('a 1 MB paste and a 300 KB answer reach the other browser directly; a newcomer gets the 1.3 MB document from a peer', async () => {
    const users: User[] = []
    try {
      const [alice, bob, carol] = await Promise.all(['Alice', 'Bob', 'Carol'].map((name) => newUser(browser, { name })))
      users.push(alice, bob, carol)
      const url = `${server.url}/d/${testDocId('large-paste')}`
      await Promise.all([openDoc(alice.page, url), openDoc(bob.page, url)])
      await Promise.all([waitDirectPeers(alice.page), waitDirectPeers(bob.page), waitServerState(alice.page, 'off')])
      await Promise.all([countCloses(alice.page), countCloses(bob.page)])

      await paste(alice.page, 1_000_000, 1)
      await waitLength(alice.page, 1_000_000)
      await waitLength(bob.page, 1_000_000)
      await paste(bob.page, 300_000, 2)
      await waitLength(alice.page, 1_300_000)
      const [a, b] = await Promise.all([summary(alice.page), summary(bob.page)])
      expect(b).toEqual(a)

      await openDoc(carol.page, url)
      await countCloses(carol.page)
      await waitDirectPeers(carol.page, 2)
      await waitLength(carol.page, 1_300_000)
      expect(await summary(carol.page)).toEqual(a)
      expect([(await summary(alice.page)).closes, (await summary(bob.page)).closes]).toEqual([0, 0])
    } catch (err) {
      throw new Error(`${(err as Error).message}\n${await diagnostics(users)}`)
    } finally {
      await Promise.all(users.map((u) => u.close()))
    }
  }, 180_000)
})
