/**
 * Versions travel peer to peer, with no backup server at all (issue 11):
 * real server process for signaling only (`--backup=false`), murmur clients
 * (`SessionCore` + `openHistory`) in child processes with real WebRTC
 * (@roamhq/wrtc, `iceServers: []`). The history rides the document's own
 * data channels: one signaling topic and one RTCPeerConnection per pair.
 */
import { afterAll, beforeAll, describe, expect, test } from 'vitest'
import { startServer, type ServerProcess } from '../helpers/server.ts'
import { metricSample, startReporter } from '../signaling/helpers.ts'
import { untilDoc, yClient } from '../helpers/clients.ts'
import { HistoryLog } from '../../src/history/log.ts'
import { historyDocId, newDocId } from '../../src/protocol/ids.ts'
import { newLinkKey } from '../../src/private/key.ts'

interface Report {
  peers: number
  conns: number
  versions: string[]
  names: string[]
  lengths: number[]
  meshReceived: number
  backup: string | null
  covered: boolean
}

const initial: Report = { peers: 0, conns: 0, versions: [], names: [], lengths: [], meshReceived: 0, backup: null, covered: false }
const script = new URL('./history-peer.ts', import.meta.url).pathname
const peer = (server: ServerProcess, doc: string, text: string, env: Record<string, string> = {}) => startReporter<Report>(script, [server.url, doc, '-', text], initial, env)
type Peer = ReturnType<typeof peer>
const save = (p: Peer, name: string, chars?: number) => p.child.stdin!.write(`save ${name}${chars ? ` ${chars}` : ''}\n`)
const add = (p: Peer, name: string, chars: number) => p.child.stdin!.write(`add ${name} ${chars}\n`)

describe('history over the WebRTC mesh, no backup server', () => {
  let server: ServerProcess
  const peers: Peer[] = []
  beforeAll(async () => {
    server = await startServer({ args: ['--backup=false'] })
  })
  afterAll(async () => {
    await Promise.all(peers.map((p) => p.stop()))
    await server?.stop()
  })

  test('two peers see each other’s versions (a 300 KB one too); a device that only ever met a peer gets the whole history', async () => {
    const doc = `hist-mesh-${process.pid}`
    const a = peer(server, doc, 'A. ')
    const b = peer(server, doc, 'B. ')
    peers.push(a, b)
    await Promise.all([a.until((r) => r.peers === 1, 'A paired'), b.until((r) => r.peers === 1, 'B paired')])
    expect(a.latest().backup).toBeNull()

    save(a, 'from-A')
    await b.until((r) => r.names.includes('from-A'), 'B has A’s version')
    // A version far above a data channel message (cut into parts and put back together).
    save(b, 'big-from-B', 300_000)
    const got = await a.until((r) => r.names.includes('big-from-B'), 'A has B’s 300 KB version')
    expect(got.lengths[got.names.indexOf('big-from-B')]).toBe(300_000)
    expect(new Set(got.versions)).toEqual(new Set(b.latest().versions))

    // The history added no signaling topic and no connection: one topic, one RTCPeerConnection each.
    const metrics = await (await fetch(`${server.url}/metrics`)).text()
    expect(metrics).toMatch(/^murmur_signaling_topics 1$/m)
    expect(await metricSample(server, 'murmur_connections', { endpoint: 'signal' })).toBe(2)
    expect([a.latest().conns, b.latest().conns]).toEqual([1, 1])

    // A leaves; C never meets A, only B, and gets every version from B.
    await a.stop()
    const c = peer(server, doc, 'C. ')
    peers.push(c)
    await c.until((r) => r.peers === 1, 'C paired with B')
    const all = await c.until((r) => r.versions.length === 2, 'C has both versions', 60_000)
    expect(new Set(all.versions)).toEqual(new Set(b.latest().versions))
    expect(all.lengths[all.names.indexOf('big-from-B')]).toBe(300_000)
    await c.until((r) => r.meshReceived > 0, 'C counted what came over the mesh')
  }, 120_000)
})

describe('history over the mesh with a backup server', () => {
  let server: ServerProcess
  const peers: Peer[] = []
  beforeAll(async () => {
    server = await startServer()
  })
  afterAll(async () => {
    await Promise.all(peers.map((p) => p.stop()))
    await server?.stop()
  })

  test('a version reaches the peer over WebRTC and the server about once (its author uploads it, the peer only checks)', async () => {
    const doc = `hist-mesh-backup-${process.pid}`
    const a = peer(server, doc, 'A. ')
    const b = peer(server, doc, 'B. ')
    peers.push(a, b)
    await Promise.all([a.until((r) => r.peers === 1 && r.backup === 'sync', 'A paired, backed up'), b.until((r) => r.peers === 1 && r.backup === 'sync', 'B paired, backed up')])
    // Every payload byte the server got on /sync (a copy it already has counts too).
    const sample = async () => (await metricSample(server, 'murmur_bytes_total', { endpoint: 'sync', direction: 'in' })) ?? 0
    const before = await sample()
    const chars = 200_000
    add(a, 'big', chars)
    await b.until((r) => r.names.includes('big'), 'B has the version')
    // The server has it too (a stock client reads the companion)...
    const reader = yClient(server.wsUrl, historyDocId(doc))
    const log = new HistoryLog(reader.doc)
    await untilDoc(reader.doc, () => log.list().some((v) => v.name === 'big'), 'the version on the server')
    reader.destroy()
    // ...and B's history link has checked that the server holds everything B has.
    await b.until((r) => r.meshReceived > 0 && r.covered, 'B’s history link covered')
    const uploaded = (await sample()) - before
    console.log(`[history] bytes the server received on /sync for one version of ${chars} characters, two peers: ${uploaded}`)
    // Once (A's upload, a little over the text); had B uploaded what it got over WebRTC too, twice.
    expect(uploaded).toBeGreaterThan(chars)
    expect(uploaded).toBeLessThan(1.5 * chars)
  }, 120_000)

  test('private document: a version reaches the peer over WebRTC and the sealed log about once', async () => {
    const doc = newDocId()
    const env = { MURMUR_PEER_KEY: newLinkKey() }
    const a = peer(server, doc, 'A. ', env)
    const b = peer(server, doc, 'B. ', env)
    peers.push(a, b)
    await Promise.all([a.until((r) => r.peers === 1 && r.backup === 'log', 'A paired, log link'), b.until((r) => r.peers === 1 && r.backup === 'log', 'B paired, log link')])
    // Ciphertext appended to /log (stored), whatever the log: the document's and its history's.
    const sample = async () => (await metricSample(server, 'murmur_log_bytes_total', { kind: 'appended' })) ?? 0
    const before = await sample()
    const chars = 200_000
    add(a, 'big', chars)
    await b.until((r) => r.names.includes('big'), 'B has the version')
    // The sealed log has it: a new device with the key lists it from the server alone.
    const c = peer(server, doc, '', { ...env, MURMUR_PEER_WEBRTC: '0' })
    peers.push(c)
    await c.until((r) => r.names.includes('big'), 'a device without WebRTC lists it from the log')
    await b.until((r) => r.covered, 'B’s history log link covered')
    const appended = (await sample()) - before
    console.log(`[history] ciphertext appended for one private version of ${chars} characters, two peers: ${appended}`)
    expect(appended).toBeGreaterThan(chars)
    expect(appended).toBeLessThan(1.5 * chars)
  }, 120_000)
})
