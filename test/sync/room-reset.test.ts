/**
 * Broken-room reset, for real: an update the fuzzer found (fixtures/broken-room.json)
 * passes `checkUpdate` against the stored document but throws inside Yjs. The
 * server must close its sender with 4422, close every other member with 1012,
 * reload the room from storage (dropping whatever Yjs half-integrated), and the
 * members must reconnect and converge.
 */
import { readFileSync } from 'node:fs'
import { join } from 'node:path'
import { expect, it } from 'vitest'
import * as Y from 'yjs'
import { startServer } from '../helpers/server.ts'
import { frameType, rawSync, snapshotOf, syncMessage, uintMessage, untilDoc, yClient } from '../helpers/clients.ts'
import { CloseCode, MessageType } from '../../src/protocol/messages.ts'
import { checkUpdate, stateVectorOf } from '../../server/updates.ts'

const fixture = JSON.parse(readFileSync(join(import.meta.dirname, 'fixtures/broken-room.json'), 'utf8')) as { pre: string; update: string }
const stored = new Uint8Array(Buffer.from(fixture.pre, 'base64'))
const poison = new Uint8Array(Buffer.from(fixture.update, 'base64'))

it('an update that throws inside Yjs: 4422 to its sender, 1012 to every member, reload from storage, members reconnect and converge', async () => {
  // The fixture still does what it is here for (else this test would prove nothing).
  const check = new Y.Doc()
  Y.applyUpdate(check, stored)
  const storedText = check.getText('text').toString()
  const storedSv = Y.encodeStateVector(check)
  expect(checkUpdate(poison, stateVectorOf(check))).toBe('ready')
  expect(() => Y.applyUpdate(check, poison)).toThrow()

  const server = await startServer()
  const members: ReturnType<typeof yClient>[] = []
  try {
    const seed = await rawSync(server.wsUrl, '/sync/broken')
    seed.send(syncMessage(2, stored))
    seed.send(uintMessage(MessageType.durableQuery, 1))
    await seed.waitFor((f) => frameType(f) === MessageType.durableAck)
    seed.ws.close()

    const closes: number[][] = [[], []]
    for (const i of [0, 1]) {
      const m = yClient(server.wsUrl, 'broken')
      m.provider.on('connection-close', (e: { code: number } | null) => closes[i]!.push(e?.code ?? 0))
      members.push(m)
    }
    await Promise.all(members.map((m) => m.synced))
    await Promise.all(members.map((m) => untilDoc(m.doc, () => m.text.toString() === storedText, 'member has the stored text')))
    const reconnected = members.map((m) => new Promise<void>((res) => m.provider.on('sync', (s: boolean) => s && closes[members.indexOf(m)]!.length > 0 && res())))

    const attacker = await rawSync(server.wsUrl, '/sync/broken')
    attacker.send(syncMessage(2, poison))
    expect((await attacker.closed).code).toBe(CloseCode.badUpdate)
    const bound = new Promise<string>((res) => setTimeout(() => res(`members not reconnected within 20 s; closes ${JSON.stringify(closes)}`), 20_000).unref())
    expect(await Promise.race([Promise.all(reconnected).then(() => 'reconnected'), bound])).toBe('reconnected')
    expect(closes).toEqual([[1012], [1012]])

    // The reloaded room is the stored document: nothing of the half-integrated update survived.
    const after = await snapshotOf(server.wsUrl, 'broken')
    expect(after.text).toBe(storedText)
    expect(after.sv).toEqual(storedSv)

    // Members edit again and converge through the reloaded room.
    members[0]!.text.insert(0, 'after the reset: ')
    members[1]!.text.insert(members[1]!.text.length, ' (and here)')
    const want = 'after the reset: ' + storedText + ' (and here)'
    await Promise.all(members.map((m) => untilDoc(m.doc, () => m.text.toString() === want, 'members converge')))
    await expect.poll(async () => (await snapshotOf(server.wsUrl, 'broken')).text, { timeout: 10_000 }).toBe(want)
    expect((await fetch(`${server.url}/healthz`)).status).toBe(200)
  } finally {
    members.forEach((m) => m.destroy())
    expect(await server.stop()).toBe(0)
  }
})
