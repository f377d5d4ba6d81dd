/** Keep-alive: sockets that stop answering pings are dropped; live ones stay. */
import { afterAll, beforeAll, expect, test } from 'vitest'
import { WebSocket } from 'ws'
import type { ServerProcess } from '../helpers/server.ts'
import { Client, metric, startSignalServer } from './helpers.ts'

let server: ServerProcess
beforeAll(async () => {
  server = await startSignalServer(['--keepalive-ms', '150'])
})
afterAll(() => server?.stop())

test('a socket that does not answer pings is dropped, a live one keeps working', async () => {
  const url = `${server.wsUrl}/signal`
  const live = await Client.open(url)
  let pings = 0
  live.ws.on('ping', () => pings++)
  await live.subscribe('ka')
  // A client that never answers pings (a vanished laptop).
  const dead = new WebSocket(url, { autoPong: false })
  await new Promise((res) => dead.once('open', res))
  dead.send(JSON.stringify({ type: 'subscribe', topics: ['ka'] }))
  const code = await new Promise<number>((res) => dead.once('close', (c) => res(c)))
  expect(code).toBe(1006) // terminated: no close frame
  expect(pings).toBeGreaterThanOrEqual(2)
  live.send({ type: 'publish', topic: 'ka', data: 1 })
  expect(await live.next()).toMatchObject({ data: 1, clients: 1 })
  expect(await metric(server, 'murmur_signaling_topics')).toBe(1)
  live.close()
})
