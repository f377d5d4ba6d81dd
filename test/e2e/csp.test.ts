/**
 * The server's Content-Security-Policy (issue 13, item 11) against the real
 * built client: two people load a document, connect over WebRTC, back up
 * through /sync, install the service worker and edit, and Chromium reports
 * no CSP violation anywhere on the way.
 */
import { afterAll, beforeAll, expect, test } from 'vitest'
import type { Browser, BrowserContext } from 'playwright-core'
import type { ServerProcess } from '../helpers/server.ts'
import {
  diagnostics,
  focusEditor,
  launchBrowser,
  newUser,
  openDoc,
  startE2EServer,
  testDocId,
  typeText,
  waitConverged,
  waitDirectPeers,
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

/** Collects every CSP violation the pages of `context` report (event and console). */
async function recordViolations(context: BrowserContext, into: string[]): Promise<void> {
  await context.addInitScript(() => {
    document.addEventListener('securitypolicyviolation', (e) => console.error(`CSP violation: ${e.violatedDirective} ${e.blockedURI}`))
  })
  context.on('console', (m) => {
    if (/Content Security Policy|CSP violation/i.test(m.text())) into.push(m.text())
  })
}

test('the built client runs under the CSP without a single violation', async () => {
  const violations: string[] = []
  const doc = await fetch(`${server.url}/d/x`)
  expect(doc.headers.get('content-security-policy')).toContain("frame-ancestors 'none'")
  const [alice, bob] = [await newUser(browser, { name: 'Alice' }), await newUser(browser, { name: 'Bob' })]
  users.push(alice, bob)
  for (const u of users) await recordViolations(u.context, violations)
  const url = `${server.url}/d/${testDocId('csp')}`
  try {
    await Promise.all([openDoc(alice.page, url), openDoc(bob.page, url)])
    await Promise.all([waitDirectPeers(alice.page), waitDirectPeers(bob.page), waitServiceWorker(alice.page)])
    await focusEditor(alice.page)
    await typeText(alice.page, 'under a content security policy')
    await focusEditor(bob.page)
    await typeText(bob.page, '!')
    await waitConverged([alice.page, bob.page], (t) => t.includes('under a content security policy') && t.includes('!'))
    await waitRemoteCaret(bob.page, 'Alice')
    await Promise.all([waitServerState(alice.page, 'backed-up'), waitServerState(bob.page, 'backed-up')])
    // A reload served by the service worker runs under the same policy.
    await alice.page.reload()
    await waitConverged([alice.page], (t) => t.includes('under a content security policy'))
  } catch (err) {
    throw new Error(`${(err as Error).message}\n${await diagnostics(users)}`)
  }
  expect(violations).toEqual([])
})
