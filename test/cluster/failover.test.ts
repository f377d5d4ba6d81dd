/**
 * Failover through a real proxy (issue 10): three murmur processes on one
 * PostgreSQL database and one Redis behind HAProxy running the README's
 * example (`docs/haproxy.cfg`: hash on the document, `/healthz` checks). The
 * instance holding a document is killed with SIGKILL while clients type into
 * it; they reconnect through the proxy to another instance, nothing that was
 * acknowledged is lost, and what they typed during the gap merges. When the
 * instance comes back, the proxy routes new clients of the document to it
 * again and they see the clients still on the other instance live.
 */
import { afterAll, beforeAll, describe, expect, test } from 'vitest'
import * as Y from 'yjs'
import { MessageType } from '../../src/protocol/messages.ts'
import { ackNonce, rawSync, snapshotOf, syncMessage, uintMessage, untilDoc, yClient } from '../helpers/clients.ts'
import { startHaproxy, type Haproxy } from '../helpers/haproxy.ts'
import { startServer, type ServerProcess } from '../helpers/server.ts'
import { checkRedis, freshPostgresDatabase, REDIS_URL } from '../helpers/services.ts'
import { freePort } from '../../bench/lib/servers.ts'

const db = await freshPostgresDatabase()
const prefix = await checkRedis()
const args = ['--store', db.url, '--redis', REDIS_URL, '--redis-prefix', prefix, '--trust-proxy']
const servers: ServerProcess[] = []
let proxy: Haproxy

beforeAll(async () => {
  servers.push(...(await Promise.all([0, 1, 2].map(() => startServer({ args })))))
  proxy = await startHaproxy(await freePort(), servers.map((s) => s.port))
}, 60_000)
afterAll(async () => {
  await proxy?.stop()
  await Promise.all(servers.map((s) => s.stop()))
  await db.drop()
})

/** Open `/sync` sockets of an instance (0 when it does not answer). */
async function syncSockets(s: ServerProcess): Promise<number> {
  try {
    const text = await (await fetch(`${s.url}/metrics`)).text()
    const line = text.split('\n').find((l) => l.startsWith('murmur_connections{') && l.includes('endpoint="sync"'))
    return line ? Number(line.split(' ').pop()) : 0
  } catch {
    return 0
  }
}

/** Resolves when the y-websocket `provider` has synced again after losing its connection. */
function resynced(provider: { on(e: string, f: (x: any) => void): void; off(e: string, f: (x: any) => void): void }, what: string, timeoutMs = 20_000): Promise<void> {
  return new Promise((res, rej) => {
    let lost = false
    const timer = setTimeout(() => (off(), rej(new Error(`${what} did not sync again within ${timeoutMs} ms`))), timeoutMs)
    const onStatus = ({ status }: { status: string }) => status === 'disconnected' && (lost = true)
    const onSync = (s: boolean) => s && lost && (off(), res())
    const off = () => {
      clearTimeout(timer)
      provider.off('status', onStatus)
      provider.off('sync', onSync)
    }
    provider.on('status', onStatus)
    provider.on('sync', onSync)
  })
}

describe('failover through HAProxy (docs/haproxy.cfg)', () => {
  test('kill -9 of the instance holding a document mid-session: clients reconnect through the proxy to another instance, nothing acknowledged is lost, gap edits merge, and the instance rejoins', { timeout: 120_000 }, async () => {
    const docId = `failover-${Date.now().toString(36)}`
    // Two stock y-websocket clients and one raw writer with durable acks, all through the proxy.
    const a = yClient(proxy.wsUrl, docId)
    const b = yClient(proxy.wsUrl, docId)
    await Promise.all([a.synced, b.synced])
    const w = { doc: new Y.Doc(), raw: await rawSync(proxy.wsUrl, `/sync/${docId}`), acked: 0 }
    const wText = w.doc.getText('text')
    w.doc.on('update', (u: Uint8Array, origin: unknown) => origin !== 'remote' && w.raw.ws.readyState === w.raw.ws.OPEN && w.raw.send(syncMessage(2, u)))

    // Hashing on the document put all three on one instance: that is the one to kill.
    const counts = await Promise.all(servers.map(syncSockets))
    const home = counts.findIndex((c) => c === 3)
    expect(home, `sync sockets per instance ${JSON.stringify(counts)}: all three on one instance`).toBeGreaterThanOrEqual(0)
    const victim = servers[home]!

    for (let i = 0; i < 200; i++) {
      wText.insert(wText.length, String.fromCharCode(97 + (i % 26)))
      if (i % 25 === 24) {
        const clock = Y.getState(w.doc.store, w.doc.clientID)
        w.raw.send(uintMessage(MessageType.durableQuery, i))
        await w.raw.waitFor((f) => ackNonce(f) === i)
        w.acked = clock
      }
    }
    expect(w.acked).toBe(200)

    // The stock clients type all through the failover: markers a0, a1, … and b0, b1, …
    const typed: string[] = []
    let k = 0
    const typing = setInterval(() => {
      for (const [name, c] of [['a', a], ['b', b]] as const) {
        const marker = `<${name}${k}>`
        c.text.insert(c.text.length, marker)
        typed.push(marker)
      }
      k++
    }, 20)
    await untilDoc(a.doc, () => a.text.toString().includes('<b3>'), 'live edits between the stock clients before the kill')

    // Unacknowledged edits in flight, then the instance dies without a chance to flush.
    for (let i = 0; i < 50; i++) wText.insert(wText.length, 'z')
    const back = [resynced(a.provider, 'client a'), resynced(b.provider, 'client b')]
    const killedAt = Date.now()
    victim.child.kill('SIGKILL')
    await w.raw.closed
    wText.insert(0, 'gap:')
    await Promise.all(back)
    const gapMs = Date.now() - killedAt
    clearInterval(typing)
    const typedByKill = typed.length

    // The raw writer's replica comes back as a stock client, through the proxy.
    const w2 = yClient(proxy.wsUrl, docId, { doc: w.doc })
    await w2.synced
    const survivors = servers.filter((s) => s !== victim)
    const after = await Promise.all(survivors.map(syncSockets))
    expect(after.reduce((x, y) => x + y), `sync sockets on the surviving instances ${JSON.stringify(after)}`).toBe(3)

    const merged = new Y.Doc()
    for (const d of [a.doc, b.doc, w.doc]) Y.applyUpdate(merged, Y.encodeStateAsUpdate(d))
    const expected = merged.getText('text').toString()
    for (const [name, c] of [['a', a], ['b', b], ['writer', w2]] as const) await untilDoc(c.doc, () => c.text.toString() === expected, `client ${name} has everything`, 20_000)
    for (const m of typed) expect(expected.split(m).length - 1, `${m} exactly once`).toBe(1)
    expect(expected.startsWith('gap:')).toBe(true)

    // Stored: a fresh client of each surviving instance, and one through the proxy.
    for (const url of [...survivors.map((s) => s.wsUrl), proxy.wsUrl]) {
      const fresh = await snapshotOf(url, docId)
      expect(Y.decodeStateVector(fresh.sv).get(w.doc.clientID) ?? 0, `${url}: acknowledged edits stored`).toBeGreaterThanOrEqual(w.acked)
      expect(fresh.text, `${url}: whole document`).toBe(expected)
    }

    // The instance comes back on its port: once HAProxy's checks pass, the hash sends the document's new clients to it again.
    servers[home] = await startServer({ args, port: victim.port, dataDir: victim.dataDir })
    let late: ReturnType<typeof yClient> | null = null
    const deadline = Date.now() + 20_000
    while (!late) {
      const c = yClient(proxy.wsUrl, docId)
      await c.synced
      if ((await syncSockets(servers[home]!)) > 0) late = c
      else {
        c.destroy()
        expect(Date.now() < deadline, 'HAProxy routes the document back to the restarted instance').toBe(true)
        await new Promise((r) => setTimeout(r, 250))
      }
    }
    expect(late.text.toString()).toBe(expected)
    // Live across instances: the late client (restarted instance) and client a (another one) see each other.
    late.text.insert(0, '<late>')
    a.text.insert(0, '<a-late>')
    await untilDoc(a.doc, () => a.text.toString().includes('<late>'), 'client a sees the client on the restarted instance')
    await untilDoc(late.doc, () => late!.text.toString().includes('<a-late>'), 'the client on the restarted instance sees client a')
    console.log(`failover: killed instance ${home} with ${w.acked} acked + 50 unacked writer edits; both stock clients synced again through HAProxy ${gapMs} ms after the kill; ${typedByKill} markers typed; every client converged on ${expected.length} chars`)
    for (const c of [a, b, w2, late]) c.destroy()
  })
})
