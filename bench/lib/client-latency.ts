/**
 * Keystroke latency between two Chromium contexts typing into one document,
 * over both paths, measured with the e2e harness probes (keydown in the
 * sender → the change in the receiver's Y.Doc, and its next frame):
 *   - via server: the receiver has no RTCPeerConnection, so only the /sync
 *     relay can carry a keystroke;
 *   - direct: the same server is restarted on the same port and data with
 *     `--backup=false`, sender and a WebRTC receiver reload (the document
 *     comes from their IndexedDB), and only the WebRTC data channel carries it.
 * The receiver records which provider delivered every keystroke; a sample
 * run whose keystrokes came any other way is an error, not a number.
 */
import type { Browser } from 'playwright-core'
import {
  diagnostics,
  focusEditor,
  installLatencyProbes,
  measureKeystrokes,
  newUser,
  restartServer,
  startE2EServer,
  testDocId,
  timeUntilShown,
  waitDirectPeers,
  waitServerState,
  type KeystrokeLatency,
  type User,
} from '../../test/e2e/harness.ts'
import type { ServerProcess } from '../../test/helpers/server.ts'
import { pushDoc, type BenchDoc } from './client-docs.ts'
import { idbFlushed } from './client-open.ts'

/** Latency over both paths in one document. */
export interface LatencyResult {
  doc: BenchDoc
  viaServer: KeystrokeLatency
  direct: KeystrokeLatency
}

/** Options of `measureLatency`. */
export interface LatencyOptions {
  /** Measured keystrokes per path. */
  samples: number
  /** Keystrokes typed (and discarded) before measuring. */
  warmup: number
}

function expectOnly(r: KeystrokeLatency, path: string, n: number, what: string): void {
  const paths = Object.keys(r.via)
  if (r.ms.length !== n || paths.length !== 1 || paths[0] !== path) throw new Error(`${what}: expected ${n} keystrokes delivered by ${path}, got ${r.ms.length} by ${JSON.stringify(r.via)}`)
}

async function typeAndMeasure(sender: User, receiver: User, opts: LatencyOptions): Promise<KeystrokeLatency> {
  await installLatencyProbes(sender.page, receiver.page)
  // Both views at the end, where the typing happens: the receiver renders every change.
  await focusEditor(receiver.page)
  await focusEditor(sender.page)
  await measureKeystrokes(sender.page, receiver.page, opts.warmup)
  return measureKeystrokes(sender.page, receiver.page, opts.samples)
}

/** Opens (or reloads) `user`'s page and waits until it shows `length` characters starting with `firstLine`. */
async function shown(user: User, length: number, firstLine: string, go: () => Promise<unknown>): Promise<void> {
  await go()
  await timeUntilShown(user.page, length, firstLine, Date.now(), 60_000)
}

/** Measures keystroke latency via the server and direct in a document holding `doc` (null: an empty document). */
export async function measureLatency(browser: Browser, doc: BenchDoc | null, opts: LatencyOptions): Promise<LatencyResult> {
  const empty: BenchDoc = { edits: 0, text: '', firstLine: '', update: new Uint8Array() }
  const d = doc ?? empty
  let server: ServerProcess = await startE2EServer()
  const users: User[] = []
  try {
    const docId = testDocId(`latency-${d.edits}`)
    if (doc) await pushDoc(server.wsUrl, docId, doc)
    const url = `${server.url}/d/${docId}`
    const alice = await newUser(browser, { name: 'Alice' })
    const bob = await newUser(browser, { name: 'Bob', webrtc: false })
    const carol = await newUser(browser, { name: 'Carol' })
    users.push(alice, bob, carol)
    for (const u of users) await shown(u, d.text.length, d.firstLine, () => u.page.goto(url))
    await Promise.all([waitServerState(alice.page, 'backed-up'), waitServerState(bob.page, 'backed-up')])

    const viaServer = await typeAndMeasure(alice, bob, opts)
    expectOnly(viaServer, 'server', opts.samples, 'via server')
    await bob.close()
    users.splice(users.indexOf(bob), 1)

    // Direct: nothing may be relayed, so the server comes back without backup; both reload from IndexedDB.
    const typed = d.text.length + opts.warmup + opts.samples
    await carol.page.waitForFunction((n) => (window as any).__murmur.session.text.length === n, typed, { timeout: 30_000 })
    await Promise.all([idbFlushed(alice.page), idbFlushed(carol.page)])
    await server.stop()
    server = await restartServer(server, ['--backup=false'])
    for (const u of [alice, carol]) await shown(u, typed, d.firstLine, () => u.page.reload())
    await Promise.all([waitDirectPeers(alice.page), waitDirectPeers(carol.page), waitServerState(alice.page, 'off'), waitServerState(carol.page, 'off')])
    const direct = await typeAndMeasure(alice, carol, opts)
    expectOnly(direct, 'webrtc', opts.samples, 'direct')
    return { doc: d, viaServer, direct }
  } catch (err) {
    throw new Error(`${(err as Error).message}\n${await diagnostics(users)}`)
  } finally {
    for (const u of users) await u.close().catch(() => {})
    await server.stop()
  }
}
