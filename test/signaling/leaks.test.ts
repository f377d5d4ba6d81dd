/** No memory left behind: empty topics are deleted, as seen in `/metrics`. */
import { afterAll, beforeAll, expect, test } from 'vitest'
import type { ServerProcess } from '../helpers/server.ts'
import { Client, metric, startSignalServer } from './helpers.ts'

let server: ServerProcess
beforeAll(async () => {
  server = await startSignalServer()
})
afterAll(() => server?.stop())

const topicsGauge = () => metric(server, 'murmur_signaling_topics')
const connections = async () => {
  const text = await (await fetch(`${server.url}/metrics`)).text()
  return Number(/^murmur_connections\{endpoint="signal"\} (\S+)$/m.exec(text)?.[1] ?? 0)
}

/** Polls until `read()` returns `want` (the server sees closes a moment after the client). */
async function eventually(read: () => Promise<number | undefined>, want: number): Promise<void> {
  for (let i = 0; i < 100; i++) {
    if ((await read()) === want) return
    await new Promise((r) => setTimeout(r, 50))
  }
  expect(await read()).toBe(want)
}

test('topics gauge returns to 0 after many subscribe/unsubscribe cycles of distinct topics', async () => {
  const clients = await Promise.all(Array.from({ length: 4 }, () => Client.open(`${server.wsUrl}/signal`)))
  for (let round = 0; round < 50; round++) {
    const shared = `shared-${round}`
    const own = clients.map((_, i) => Array.from({ length: 10 }, (_, j) => `r${round}-c${i}-t${j}`))
    await Promise.all(clients.map((c, i) => c.subscribe(...own[i], shared)))
    if (round === 0) expect(await topicsGauge()).toBe(clients.length * 10 + 1)
    for (const c of clients) c.send({ type: 'publish', topic: shared, data: round })
    for (const c of clients) for (const _ of clients) expect(await c.next()).toMatchObject({ topic: shared, clients: clients.length })
    for (const [i, c] of clients.entries()) c.send({ type: 'unsubscribe', topics: [...own[i], shared, 'never-subscribed'] })
    await Promise.all(clients.map((c) => c.expectNothingPending()))
    if (round === 0) expect(await topicsGauge()).toBe(0)
  }
  // Subscribed, then the socket closes without unsubscribing.
  await Promise.all(clients.map((c, i) => c.subscribe(`left-open-${i}`, 'left-open-shared')))
  expect(await topicsGauge()).toBe(clients.length + 1)
  for (const c of clients) c.close()
  await eventually(topicsGauge, 0)
  await eventually(connections, 0)
})

test('sockets closed by the server for bad input leave no topics behind', async () => {
  for (let i = 0; i < 20; i++) {
    const c = await Client.open(`${server.wsUrl}/signal`)
    await c.subscribe(`doomed-${i}`, 'doomed-shared')
    c.send('not json')
    await c.closed
  }
  await eventually(topicsGauge, 0)
  await eventually(connections, 0)
})
