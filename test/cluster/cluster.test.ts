/**
 * Several real murmur processes on one PostgreSQL database and one Redis
 * (`--store postgres://… --redis redis://…`): stock y-websocket and y-webrtc
 * clients spread over the instances see each other, and killing an instance
 * with SIGKILL under a writer loses nothing it acknowledged.
 */
import { afterAll, beforeAll, describe, expect, test } from 'vitest'
import * as Y from 'yjs'
import { MessageType } from '../../src/protocol/messages.ts'
import { ackNonce, rawSync, snapshotOf, syncMessage, uintMessage, untilDoc, yClient } from '../helpers/clients.ts'
import { startServer, type ServerProcess } from '../helpers/server.ts'
import { checkRedis, freshPostgresDatabase, REDIS_URL } from '../helpers/services.ts'
import { Client, here, startReporter } from '../signaling/helpers.ts'

const db = await freshPostgresDatabase()
const prefix = await checkRedis()
// Frequent compaction, so instances compact while the others write.
const clusterArgs = ['--store', db.url, '--redis', REDIS_URL, '--redis-prefix', prefix, '--compact-after-updates', '40']
const servers: ServerProcess[] = []
const startInstance = () => startServer({ args: clusterArgs })

beforeAll(async () => {
  servers.push(...(await Promise.all([startInstance(), startInstance(), startInstance()])))
})
afterAll(async () => {
  await Promise.all(servers.map((s) => s.stop()))
  await db.drop()
})

/** Resolves once `awareness` holds a state with `user.name === name`. */
function untilPresence(awareness: { getStates(): Map<number, any>; on(e: string, f: () => void): void; off(e: string, f: () => void): void }, name: string): Promise<void> {
  const has = () => [...awareness.getStates().values()].some((s) => s?.user?.name === name)
  if (has()) return Promise.resolve()
  return new Promise((res, rej) => {
    const timer = setTimeout(() => rej(new Error(`no presence of ${name}`)), 15_000)
    const check = () => has() && (clearTimeout(timer), awareness.off('change', check), res())
    awareness.on('change', check)
  })
}

describe('three instances on PostgreSQL and Redis', () => {
  test('/healthz reports the store and the fan-out link', async () => {
    for (const s of servers) {
      const res = await fetch(`${s.url}/healthz`)
      expect(res.status).toBe(200)
      expect(await res.json()).toEqual({ ok: true, storage: 'writable', fanout: 'up' })
    }
  })

  test('stock y-websocket clients on different instances see each other live, presence included', async () => {
    const clients = servers.map((s) => yClient(s.wsUrl, 'live'))
    try {
      await Promise.all(clients.map((c) => c.synced))
      clients.forEach((c, i) => c.text.insert(0, `<${i}>`))
      const full = (c: (typeof clients)[number]) => () => ['<0>', '<1>', '<2>'].every((t) => c.text.toString().includes(t))
      await Promise.all(clients.map((c, i) => untilDoc(c.doc, full(c), `client on instance ${i} sees all three edits`)))
      const texts = clients.map((c) => c.text.toString())
      expect(new Set(texts).size, `converged: ${JSON.stringify(texts)}`).toBe(1)

      clients[0]!.provider.awareness.setLocalStateField('user', { name: 'ada' })
      await Promise.all([untilPresence(clients[1]!.provider.awareness, 'ada'), untilPresence(clients[2]!.provider.awareness, 'ada')])

      // A client joining later on yet another instance gets it all (what is stored plus what is in memory).
      const late = await snapshotOf(servers[1]!.wsUrl, 'live')
      expect(late.text).toBe(texts[0])
    } finally {
      clients.forEach((c) => c.destroy())
    }
  })

  test('stock y-webrtc peers whose signaling goes to different instances pair', async () => {
    type Report = { conns: number; connected: number; offered: number; dropped: number; text: string }
    const initial: Report = { conns: 0, connected: 0, offered: 0, dropped: 0, text: '' }
    // Stock y-webrtc pairs reliably only when one peer hears the other's announce first
    // (see test/signaling/webrtc.test.ts): start the second once the first's announce has
    // reached instance 2 — through Redis, which is what this test is about.
    const observer = await Client.open(`${servers[2]!.wsUrl}/signal`)
    await observer.subscribe('cluster-rtc')
    const a = startReporter(here('webrtc-peer.ts'), [`${servers[0]!.wsUrl}/signal`, 'cluster-rtc', 'left'], initial)
    expect(await observer.next(20_000)).toMatchObject({ type: 'publish', topic: 'cluster-rtc' })
    observer.close()
    const b = startReporter(here('webrtc-peer.ts'), [`${servers[2]!.wsUrl}/signal`, 'cluster-rtc', 'right'], initial)
    try {
      const both = (r: Report) => r.connected >= 1 && r.text.includes('left') && r.text.includes('right')
      await Promise.all([a.until(both, 'peer on instance 0 connected to the other', 20_000), b.until(both, 'peer on instance 2 connected to the other', 20_000)])
      expect(a.latest().text).toBe(b.latest().text)
    } catch (err) {
      console.error(`peer A output:\n${a.output()}\npeer B output:\n${b.output()}`)
      throw err
    } finally {
      await Promise.all([a.stop(), b.stop()])
    }
  })

  test('kill -9 of an instance under writers on every instance (frequent compaction): every acknowledged update survives, the cut-off writer reconnects elsewhere and its offline edits merge', async () => {
    const victim = servers[2]!
    const watcher = yClient(servers[0]!.wsUrl, 'failover')
    await watcher.synced
    // One raw writer per instance, all on one document; each asks for a durable ack every 25 edits.
    const writers = await Promise.all(
      servers.map(async (s, k) => {
        const doc = new Y.Doc()
        const raw = await rawSync(s.wsUrl, '/sync/failover')
        doc.on('update', (u: Uint8Array) => raw.ws.readyState === raw.ws.OPEN && raw.send(syncMessage(2, u)))
        return { k, doc, text: doc.getText('text'), raw, acked: 0 }
      }),
    )
    const type = async (w: (typeof writers)[number], n: number) => {
      for (let i = 0; i < n; i++) {
        w.text.insert(w.text.length, String.fromCharCode(97 + ((i + w.k) % 26)))
        if (i % 25 === 24) {
          const clock = Y.getState(w.doc.store, w.doc.clientID)
          const nonce = w.k * 100_000 + i
          w.raw.send(uintMessage(MessageType.durableQuery, nonce))
          await w.raw.waitFor((f) => ackNonce(f) === nonce)
          w.acked = clock
        }
      }
    }
    await Promise.all(writers.map((w) => type(w, 300)))
    const doomed = writers[2]!
    // More edits in flight on the victim, then it dies without a chance to flush.
    for (let i = 0; i < 50; i++) doomed.text.insert(doomed.text.length, 'z')
    victim.child.kill('SIGKILL')
    await doomed.raw.closed
    servers.splice(2, 1)
    for (const w of writers) expect(w.acked, `writer ${w.k} got its acks`).toBe(300)

    // Edits made while disconnected; then the client reconnects to another instance (what a proxy does when the victim's health check fails).
    doomed.text.insert(0, 'offline:')
    const back = yClient(servers[1]!.wsUrl, 'failover', { doc: doomed.doc })
    await back.synced
    for (const w of writers.slice(0, 2)) w.raw.ws.close()
    const all = new Y.Doc()
    for (const w of writers) Y.applyUpdate(all, Y.encodeStateAsUpdate(w.doc))
    const expected = all.getText('text').toString()
    await untilDoc(watcher.doc, () => watcher.text.toString() === expected, 'the watcher on instance 0 has every writer\'s text', 20_000)
    const fresh = await snapshotOf(servers[0]!.wsUrl, 'failover')
    const sv = Y.decodeStateVector(fresh.sv)
    for (const w of writers) expect(sv.get(w.doc.clientID) ?? 0, `writer ${w.k}: acknowledged edits stored`).toBeGreaterThanOrEqual(w.acked)
    expect(fresh.text).toBe(expected)
    back.destroy()
    watcher.destroy()
  })
})
