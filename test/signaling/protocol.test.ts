/** y-webrtc's signaling protocol against the real server process, with raw `ws` clients. */
import { afterAll, beforeAll, describe, expect, test } from 'vitest'
import type { ServerProcess } from '../helpers/server.ts'
import { Client, startSignalServer } from './helpers.ts'

let server: ServerProcess
let url: string
const clients: Client[] = []
const open = async () => {
  const c = await Client.open(url)
  clients.push(c)
  return c
}

beforeAll(async () => {
  server = await startSignalServer()
  url = `${server.wsUrl}/signal`
})
afterAll(async () => {
  for (const c of clients) c.close()
  await server?.stop()
})

describe('signaling protocol', () => {
  test('ping is answered with pong', async () => {
    const a = await open()
    a.send({ type: 'ping' })
    expect(await a.next()).toEqual({ type: 'pong' })
  })

  test('publish reaches every subscriber, the sender included, with the subscriber count', async () => {
    const [a, b, c] = await Promise.all([open(), open(), open()])
    await Promise.all([a.subscribe('room-1'), b.subscribe('room-1'), c.subscribe('room-1')])
    const msg = { type: 'publish', topic: 'room-1', data: { type: 'announce', from: 'peer-a', nested: [1, 'two', null] } }
    a.send(msg)
    for (const x of [a, b, c]) expect(await x.next()).toEqual({ ...msg, clients: 3 })
  })

  test('only subscribers of the topic receive it; a publisher need not be subscribed', async () => {
    const [a, b, outsider] = await Promise.all([open(), open(), open()])
    await Promise.all([a.subscribe('room-2'), b.subscribe('room-2'), outsider.subscribe('room-2-other')])
    outsider.send({ type: 'publish', topic: 'room-2', data: 'hello' })
    expect(await a.next()).toEqual({ type: 'publish', topic: 'room-2', data: 'hello', clients: 2 })
    expect(await b.next()).toEqual({ type: 'publish', topic: 'room-2', data: 'hello', clients: 2 })
    await outsider.expectNothingPending()
  })

  test('an unsubscribed client receives nothing and the count drops', async () => {
    const [a, b, c] = await Promise.all([open(), open(), open()])
    await Promise.all([a.subscribe('room-3'), b.subscribe('room-3'), c.subscribe('room-3')])
    c.send({ type: 'unsubscribe', topics: ['room-3'] })
    await c.expectNothingPending()
    a.send({ type: 'publish', topic: 'room-3', data: 1 })
    expect(await a.next()).toMatchObject({ data: 1, clients: 2 })
    expect(await b.next()).toMatchObject({ data: 1, clients: 2 })
    // a's own copy arrived, so the fan-out is done: c must have nothing queued.
    await c.expectNothingPending()
  })

  test('a closed client leaves its topics', async () => {
    const [a, b] = await Promise.all([open(), open()])
    await Promise.all([a.subscribe('room-4'), b.subscribe('room-4')])
    b.close()
    await b.closed
    // The server may see the close a moment after the client: retry (each a round trip, at most
    // 10 s in all) until the count drops.
    const deadline = Date.now() + 10_000
    let clients = 0
    for (let i = 0; Date.now() < deadline; i++) {
      a.send({ type: 'publish', topic: 'room-4', data: i })
      clients = (await a.next()).clients
      if (clients === 1) break
    }
    expect(clients, 'subscribers of room-4 after b closed').toBe(1)
  })

  test('one socket in several topics; subscribing twice counts once', async () => {
    const [a, b] = await Promise.all([open(), open()])
    await a.subscribe('room-5a', 'room-5b', 'room-5a')
    await a.subscribe('room-5b')
    await b.subscribe('room-5b')
    b.send({ type: 'publish', topic: 'room-5a', data: 'x' })
    expect(await a.next()).toMatchObject({ topic: 'room-5a', clients: 1 })
    b.send({ type: 'publish', topic: 'room-5b', data: 'y' })
    expect(await a.next()).toMatchObject({ topic: 'room-5b', clients: 2 })
    expect(await b.next()).toMatchObject({ topic: 'room-5b', clients: 2 })
  })

  test.each(['__proto__', 'constructor', 'hasOwnProperty', 'toString', ''])('topic %j is an ordinary topic', async (topic) => {
    const [a, b] = await Promise.all([open(), open()])
    await Promise.all([a.subscribe(topic), b.subscribe(topic)])
    a.send(`{"type":"publish","topic":${JSON.stringify(topic)},"data":{"__proto__":{"polluted":true}}}`)
    for (const x of [a, b]) {
      const m = await x.next()
      expect(m.topic).toBe(topic)
      expect(m.clients).toBe(2)
      expect(Object.getOwnPropertyDescriptor(m.data, '__proto__')?.value).toEqual({ polluted: true })
    }
    a.send({ type: 'unsubscribe', topics: [topic] })
    await a.expectNothingPending()
    b.send({ type: 'publish', topic, data: 2 })
    expect(await b.next()).toMatchObject({ clients: 1 })
    await a.expectNothingPending()
  })

  test('unknown message types are ignored, like the reference server', async () => {
    const a = await open()
    a.send({ type: 'something-new', topics: 5 })
    await a.expectNothingPending()
  })

  test('published messages of every frame length encoding arrive intact (7-bit, 16-bit, 64-bit)', async () => {
    const [a, b] = await Promise.all([open(), open()])
    await Promise.all([a.subscribe('room-7'), b.subscribe('room-7')])
    const envelope = JSON.stringify({ type: 'publish', topic: 'room-7', data: '' }).length
    // Sizes on each side of the length-encoding boundaries once `}` becomes `,"clients":2}` (+12 bytes):
    // ≤125 → 7-bit, ≤65535 → 16-bit, else 64-bit. The last is the largest frame accepted (64 KiB).
    for (const total of [60, 113, 114, 500, 65_523, 65_524, 65_536]) {
      const data = 'é'.repeat(2) + 'd'.repeat(total - envelope - 4)
      const msg = JSON.stringify({ type: 'publish', topic: 'room-7', data })
      expect(Buffer.byteLength(msg)).toBe(total)
      a.send(msg)
      for (const x of [a, b]) expect(await x.next()).toEqual({ type: 'publish', topic: 'room-7', data, clients: 2 })
    }
  })

  test('a publish that already carries clients gets the true count', async () => {
    const a = await open()
    await a.subscribe('room-6')
    a.send('{"type":"publish","topic":"room-6","clients":99}  \n')
    expect(await a.next()).toEqual({ type: 'publish', topic: 'room-6', clients: 1 })
  })
})
