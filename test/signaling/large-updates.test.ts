/**
 * Big updates over the WebRTC mesh with no backup server (`--backup=false`,
 * so WebRTC is the only path): murmur clients (`SessionCore`) in child
 * processes with real WebRTC (@roamhq/wrtc, `iceServers: []`). y-webrtc
 * sends each message as one data channel message, and one above the
 * channel's maximum size (256 KiB here) closes the connection; with
 * `session/mesh-parts.ts` such messages travel in parts.
 */
import { afterAll, beforeAll, describe, expect, test } from 'vitest'
import { startServer, type ServerProcess } from '../helpers/server.ts'
import { here, startReporter } from './helpers.ts'

interface Report {
  peers: number
  closes: number
  length: number
  hash: number
  storms: number
}

const initial: Report = { peers: 0, closes: 0, length: -1, hash: 0, storms: 0 }
const peer = (server: ServerProcess, doc: string, chars: number, seed: number, env: Record<string, string> = {}) =>
  startReporter<Report>(here('bulk-peer.ts'), [server.url, doc, String(chars), String(seed)], initial, env)
type Peer = ReturnType<typeof peer>
const OLD = { MURMUR_PEER_PARTS: '0' }
/** How long to wait for one step: generous, the shared test machine is sometimes very loaded (never a timing assertion). */
const WAIT = 90_000

/** Resolves once `a` and `b` report the same text (length and hash) and `pred` holds for both; rejects as soon as more than `closesAllowed` connections closed in all. */
function untilSame(a: Peer, b: Peer, what: string, pred: (r: Report) => boolean = () => true, ms = WAIT, closesAllowed = 0): Promise<Report> {
  return new Promise((res, rej) => {
    const fail = (why: string) => (clearTimeout(timer), rej(new Error(`${why} waiting for ${what}; latest ${JSON.stringify([a.latest(), b.latest()])}; output:\n${a.output()}\n${b.output()}`)))
    const check = () => {
      const [x, y] = [a.latest(), b.latest()]
      if (x.closes + y.closes > closesAllowed) fail('a WebRTC connection closed')
      else if (x.length === y.length && x.hash === y.hash && pred(x) && pred(y)) (clearTimeout(timer), res(x))
    }
    const timer = setTimeout(() => fail('timed out'), ms)
    a.onReport(check)
    b.onReport(check)
    check()
  })
}

describe('big updates over the WebRTC mesh, no backup server', () => {
  let server: ServerProcess
  const peers: Peer[] = []
  const start = (...args: Parameters<typeof peer> extends [ServerProcess, ...infer R] ? R : never) => {
    const p = peer(server, ...args)
    peers.push(p)
    return p
  }
  beforeAll(async () => {
    server = await startServer({ args: ['--backup=false'] })
  })
  afterAll(async () => {
    await Promise.all(peers.map((p) => p.stop()))
    await server?.stop()
  })

  test('as before (messages sent whole): a 1 MB paste closes the connection, and pairing again on the 1 MB document closes it again', async () => {
    const doc = `large-old-${process.pid}`
    const a = start(doc, 0, 1, OLD)
    const b = start(doc, 0, 2, OLD)
    await Promise.all([a.until((r) => r.peers === 1, 'A paired', WAIT), b.until((r) => r.peers === 1, 'B paired', WAIT)])
    a.child.stdin!.write('paste 1000000 7\n')
    // y-webrtc re-announces after a close, the pair connects again and A's sync step 2 (the whole 1 MB) closes it again.
    await b.until((r) => r.closes >= 2, 'the connection closed twice', WAIT)
    expect(a.latest().length).toBe(1_000_000)
    expect(b.latest().length).toBe(0)
    await Promise.all([a.stop(), b.stop()])
  }, 240_000)

  test('pairing on two 600 KB documents, a 1 MB paste and a storm of edits with 300 KB pastes all sync over WebRTC; no connection closes once paired', async () => {
    const doc = `large-${process.pid}`
    const a = start(doc, 600_000, 1)
    const b = start(doc, 600_000, 2)
    // Both sync step 2 answers are 600 KB; one of them is often sent before its side's simple-peer
    // says it connected (see mesh-parts.ts). No connection may close, from pairing on.
    const paired = await untilSame(a, b, 'both 600 KB documents on both', (r) => r.length === 1_200_000 && r.peers === 1)
    a.child.stdin!.write('paste 1000000 3\n')
    await untilSame(a, b, 'the 1 MB paste on both', (r) => r.length === 2_200_000)
    a.child.stdin!.write('storm 300 4\n')
    b.child.stdin!.write('storm 300 5\n')
    const done = await untilSame(a, b, 'both storms done and converged', (r) => r.storms === 1)
    expect(paired.peers).toBe(1)
    expect(done.length).toBeGreaterThan(2_200_000)
    expect(a.latest().closes + b.latest().closes).toBe(0)
    expect([a.latest().peers, b.latest().peers]).toEqual([1, 1])
    await Promise.all([a.stop(), b.stop()])
  }, 300_000)

  test('an older client (messages sent whole) and a new one still sync small edits both ways', async () => {
    const doc = `large-mixed-${process.pid}`
    const a = start(doc, 5_000, 6)
    const b = start(doc, 5_000, 7, OLD)
    await untilSame(a, b, 'both small documents on both', (r) => r.length === 10_000)
    a.child.stdin!.write('paste 3000 8\n')
    await untilSame(a, b, 'A’s edit on both', (r) => r.length === 13_000)
    b.child.stdin!.write('paste 3000 9\n')
    await untilSame(a, b, 'B’s edit on both', (r) => r.length === 16_000)
    expect([a.latest().closes, b.latest().closes]).toEqual([0, 0])
  }, 240_000)
})
