/**
 * The hybrid data path with real transports: a real server process, murmur
 * clients (`SessionCore`) in child processes with real WebRTC (@roamhq/wrtc,
 * `iceServers: []`). With every peer reached directly the server carries
 * backup only (nothing relayed, about one copy of each keystroke uploaded);
 * a peer without WebRTC switches its link to relay and co-edits live.
 */
import { afterAll, beforeAll, describe, expect, test } from 'vitest'
import { startServer, type ServerProcess } from '../helpers/server.ts'
import { here, metricSample, startReporter } from './helpers.ts'

interface Report {
  peers: number
  signaling: string
  link: string
  backedUp: boolean
  text: string
  mode: string | null
  vias: string[]
  rtcBytesIn: number
  uploads: number
  peerId: string | null
}

const initial: Report = { peers: 0, signaling: '', link: '', backedUp: false, text: '', mode: null, vias: [], rtcBytesIn: 0, uploads: 0, peerId: null }
const peer = (server: ServerProcess, doc: string, text: string, env: Record<string, string> = {}) =>
  startReporter<Report>(here('session-peer.ts'), [server.url, doc, '-', text], initial, env)
type Peer = ReturnType<typeof peer>
const keys = (p: Peer, n: number, chars: string, paceMs = 0) => p.child.stdin!.write(`type ${n} ${chars} ${paceMs}\n`)

async function syncMetrics(server: ServerProcess) {
  const get = async (name: string, labels: Record<string, string>) => (await metricSample(server, name, labels)) ?? 0
  return {
    in: await get('murmur_bytes_total', { endpoint: 'sync', direction: 'in' }),
    out: await get('murmur_bytes_total', { endpoint: 'sync', direction: 'out' }),
    relayed: await get('murmur_sync_update_bytes_total', { kind: 'relayed' }),
    uploaded: await get('murmur_sync_update_bytes_total', { kind: 'uploaded' }),
  }
}

describe('hybrid data path (real server, real WebRTC)', () => {
  let server: ServerProcess
  const peers: Peer[] = []
  beforeAll(async () => {
    server = await startServer()
  })
  afterAll(async () => {
    await Promise.all(peers.map((p) => p.stop()))
    await server?.stop()
  })

  test('direct peers: the server relays nothing and receives each keystroke about once; a peer without WebRTC gets the relay', async () => {
    const doc = `hybrid-${process.pid}`
    const starts = ['a. ', 'b. ', 'c. ']
    const mesh = starts.map((t) => peer(server, doc, t))
    peers.push(...mesh)
    const all = (r: Report, n: number) => r.peers === n && r.mode === 'backup' && starts.every((t) => r.text.includes(t)) && r.backedUp
    await Promise.all(mesh.map((p, i) => p.until((r) => all(r, 2), `peer ${i} paired with both, backup-only, backed up`)))
    expect(await metricSample(server, 'murmur_sync_clients', { mode: 'backup' })).toBe(3)
    expect(await metricSample(server, 'murmur_sync_reported_peers', { via: 'direct' })).toBe(6)

    const before = await syncMetrics(server)
    const rtcBefore = mesh.map((p) => p.latest().rtcBytesIn)
    const perPeer = 30
    // Typed at a person's pace (a keystroke every 25 ms), so state queries run while everyone types.
    mesh.forEach((p, i) => keys(p, perPeer, 'abc'[i], 25))
    const done = (r: Report) => ['a', 'b', 'c'].every((c) => r.text.split(c).length - 1 >= perPeer + 1) && r.backedUp
    await Promise.all(mesh.map((p, i) => p.until(done, `peer ${i} has every keystroke, backed up`)))
    const after = await syncMetrics(server)
    const keystrokes = perPeer * mesh.length
    const per = (k: keyof typeof before) => (after[k] - before[k]) / keystrokes
    // Each peer got the others' keystrokes over WebRTC once (from their authors), not again from every other peer.
    const rtcPerRemote = Math.max(...mesh.map((p, i) => (p.latest().rtcBytesIn - rtcBefore[i]) / (keystrokes - perPeer)))
    console.log(`[hybrid] WebRTC bytes in per remote keystroke, worst peer: ${rtcPerRemote.toFixed(1)} B`)
    // One copy of a one-character update is ~21 B on the data channel; each extra copy adds as much again.
    expect(rtcPerRemote).toBeLessThan(36)
    console.log(`[hybrid] per keystroke, 3 direct peers: server in ${per('in').toFixed(1)} B, out ${per('out').toFixed(1)} B, uploaded ${per('uploaded').toFixed(1)} B, relayed ${per('relayed').toFixed(1)} B`)
    // Nothing live went through the server: the mesh carried it. No peer uploaded another's keystroke.
    expect(after.relayed - before.relayed).toBe(0)
    // (A peer uploads another's keystroke only if the server still lacks it a reconcile interval
    // later: rare, on a loaded machine, not once per query while everyone types.)
    expect(mesh.reduce((n, p) => n + p.latest().uploads, 0)).toBeLessThanOrEqual(2)
    // Out: acks and catch-up only, far below one relayed copy of a keystroke update (~25 B each, ×2 receivers).
    expect(per('out')).toBeLessThan(per('uploaded'))
    // In: each keystroke once (its author's upload) plus queries and awareness, not once per peer that saw it.
    expect(per('in')).toBeLessThan(3 * per('uploaded') + 100)

    // A peer without WebRTC: its link relays, and it co-edits live with the mesh through the server.
    const relayed = peer(server, doc, 'r. ', { MURMUR_PEER_WEBRTC: '0' })
    peers.push(relayed)
    await relayed.until((r) => r.mode === 'relay' && r.text.includes('a. ') && r.backedUp, 'relayed peer synced, relay mode')
    await mesh[0].until((r) => r.text.includes('r. ') && r.vias.includes('server'), 'mesh peer sees the relayed peer via the server')
    keys(mesh[1], 1, 'Q')
    await relayed.until((r) => r.text.includes('Q'), 'relayed peer sees a mesh keystroke live')
    keys(relayed, 1, 'Z')
    await Promise.all(mesh.map((p, i) => p.until((r) => r.text.includes('Z'), `mesh peer ${i} sees the relayed keystroke`)))
    expect(await metricSample(server, 'murmur_sync_clients', { mode: 'relay' })).toBe(1)
    expect((await syncMetrics(server)).relayed).toBeGreaterThan(after.relayed)
  })

  // Two ways a mesh splits: pairing across always fails (ICE), or every peer is at its connection
  // cap (y-webrtc then ignores announces, so the groups never even try). Either way each group
  // must list the other and get its keystrokes live, through the relay of one side.
  test.each(['ICE fails across', 'connection cap of 1'])('split mesh (%s): groups A–B and C–D list each other and co-edit live through the relay of one side', { timeout: 120_000 }, async (how) => {
    const own = await startServer()
    const doc = `split-${how.length}-${process.pid}`
    const texts = ['a. ', 'b. ', 'c. ', 'd. ']
    const capped = how.startsWith('connection cap')
    const start = (i: number) => peer(own, doc, texts[i], capped ? { MURMUR_PEER_MAX_CONNS: '1' } : {})
    const four: Peer[] = []
    try {
      if (capped) {
        // A and B pair first and are at their cap when C and D arrive; C and D then pair with each other.
        four.push(start(0), start(1))
        await Promise.all(four.map((p, i) => p.until((r) => r.peers === 1, `peer ${i} paired with its partner`)))
        four.push(start(2))
        await four[2].until((r) => r.peerId !== null, 'peer 2 has a y-webrtc id')
        four.push(start(3))
      } else {
        four.push(...[0, 1, 2, 3].map(start))
        const ids = await Promise.all(four.map((p, i) => p.until((r) => r.peerId !== null, `peer ${i} has a y-webrtc id`).then((r) => r.peerId!)))
        const group = (i: number) => (i < 2 ? 0 : 1)
        // Every peer drops the WebRTC offers and answers of the other group: announces still arrive.
        four.forEach((p, i) => ids.forEach((id, j) => group(i) !== group(j) && p.child.stdin!.write(`block ${id}\n`)))
      }
      const all = (r: Report) => texts.every((t) => r.text.includes(t))
      // Each reaches its partner directly and lists the other two through the server.
      await Promise.all(four.map((p, i) => p.until((r) => r.peers === 1 && r.vias.length === 3 && r.vias.filter((v) => v === 'server').length === 2 && all(r), `peer ${i} lists its partner direct and the other group via the server`, 90_000)))
      const modes = four.map((p) => p.latest().mode)
      console.log(`[split, ${how}] link modes ${modes.join(', ')}`)
      expect(modes).toContain('relay')
      const before = await syncMetrics(own)
      keys(four[0], 5, 'X', 20)
      keys(four[3], 5, 'Y', 20)
      const both = (r: Report) => r.text.split('X').length - 1 === 5 && r.text.split('Y').length - 1 === 5
      await Promise.all(four.map((p, i) => p.until(both, `peer ${i} has A's and D's keystrokes`)))
      // They crossed live: the server forwarded them (a split that relays nothing only converges by reconciliation).
      expect((await syncMetrics(own)).relayed).toBeGreaterThan(before.relayed)
      for (const p of four) expect(p.latest().vias.length).toBe(3)
    } finally {
      await Promise.all(four.map((p) => p.stop()))
      await own.stop()
    }
  })

  test('partial mesh: in a chain A–B–C (A and C never pair) B passes edits on, and they keep flowing with the server gone', { timeout: 120_000 }, async () => {
    const own = await startServer()
    const doc = `chain-${process.pid}`
    const chain = ['a. ', 'b. ', 'c. '].map((t) => peer(own, doc, t))
    try {
      const [a, b, c] = chain
      const ids = await Promise.all(chain.map((p, i) => p.until((r) => r.peerId !== null, `peer ${i} has a y-webrtc id`).then((r) => r.peerId!)))
      // A and C drop each other's signaling and any connection they already have.
      a.child.stdin!.write(`refuse ${ids[2]}\n`)
      c.child.stdin!.write(`refuse ${ids[0]}\n`)
      const all = (r: Report) => ['a. ', 'b. ', 'c. '].every((t) => r.text.includes(t))
      await b.until((r) => r.peers === 2 && all(r), 'B linked to A and C')
      // A and C each reach one peer directly and know the other (through B, or through the server while
      // their failed pairing keeps their links relaying).
      for (const [p, name] of [[a, 'A'], [c, 'C']] as const) await p.until((r) => r.peers === 1 && all(r) && r.vias.length === 2, `${name} linked to B only, sees the other`)
      // Without the server (nor signaling, nor reconciliation) only the mesh can carry edits from A to C.
      await own.stop('SIGKILL')
      keys(a, 5, 'X')
      keys(c, 5, 'Y')
      const both = (r: Report) => r.text.split('X').length - 1 === 5 && r.text.split('Y').length - 1 === 5
      await Promise.all(chain.map((p, i) => p.until(both, `peer ${i} has A's and C's keystrokes`)))
    } finally {
      await Promise.all(chain.map((p) => p.stop()))
      if (own.child.exitCode === null && own.child.signalCode === null) await own.stop()
    }
  })
})
