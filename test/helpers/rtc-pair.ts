/**
 * Two simple-peer connections (the library y-webrtc uses) joined by a real
 * WebRTC data channel in this process (@roamhq/wrtc, `iceServers: []`,
 * signals handed over directly), each wrapped like a y-webrtc
 * `WebrtcConn` (`peer`, `connected`, `closed`) with a stand-in for
 * y-webrtc's own data listener that records what it would have read.
 */
import { createRequire } from 'node:module'
// @ts-expect-error no types for the bundled build y-webrtc imports
import Peer from 'simple-peer/simplepeer.min.js'

const wrtc = createRequire(import.meta.url)('@roamhq/wrtc')

/** A y-webrtc-like connection for tests. */
export interface TestConn {
  peer: {
    send(data: Uint8Array): void
    on(event: string, fn: (...args: any[]) => void): void
    destroy(): void
  }
  connected: boolean
  closed: boolean
  /** Messages y-webrtc's data listener would have received. */
  seenByYWebrtc: Uint8Array[]
}

function conn(initiator: boolean): TestConn {
  const peer = new Peer({ initiator, wrtc, config: { iceServers: [] } })
  const c: TestConn = { peer, connected: false, closed: false, seenByYWebrtc: [] }
  peer.on('data', (d: Uint8Array) => c.seenByYWebrtc.push(new Uint8Array(d)))
  peer.on('connect', () => (c.connected = true))
  peer.on('close', () => ((c.connected = false), (c.closed = true)))
  peer.on('error', () => {})
  return c
}

/** Two connections that connect on their own (adopt them in the same turn); `connect()` resolves once both are open. */
export function rtcPair(): { a: TestConn; b: TestConn; connect(): Promise<void>; close(): void } {
  const a = conn(true)
  const b = conn(false)
  a.peer.on('signal', (s: unknown) => (b.peer as any).signal(s))
  b.peer.on('signal', (s: unknown) => (a.peer as any).signal(s))
  const connected = new Promise<void>((res) => {
    let n = 0
    const one = () => ++n === 2 && res()
    a.peer.on('connect', one)
    b.peer.on('connect', one)
  })
  return {
    a,
    b,
    connect: () => connected,
    close() {
      a.peer.destroy()
      b.peer.destroy()
    },
  }
}
