/**
 * Keystroke latency between two browsers: from the keydown in the sender's
 * page to the change arriving in the receiver's Y.Doc (which updates its
 * editor in the same task). Two paths:
 *   - direct: WebRTC only (a server with --backup=false, so nothing is relayed);
 *   - via server: the receiver has no RTCPeerConnection, so only the
 *     /sync relay carries the change.
 * The receiver records which provider delivered every update, so each path is
 * proven, not assumed. Printed and written to test-results/timings.json; never
 * asserted (tests do not fail on timings).
 */
import { afterAll, beforeAll, describe, expect, test } from 'vitest'
import type { Browser } from 'playwright-core'
import type { ServerProcess } from '../helpers/server.ts'
import {
  diagnostics,
  focusEditor,
  installLatencyProbes,
  launchBrowser,
  measureKeystrokes,
  newUser,
  openDoc,
  recordTimings,
  startE2EServer,
  stats,
  testDocId,
  waitDirectPeers,
  waitForText,
  waitServerState,
  type KeystrokeLatency,
} from './harness.ts'

const SAMPLES = Number(process.env.E2E_LATENCY_SAMPLES ?? 60)
const WARMUP = 5

let browser: Browser
let relayServer: ServerProcess
let signalOnly: ServerProcess
const results: Record<string, unknown> = {}

beforeAll(async () => {
  ;[browser, relayServer, signalOnly] = await Promise.all([launchBrowser(), startE2EServer(), startE2EServer({ args: ['--backup=false'] })])
})

afterAll(async () => {
  await browser?.close()
  await Promise.all([relayServer?.stop(), signalOnly?.stop()])
  if (Object.keys(results).length) recordTimings({ keystrokeLatency: results })
})

function report(label: string, r: KeystrokeLatency) {
  const s = stats(r.ms)
  console.log(`[e2e] f. keystroke latency ${label}: median ${s.median} ms, p90 ${s.p90} ms, p99 ${s.p99} ms (min ${s.min}, max ${s.max}, n=${s.n}; delivered by ${JSON.stringify(r.via)})`)
  results[label] = { ...s, deliveredBy: r.via }
  return s
}

describe('keystroke latency', () => {
  test('f1. direct over WebRTC', async () => {
    const alice = await newUser(browser, { name: 'Alice' })
    const bob = await newUser(browser, { name: 'Bob' })
    try {
      const url = `${signalOnly.url}/d/${testDocId('latency-direct')}`
      await Promise.all([openDoc(alice.page, url), openDoc(bob.page, url)])
      await Promise.all([waitDirectPeers(alice.page), waitDirectPeers(bob.page)])
      await waitServerState(alice.page, 'off')
      await installLatencyProbes(alice.page, bob.page)
      await focusEditor(alice.page)
      await measureKeystrokes(alice.page, bob.page, WARMUP)
      const r = await measureKeystrokes(alice.page, bob.page, SAMPLES)
      report('direct', r)
      expect(r.ms.length).toBe(SAMPLES)
      expect(Object.keys(r.via)).toEqual(['webrtc'])
    } catch (err) {
      throw new Error(`${(err as Error).message}\n${await diagnostics([alice, bob])}`)
    } finally {
      await Promise.all([alice.close(), bob.close()])
    }
  })

  test('f2. via the server relay (receiver without WebRTC)', async () => {
    const alice = await newUser(browser, { name: 'Alice' })
    const bob = await newUser(browser, { name: 'Bob', webrtc: false })
    try {
      const url = `${relayServer.url}/d/${testDocId('latency-relay')}`
      await Promise.all([openDoc(alice.page, url), openDoc(bob.page, url)])
      await Promise.all([waitServerState(alice.page, 'backed-up'), waitServerState(bob.page, 'backed-up')])
      await installLatencyProbes(alice.page, bob.page)
      await focusEditor(alice.page)
      await measureKeystrokes(alice.page, bob.page, WARMUP)
      await waitForText(bob.page, (t) => t.length >= WARMUP)
      const r = await measureKeystrokes(alice.page, bob.page, SAMPLES)
      report('viaServer', r)
      expect(r.ms.length).toBe(SAMPLES)
      expect(Object.keys(r.via)).toEqual(['server'])
    } catch (err) {
      throw new Error(`${(err as Error).message}\n${await diagnostics([alice, bob])}`)
    } finally {
      await Promise.all([alice.close(), bob.close()])
    }
  })
})
