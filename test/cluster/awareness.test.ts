/**
 * Presence ownership across instances (issue 10): an awareness client id
 * belongs to the socket that first claimed it (`AwarenessLedger`), also when
 * that socket is on another instance and its presence arrives over Redis; and
 * a legitimate user is not locked out of their own id when their instance
 * dies and they reconnect to another one.
 */
import { afterAll, beforeAll, describe, expect, test } from 'vitest'
import { Awareness } from 'y-protocols/awareness'
import { MessageType } from '../../src/protocol/messages.ts'
import { awarenessMessage, rawSync, uintMessage, yClient } from '../helpers/clients.ts'
import * as decoding from 'lib0/decoding'
import { startServer, type ServerProcess } from '../helpers/server.ts'
import { checkRedis, freshPostgresDatabase, REDIS_URL } from '../helpers/services.ts'

const db = await freshPostgresDatabase()
const prefix = await checkRedis()
const args = ['--store', db.url, '--redis', REDIS_URL, '--redis-prefix', prefix]
const servers: ServerProcess[] = []

beforeAll(async () => {
  servers.push(...(await Promise.all([0, 1, 2].map(() => startServer({ args })))))
}, 60_000)
afterAll(async () => {
  await Promise.all(servers.map((s) => s.stop()))
  await db.drop()
})

type Client = ReturnType<typeof yClient>

/** Resolves once `check(state of client id)` holds in `awareness` (checked on every change). */
function until(awareness: Awareness, id: number, check: (state: any) => boolean, what: string, timeoutMs = 15_000): Promise<number> {
  const started = Date.now()
  if (check(awareness.getStates().get(id))) return Promise.resolve(0)
  return new Promise((res, rej) => {
    const timer = setTimeout(() => (awareness.off('change', on), rej(new Error(`timed out after ${timeoutMs} ms waiting for ${what}`))), timeoutMs)
    const on = () => check(awareness.getStates().get(id)) && (clearTimeout(timer), awareness.off('change', on), res(Date.now() - started))
    awareness.on('change', on)
  })
}

/** Every name `awareness` ever showed for `id` from now on. */
function namesSeen(awareness: Awareness, id: number): string[] {
  const seen: string[] = []
  awareness.on('change', () => {
    const name = awareness.getStates().get(id)?.user?.name
    if (name && seen.at(-1) !== name) seen.push(name)
  })
  return seen
}

/** The awareness states a raw socket receives in answer to a query, by client id. */
async function queryStates(raw: Awaited<ReturnType<typeof rawSync>>): Promise<Map<number, string>> {
  const before = raw.frames.length
  raw.send(uintMessage(MessageType.queryAwareness))
  const frame = await raw.waitFor((f) => raw.frames.indexOf(f) >= before && f[0] === MessageType.awareness)
  const dec = decoding.createDecoder(frame)
  decoding.readVarUint(dec)
  const update = decoding.createDecoder(decoding.readVarUint8Array(dec))
  const out = new Map<number, string>()
  for (let n = decoding.readVarUint(update); n > 0; n--) {
    const client = decoding.readVarUint(update)
    decoding.readVarUint(update)
    out.set(client, decoding.readVarString(update))
  }
  return out
}

describe('presence ownership across instances (PostgreSQL + Redis)', () => {
  test("a socket on one instance cannot take over the presence of a user connected to another", { timeout: 60_000 }, async () => {
    const doc = `spoof-${Date.now().toString(36)}`
    const ada = yClient(servers[0]!.wsUrl, doc)
    const on1 = yClient(servers[1]!.wsUrl, doc)
    const on2 = yClient(servers[2]!.wsUrl, doc)
    const clients: Client[] = [ada, on1, on2]
    try {
      await Promise.all(clients.map((c) => c.synced))
      const id = ada.doc.clientID
      ada.provider.awareness.setLocalStateField('user', { name: 'ada' })
      await Promise.all([on1, on2].map((c, k) => until(c.provider.awareness, id, (s) => s?.user?.name === 'ada', `ada's presence on instance ${k + 1}`)))
      const seen = [ada, on1, on2].map((c) => namesSeen(c.provider.awareness, id))

      // Mallory, on instance 1, speaks for ada's id: as her very first (own) id, then again with a higher clock.
      const mallory = await rawSync(servers[1]!.wsUrl, `/sync/${doc}`)
      mallory.send(awarenessMessage([[id, 1000, JSON.stringify({ user: { name: 'mallory' } })]]))
      mallory.send(awarenessMessage([[id, 2000, JSON.stringify({ user: { name: 'mallory' } })]]))
      // Frames of one socket are handled in order: the answer to this query comes after both were.
      const states = await queryStates(mallory)
      expect(JSON.parse(states.get(id) ?? 'null')?.user?.name, 'instance 1 still holds ada for her id').toBe('ada')

      // Ada's next change still reaches everyone, and nobody ever saw mallory under her id.
      ada.provider.awareness.setLocalStateField('user', { name: 'ada (moved)' })
      await Promise.all([on1, on2].map((c, k) => until(c.provider.awareness, id, (s) => s?.user?.name === 'ada (moved)', `ada's update on instance ${k + 1}`)))
      expect(seen.flat().filter((n) => n === 'mallory'), `names shown for ada's id: ${JSON.stringify(seen)}`).toEqual([])
      expect(ada.provider.awareness.getLocalState()?.user?.name).toBe('ada (moved)')
      mallory.ws.close()
    } finally {
      clients.forEach((c) => c.destroy())
    }
  })

  test("when a user's instance is killed, the others drop her presence within seconds, and she gets her id back on the instance she reconnects to", { timeout: 60_000 }, async () => {
    const doc = `gone-${Date.now().toString(36)}`
    const victim = servers[0]!
    const ada = yClient(victim.wsUrl, doc)
    const on1 = yClient(servers[1]!.wsUrl, doc)
    const on2 = yClient(servers[2]!.wsUrl, doc)
    await Promise.all([ada.synced, on1.synced, on2.synced])
    const id = ada.doc.clientID
    ada.provider.awareness.setLocalStateField('user', { name: 'ada' })
    await Promise.all([on1, on2].map((c, k) => until(c.provider.awareness, id, (s) => s?.user?.name === 'ada', `ada's presence on instance ${k + 1}`)))

    // Her instance dies: nobody tells the others she left, yet they drop her well before the 30 s awareness timeout.
    const lost = new Promise<void>((r) => ada.provider.on('status', ({ status }: { status: string }) => status === 'disconnected' && r()))
    victim.child.kill('SIGKILL')
    await lost
    ada.provider.disconnect() // (no retries against the dead port)
    const dropped = await Promise.all([on1, on2].map((c, k) => until(c.provider.awareness, id, (s) => s === undefined, `ada's presence dropped on instance ${k + 1}`, 10_000)))

    // She reconnects to instance 1 (same awareness, as a tab's provider keeps it) and moves her cursor: everyone sees it.
    const back = yClient(servers[1]!.wsUrl, doc, { doc: ada.doc, awareness: ada.provider.awareness })
    await back.synced
    back.provider.awareness.setLocalStateField('cursor', { at: 1 })
    await Promise.all([on1, on2].map((c, k) => until(c.provider.awareness, id, (s) => s?.user?.name === 'ada' && s?.cursor?.at === 1, `ada back, seen on instance ${k + 1}`)))
    console.log(`awareness: presence of a user on a killed instance dropped after ${dropped.join(' / ')} ms on the other two`)
    for (const c of [on1, on2, back]) c.destroy()
    ada.provider.destroy()
    servers[0] = await startServer({ args })
  })
})
