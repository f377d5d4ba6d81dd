/**
 * Interop with stock y-webrtc over real WebRTC (@roamhq/wrtc, no STUN/TURN):
 * two peers in separate processes find each other through our /signal and
 * converge. Documents travel only over the WebRTC data channel (signaling
 * carries no document data, and BroadcastChannel does not cross processes).
 */
import { spawn, type ChildProcess } from 'node:child_process'
import { createInterface } from 'node:readline'
import { afterAll, beforeAll, describe, expect, test } from 'vitest'
import { mintToken } from '../../server/auth.ts'
import type { ServerProcess } from '../helpers/server.ts'
import { here, startSignalServer } from './helpers.ts'

interface Report {
  conns: number
  connected: number
  text: string
}

/** A peer child process and the reports it printed. */
function startPeer(signalUrl: string, room: string, text: string, password = '') {
  const child: ChildProcess = spawn(process.execPath, ['--import', 'tsx', here('webrtc-peer.ts'), signalUrl, room, text, password], { stdio: ['pipe', 'pipe', 'pipe'] })
  let output = ''
  let latest: Report = { conns: 0, connected: 0, text: '' }
  const listeners = new Set<() => void>()
  createInterface({ input: child.stdout! }).on('line', (line) => {
    output += line + '\n'
    try {
      latest = JSON.parse(line)
    } catch {
      return
    }
    for (const l of listeners) l()
  })
  child.stderr!.on('data', (d) => (output += d))
  return {
    child,
    output: () => output,
    latest: () => latest,
    /** Calls `fn` after every report. */
    onReport: (fn: () => void) => listeners.add(fn),
    stop: () => new Promise<void>((res) => (child.exitCode !== null ? res() : (child.once('exit', () => res()), child.kill('SIGTERM')))),
  }
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

async function converge(signalUrl: (room: string) => string, room: string, password = '') {
  const a = startPeer(signalUrl(room), room, 'alpha from A. ', password)
  const b = startPeer(signalUrl(room), room, 'beta from B. ', password)
  try {
    const [ra, rb] = await both(a, b, (ra, rb) => ra.connected > 0 && rb.connected > 0 && ra.text === rb.text && ra.text.includes('alpha from A.') && ra.text.includes('beta from B.'), 30_000)
    expect(ra.conns).toBeGreaterThan(0)
    expect(rb.conns).toBeGreaterThan(0)
    expect(ra.text).toBe(rb.text)
  } catch (err) {
    console.error(`peer A output:\n${a.output()}\npeer B output:\n${b.output()}`)
    throw err
  } finally {
    await Promise.all([a.stop(), b.stop()])
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
    await converge((room) => `${authed.wsUrl}/signal?token=${mintToken(secret, room, 'rw', 600)}`, `secret-${process.pid}`, 'correct horse')
  })
})
