/**
 * The hybrid data path on ciphertext (`/log`, docs/protocol.md) with real
 * transports: a real server process, murmur clients (`SessionCore`) of one
 * private document in child processes with real WebRTC (@roamhq/wrtc,
 * `iceServers: []`). With every peer reached directly the server relays no
 * entry and stores each keystroke about once; a peer without WebRTC relays
 * and co-edits live; a backup-only peer nobody reaches directly (a split
 * mesh) converges with the others through the log.
 */
import { afterAll, beforeAll, describe, expect, test } from 'vitest'
import { newLinkKey } from '../../src/private/key.ts'
import { startServer, type ServerProcess } from '../helpers/server.ts'
import { here, metricSample, startReporter } from './helpers.ts'

interface Report {
  peers: number
  link: string
  backedUp: boolean
  text: string
  mode: string | null
  vias: string[]
  uploads: number
  pulls: number
}

const initial: Report = { peers: 0, link: '', backedUp: false, text: '', mode: null, vias: [], uploads: 0, pulls: 0 }
const key = newLinkKey()
const peer = (server: ServerProcess, doc: string, text: string, env: Record<string, string> = {}) =>
  startReporter<Report>(here('session-peer.ts'), [server.url, doc, '-', text], initial, { MURMUR_PEER_KEY: key, ...env })
type Peer = ReturnType<typeof peer>
const keys = (p: Peer, n: number, chars: string, paceMs = 0) => p.child.stdin!.write(`type ${n} ${chars} ${paceMs}\n`)

async function logMetrics(server: ServerProcess) {
  const get = async (name: string, labels: Record<string, string>) => (await metricSample(server, name, labels)) ?? 0
  return {
    in: await get('murmur_bytes_total', { endpoint: 'log', direction: 'in' }),
    out: await get('murmur_bytes_total', { endpoint: 'log', direction: 'out' }),
    appended: await get('murmur_log_bytes_total', { kind: 'appended' }),
    relayed: await get('murmur_log_bytes_total', { kind: 'relayed' }),
  }
}

describe('hybrid data path on a private document (real server, real WebRTC)', () => {
  let server: ServerProcess
  const peers: Peer[] = []
  beforeAll(async () => {
    server = await startServer()
  })
  afterAll(async () => {
    await Promise.all(peers.map((p) => p.stop()))
    await server?.stop()
  })

  test('direct peers: the server relays no entry and stores each keystroke about once; a peer without WebRTC gets the relay; a split-off backup-only peer converges through the log', async () => {
    const doc = `private-hybrid-${process.pid}`
    const starts = ['a. ', 'b. ', 'c. ']
    const mesh = starts.map((t) => peer(server, doc, t))
    peers.push(...mesh)
    const all = (r: Report, n: number) => r.peers === n && r.mode === 'backup' && starts.every((t) => r.text.includes(t)) && r.backedUp
    await Promise.all(mesh.map((p, i) => p.until((r) => all(r, 2), `peer ${i} paired with both, backup-only, backed up`)))

    const before = await logMetrics(server)
    const perPeer = 30
    // Typed at a person's pace (a keystroke every 25 ms), so state queries run while everyone types.
    mesh.forEach((p, i) => keys(p, perPeer, 'abc'[i], 25))
    const done = (r: Report) => ['a', 'b', 'c'].every((c) => r.text.split(c).length - 1 >= perPeer + 1) && r.backedUp
    await Promise.all(mesh.map((p, i) => p.until(done, `peer ${i} has every keystroke, backed up`)))
    const after = await logMetrics(server)
    const keystrokes = perPeer * mesh.length
    const per = (k: keyof typeof before) => (after[k] - before[k]) / keystrokes
    console.log(`[private hybrid] per keystroke, 3 direct peers: server in ${per('in').toFixed(1)} B, out ${per('out').toFixed(1)} B, appended ${per('appended').toFixed(1)} B, relayed ${per('relayed').toFixed(1)} B; peer uploads ${mesh.map((p) => p.latest().uploads)}, pulls ${mesh.map((p) => p.latest().pulls)}`)
    // Nothing live went through the server: the mesh carried it.
    expect(after.relayed - before.relayed).toBe(0)
    // Each keystroke stored about once (one sealed entry is ~60 B): its author's append, not one per peer that saw it.
    expect(per('appended')).toBeLessThan(1.5 * 64)
    expect(mesh.reduce((n, p) => n + p.latest().uploads, 0)).toBeLessThanOrEqual(3)
    // Out: acks and tag lists (~10 B per entry per peer), well below relaying (one ~50 B copy per receiver, here 2).
    expect(per('out')).toBeLessThan(per('appended'))

    // A peer without WebRTC: its link relays, and it co-edits live with the mesh through the server.
    const relayed = peer(server, doc, 'r. ', { MURMUR_PEER_WEBRTC: '0' })
    peers.push(relayed)
    await relayed.until((r) => r.mode === 'relay' && r.text.includes('a. ') && r.backedUp, 'relayed peer synced, relay mode')
    await mesh[0]!.until((r) => r.text.includes('r. ') && r.vias.includes('server'), 'mesh peer sees the relayed peer via the server')
    keys(mesh[1]!, 1, 'Q')
    await relayed.until((r) => r.text.includes('Q'), 'relayed peer sees a mesh keystroke live')
    keys(relayed, 1, 'Z')
    await Promise.all(mesh.map((p, i) => p.until((r) => r.text.includes('Z'), `mesh peer ${i} sees the relayed keystroke`)))
    expect((await logMetrics(server)).relayed).toBeGreaterThan(after.relayed)
    await relayed.stop()

    // A backup-only peer nobody reaches directly (WebRTC off, link forced backup-only): a split mesh.
    // Nothing is relayed to or from it; its keystrokes reach the mesh, and theirs reach it, through the log.
    const island = peer(server, doc, 'i. ', { MURMUR_PEER_WEBRTC: '0', MURMUR_PEER_LINK: 'backup' })
    peers.push(island)
    await island.until((r) => r.mode === 'backup' && r.text.includes('Z') && r.backedUp, 'island synced from the log')
    const relayedBefore = (await logMetrics(server)).relayed
    keys(island, 1, 'I')
    keys(mesh[2]!, 1, 'M')
    await Promise.all(mesh.map((p, i) => p.until((r) => r.text.includes('i. ') && r.text.includes('I'), `mesh peer ${i} gets the island's keystroke from the log`)))
    await island.until((r) => r.text.includes('M'), "island gets the mesh's keystroke from the log")
    expect((await logMetrics(server)).relayed).toBe(relayedBefore)
    // No edit since: every peer holds the same text.
    const texts = [...mesh, island].map((p) => p.latest().text)
    expect(new Set(texts).size, JSON.stringify(texts)).toBe(1)
  })
})
