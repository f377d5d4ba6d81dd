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
  launchBrowser,
  newUser,
  openDoc,
  recordTimings,
  startE2EServer,
  stats,
  testDocId,
  waitDirectPeers,
  waitForText,
  waitServerState,
  type User,
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

/** Installs the probes: keydown times in the sender, arrival times and origins in the receiver. */
async function installProbes(sender: User, receiver: User): Promise<void> {
  await sender.page.evaluate(() => {
    const w = window as any
    w.__e2eKeydowns = []
    window.addEventListener('keydown', (e) => w.__e2eKeydowns.push(performance.timeOrigin + e.timeStamp), { capture: true })
  })
  await receiver.page.evaluate(() => {
    const w = window as any
    const s = w.__murmur.session
    w.__e2eArrivals = []
    s.doc.on('update', (_u: Uint8Array, origin: unknown) => {
      const via = origin === s.webrtc?.room ? 'webrtc' : origin === s.websocket ? 'server' : origin === s.idb ? 'idb' : 'other'
      w.__e2eArrivals.push({ t: performance.timeOrigin + performance.now(), len: s.text.length, via })
    })
  })
}

/** Types `n` characters one at a time, each after the previous one arrived; returns per-keystroke latencies (ms) and the paths used. */
async function measure(sender: User, receiver: User, n: number): Promise<{ ms: number[]; via: Record<string, number> }> {
  const base = await receiver.page.evaluate(() => (window as any).__murmur.session.text.length as number)
  const keysBefore = await sender.page.evaluate(() => (window as any).__e2eKeydowns.length as number)
  const arrivalsBefore = await receiver.page.evaluate(() => (window as any).__e2eArrivals.length as number)
  const chars = 'the quick brown fox jumps over the lazy dog '
  for (let i = 0; i < n; i++) {
    await sender.page.keyboard.press(chars[i % chars.length] === ' ' ? 'Space' : chars[i % chars.length])
    await receiver.page.waitForFunction((len) => (window as any).__murmur.session.text.length >= len, base + i + 1, { polling: 'raf', timeout: 15_000 })
  }
  const keydowns = (await sender.page.evaluate(() => (window as any).__e2eKeydowns as number[])).slice(keysBefore)
  const arrivals = (await receiver.page.evaluate(() => (window as any).__e2eArrivals as { t: number; len: number; via: string }[])).slice(arrivalsBefore)
  const ms: number[] = []
  const via: Record<string, number> = {}
  for (let i = 0; i < n; i++) {
    const a = arrivals.find((x) => x.len >= base + i + 1)
    if (!a || keydowns[i] === undefined) continue
    ms.push(a.t - keydowns[i])
    via[a.via] = (via[a.via] ?? 0) + 1
  }
  return { ms, via }
}

function report(label: string, r: { ms: number[]; via: Record<string, number> }) {
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
      await installProbes(alice, bob)
      await focusEditor(alice.page)
      await measure(alice, bob, WARMUP)
      const r = await measure(alice, bob, SAMPLES)
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
      await installProbes(alice, bob)
      await focusEditor(alice.page)
      await measure(alice, bob, WARMUP)
      await waitForText(bob.page, (t) => t.length >= WARMUP)
      const r = await measure(alice, bob, SAMPLES)
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
