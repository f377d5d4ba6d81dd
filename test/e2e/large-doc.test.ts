/**
 * A large real document: the automerge-paper trace (≈260k edits, 104,852
 * characters) is replayed in Node into a Y.Doc, pushed to the server by a
 * stock y-websocket client, then opened in a browser from the server alone,
 * reloaded from IndexedDB alone (offline), and edited. Times are printed and
 * written to test-results/timings.json; they are never asserted.
 */
import { afterAll, beforeAll, describe, expect, test } from 'vitest'
import * as Y from 'yjs'
import type { Browser } from 'playwright-core'
import type { ServerProcess } from '../helpers/server.ts'
import { snapshotOf, untilDoc, yClient } from '../helpers/clients.ts'
import {
  diagnostics,
  docText,
  editorText,
  installMilestones,
  launchBrowser,
  milestones,
  newUser,
  recordTimings,
  screenshot,
  serverState,
  startE2EServer,
  testDocId,
  timeUntilShown,
  waitServerState,
  waitServiceWorker,
  type User,
} from './harness.ts'
import { loadTrace, replayTrace } from '../helpers/trace.ts'

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

describe('large document (automerge-paper trace)', () => {
  test('e. open from the server, reload from IndexedDB, and keep typing', async () => {
    // Build the document in Node.
    let t = performance.now()
    const trace = loadTrace('automerge-paper')
    const { doc, edits } = replayTrace(trace)
    const replayMs = Math.round(performance.now() - t)
    const expected = trace.endContent
    expect(doc.getText('text').toString()).toBe(expected)
    const updateBytes = Y.encodeStateAsUpdate(doc).length
    const firstLine = expected.slice(0, expected.indexOf('\n'))
    console.log(`[e2e] e. replayed ${edits} edits in ${replayMs} ms: ${expected.length} chars, state update ${updateBytes} bytes`)

    // Push it to the server with a stock y-websocket client (no BroadcastChannel), and check with a second one.
    const docId = testDocId('large')
    t = performance.now()
    const pusher = yClient(server.wsUrl, docId, { doc })
    await pusher.synced
    const check = yClient(server.wsUrl, docId)
    await check.synced
    await untilDoc(check.doc, () => check.text.length === expected.length, 'the server to hold the whole document', 60_000)
    const pushMs = Math.round(performance.now() - t)
    expect(check.text.toString()).toBe(expected)
    check.destroy()
    pusher.destroy()

    // Open it in a browser with empty storage: everything comes from the server.
    const alice = await newUser(browser, { name: 'Alice' })
    users.push(alice)
    await installMilestones(alice.context)
    const url = `${server.url}/d/${docId}`
    let t0 = Date.now()
    await alice.page.goto(url)
    const fromServer = await timeUntilShown(alice.page, expected.length, firstLine, t0).catch(async (e) => {
      throw new Error(`${(e as Error).message}\n${await diagnostics([alice])}`)
    })
    expect(await docText(alice.page)).toBe(expected)
    expect(await editorText(alice.page)).toBe(expected)
    const serverSteps = await milestones(alice.page)
    console.log(`[e2e] e. first open from the server: ${fromServer.wallMs} ms (page clock: ${fromServer.pageMs} ms after navigation start; steps ${JSON.stringify(serverSteps)})`)

    // Stored on this device, app shell cached: reload offline, so only IndexedDB can provide the text.
    await alice.page.locator('[data-testid=status-local][data-state=saved]').waitFor({ state: 'attached', timeout: 60_000 })
    await waitServiceWorker(alice.page)
    await alice.context.setOffline(true)
    t0 = Date.now()
    await alice.page.reload()
    const fromIdb = await timeUntilShown(alice.page, expected.length, firstLine, t0).catch(async (e) => {
      throw new Error(`${(e as Error).message}\n${await diagnostics([alice])}`)
    })
    expect(await docText(alice.page)).toBe(expected)
    const idbSteps = await milestones(alice.page)
    console.log(`[e2e] e. reload from IndexedDB (offline): ${fromIdb.wallMs} ms (page clock: ${fromIdb.pageMs} ms; steps ${JSON.stringify(idbSteps)})`)

    // Back online; typing at the top and at the end still works and reaches the server.
    await alice.context.setOffline(false)
    await alice.page.locator('.cm-content').click()
    await alice.page.keyboard.press('Control+Home')
    const head = '% reviewed in murmur\n'
    t0 = Date.now()
    await alice.page.keyboard.type(head)
    await alice.page.waitForFunction((head) => (window as any).__murmur.session.text.toString().startsWith(head), head)
    const typeHeadMs = Date.now() - t0
    await alice.page.keyboard.press('Control+End')
    const tail = '\n% the end.'
    await alice.page.keyboard.type(tail)
    const edited = head + expected + tail
    await expect.poll(() => docText(alice.page), { timeout: 30_000 }).toBe(edited)
    expect(await editorText(alice.page)).toBe(edited)
    await waitServerState(alice.page, 'backed-up', 60_000).catch(async (e) => {
      throw new Error(`${(e as Error).message} (state ${await serverState(alice.page)})\n${await diagnostics([alice])}`)
    })
    expect((await snapshotOf(server.wsUrl, docId)).text).toBe(edited)
    await alice.page.keyboard.press('Control+Home')
    await screenshot(alice.page, 'large-doc')

    const timings = {
      trace: 'automerge-paper',
      edits,
      chars: expected.length,
      stateUpdateBytes: updateBytes,
      nodeReplayMs: replayMs,
      pushToServerMs: pushMs,
      openFromServerMs: fromServer.wallMs,
      openFromServerPageClockMs: fromServer.pageMs,
      openFromServerSteps: serverSteps,
      reloadFromIndexedDbMs: fromIdb.wallMs,
      reloadFromIndexedDbPageClockMs: fromIdb.pageMs,
      reloadFromIndexedDbSteps: idbSteps,
      typeHeadLineMs: { chars: head.length, ms: typeHeadMs },
    }
    console.log(`[e2e] e. timings ${JSON.stringify(timings)}`)
    recordTimings({ largeDocument: timings })
  })
})
