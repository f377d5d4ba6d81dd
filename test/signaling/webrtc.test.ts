/**
 * Interop with stock y-webrtc over real WebRTC (@roamhq/wrtc, no STUN/TURN):
 * two peers in separate processes find each other through our /signal and
 * converge. Documents travel only over the WebRTC data channel (signaling
 * carries no document data, and BroadcastChannel does not cross processes).
 *
 * Stock y-webrtc connects reliably only when one peer hears the other's
 * announcement first: when both hear each other at once ("glare") the pair
 * can stay stuck (see src/session/glare.ts). The stock tests therefore start
 * the second peer once the first has announced itself; the last test makes
 * peers join at the same moment and shows the client's rule connecting them.
 */
import { readFileSync } from 'node:fs'
import { afterAll, beforeAll, describe, expect, test } from 'vitest'
import { mintToken } from '../../server/auth.ts'
import type { ServerProcess } from '../helpers/server.ts'
import { Client, here, startReporter, startSignalServer } from './helpers.ts'

interface Report {
  conns: number
  connected: number
  /** Connections the peer started as the offering side. */
  offered: number
  /** Connections dropped by the glare rule (MURMUR_GLARE_RULE=1). */
  dropped: number
  text: string
}

/** A stock y-webrtc peer child process and the reports it printed. */
function startPeer(signalUrl: string, room: string, text: string, password = '', glareRule = false) {
  const initial: Report = { conns: 0, connected: 0, offered: 0, dropped: 0, text: '' }
  return startReporter(here('webrtc-peer.ts'), [signalUrl, room, text, password], initial, { MURMUR_GLARE_RULE: glareRule ? '1' : '0' })
}

type Peer = ReturnType<typeof startPeer>

/** Resolves once `pred` holds for the latest reports of both peers; checked on every report, no sleeps. */
function both(a: Peer, b: Peer, pred: (ra: Report, rb: Report) => boolean, ms: number): Promise<[Report, Report]> {
  return new Promise((res, rej) => {
    const check = () => pred(a.latest(), b.latest()) && res([a.latest(), b.latest()])
    a.onReport(check)
    b.onReport(check)
    for (const p of [a, b]) p.child.once('exit', (code) => rej(new Error(`a peer exited with ${code}`)))
    setTimeout(() => rej(new Error(`peers did not converge within ${ms} ms`)), ms).unref()
    check()
  })
}

/** Resolves once `url`'s first publish to `room` (a peer announcing itself) has gone through the server. */
async function announced(url: string, room: string): Promise<() => void> {
  const observer = await Client.open(url)
  await observer.subscribe(room)
  return async () => {
    const m = await observer.next(30_000)
    expect(m).toMatchObject({ type: 'publish', topic: room })
    observer.close()
  }
}

/**
 * Two peers in `room` converge over WebRTC. `together`: both are spawned at
 * once (before the first await); otherwise the second starts after the first
 * has announced itself.
 */
async function converge(signalUrl: (room: string) => string, room: string, opts: { password?: string; together?: boolean; glareRule?: boolean } = {}) {
  const start = (text: string) => startPeer(signalUrl(room), room, text, opts.password, opts.glareRule)
  let a: Peer | undefined
  let b: Peer | undefined
  try {
    if (opts.together) {
      ;[a, b] = [start('alpha from A. '), start('beta from B. ')]
    } else {
      const heardA = await announced(signalUrl(room), room)
      a = start('alpha from A. ')
      await heardA()
      b = start('beta from B. ')
    }
    const [ra, rb] = await both(a, b, (ra, rb) => ra.connected > 0 && rb.connected > 0 && ra.text === rb.text && ra.text.includes('alpha from A.') && ra.text.includes('beta from B.'), 30_000)
    expect(ra.conns).toBeGreaterThan(0)
    expect(rb.conns).toBeGreaterThan(0)
    expect(ra.text).toBe(rb.text)
    return [ra, rb]
  } catch (err) {
    console.error(`peer A output:\n${a?.output()}\npeer B output:\n${b?.output()}`)
    throw err
  } finally {
    await Promise.all([a?.stop(), b?.stop()])
  }
}

/** Resolves once `count` TCP connections to 127.0.0.1:`port` are established (read from /proc/net/tcp, which needs no server cooperation). */
async function establishedTo(port: number, count: number, ms = 20_000): Promise<void> {
  const local = `0100007F:${port.toString(16).toUpperCase().padStart(4, '0')}`
  const deadline = Date.now() + ms
  for (;;) {
    const rows = readFileSync('/proc/net/tcp', 'utf8').split('\n').map((l) => l.trim().split(/\s+/))
    // Columns: sl, local_address, rem_address, st (01 = ESTABLISHED)
    if (rows.filter((r) => r[1] === local && r[3] === '01').length >= count) return
    if (Date.now() > deadline) throw new Error(`fewer than ${count} connections to port ${port} within ${ms} ms`)
    await new Promise((res) => setTimeout(res, 20))
  }
}

describe('stock y-webrtc over real WebRTC', () => {
  let open: ServerProcess
  let authed: ServerProcess
  const secret = 'interop-secret'
  beforeAll(async () => {
    ;[open, authed] = await Promise.all([startSignalServer(), startSignalServer(['--auth-secret', secret])])
  })
  afterAll(async () => {
    await Promise.all([open?.stop(), authed?.stop()])
  })

  test('two peers in separate processes connect and converge', async () => {
    await converge(() => `${open.wsUrl}/signal`, `interop-${process.pid}`)
  })

  test('with auth on (token in the URL) and an encrypted room (password)', async () => {
    await converge((room) => `${authed.wsUrl}/signal?token=${mintToken(secret, room, 'rw', 600)}`, `secret-${process.pid}`, { password: 'correct horse' })
  })

  test('peers joining at the same moment (glare) connect with the client\'s glare rule', async () => {
    // Both peers connect while the server is stopped (SIGSTOP: the kernel still
    // accepts the sockets), so on SIGCONT both subscribe before either's
    // announcement (encrypted, so sent a moment later) arrives: each hears the
    // other and starts offering. Repeated until that race happened; without
    // the rule such a pair stays stuck (the test times out).
    const server = await startSignalServer()
    try {
      let glare = false
      for (let round = 0; round < 12 && !glare; round++) {
        server.child.kill('SIGSTOP')
        // Spawns both peers before its first await.
        const converged = converge(() => `${server.wsUrl}/signal`, `glare-${process.pid}-${round}`, { password: 'pw', together: true, glareRule: true })
        await establishedTo(server.port, 2)
        server.child.kill('SIGCONT')
        const [ra, rb] = (await converged)!
        glare = ra.offered > 0 && rb.offered > 0
        if (glare) expect(ra.dropped + rb.dropped).toBeGreaterThan(0)
      }
      expect(glare, 'the peers never heard each other at the same moment in 12 rounds').toBe(true)
    } finally {
      server.child.kill('SIGCONT')
      await server.stop()
    }
  })
})
