/** Shutdown: SIGTERM closes every signaling socket with 1001 (going away) and the process exits 0. */
import { expect, test } from 'vitest'
import { CloseCode } from '../../src/protocol/messages.ts'
import { Client, startSignalServer } from './helpers.ts'

test('SIGTERM closes signaling sockets with 1001 and exits 0', async () => {
  const server = await startSignalServer()
  const clients = await Promise.all([1, 2, 3].map(() => Client.open(`${server.wsUrl}/signal`)))
  await Promise.all(clients.map((c, i) => c.subscribe('shutdown', `own-${i}`)))
  const exit = server.stop('SIGTERM')
  for (const c of clients) expect((await c.closed).code).toBe(CloseCode.goingAway)
  expect(await exit).toBe(0)
})
