/**
 * `/log` is bounded like `/sync`: a per-document quota on stored bytes, and
 * byte budgets per socket and per address (a socket over budget is not read
 * until it refills; nothing is dropped). Real server process, raw clients.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { startServer, type ServerProcess } from '../helpers/server.ts'
import { is, rawLog, readLog } from '../helpers/log-client.ts'
import { CloseCode } from '../../src/protocol/messages.ts'
import { LogMessage } from '../../src/protocol/log.ts'
import { newDocId } from '../../src/protocol/ids.ts'
import { mintToken } from '../../server/auth.ts'

const KiB = 1024
const proof = new Uint8Array(32).fill(5)

describe('/log limits', () => {
  let server: ServerProcess
  beforeAll(async () => {
    server = await startServer({
      args: ['--max-document-bytes', String(300 * KiB), '--max-update-bytes', String(128 * KiB), '--sync-bytes-per-second', String(512 * KiB), '--max-sync-rate', '100000'],
    })
  })
  afterAll(async () => {
    expect(await server?.stop()).toBe(0)
  })

  it('refuses an append that would pass --max-document-bytes with 4413 and keeps what was stored', async () => {
    const docId = newDocId()
    const w = await rawLog(server.wsUrl, docId)
    for (let i = 1; i <= 2; i++) {
      w.send({ type: LogMessage.append, nonce: i, proof, data: new Uint8Array(120 * KiB).fill(i) })
      expect((await w.until(is.appended)).seq).toBeGreaterThanOrEqual(1)
    }
    w.send({ type: LogMessage.append, nonce: 3, proof, data: new Uint8Array(120 * KiB).fill(3) })
    expect(await w.closed).toBe(CloseCode.documentTooLarge)
    const log = await readLog(server.wsUrl, docId)
    expect(log.lastSeq).toBe(2)
    expect(log.entries.map((e) => e.data.byteLength)).toEqual([120 * KiB, 120 * KiB])
  })

  it('reads a socket that sends faster than --sync-bytes-per-second only as fast as its budget refills; nothing is lost', async () => {
    const fast = await startServer({ args: ['--max-update-bytes', String(128 * KiB), '--sync-bytes-per-second', String(512 * KiB), '--max-sync-rate', '100000'] })
    try {
      const docId = newDocId()
      const w = await rawLog(fast.wsUrl, docId)
      const t0 = performance.now()
      for (let i = 1; i <= 6; i++) w.send({ type: LogMessage.append, nonce: i, proof, data: new Uint8Array(100 * KiB).fill(i) })
      await w.until((f): f is Extract<typeof f, { type: typeof LogMessage.appended }> => is.appended(f) && f.nonce === 6)
      const ms = performance.now() - t0
      // 600 KiB against a 128 KiB burst at 512 KiB/s: about 0.7 s of reading at least.
      console.log(`6 × 100 KiB at a 512 KiB/s budget: last ack after ${ms.toFixed(0)} ms`)
      expect(ms).toBeGreaterThan(500)
      expect((await readLog(fast.wsUrl, docId)).lastSeq).toBe(6)
      w.close()
    } finally {
      expect(await fast.stop()).toBe(0)
    }
  })

  it('refuses writes from a read-only token with 4401 and stores nothing; the same token may read', async () => {
    const secret = 'log-read-only-secret'
    const authed = await startServer({ args: ['--auth-secret', secret] })
    try {
      const docId = newDocId()
      const withToken = (mode: 'r' | 'rw') => `${docId}?token=${mintToken(secret, docId, mode, 600)}`
      const writer = await rawLog(authed.wsUrl, withToken('rw'))
      writer.send({ type: LogMessage.append, nonce: 1, proof, data: new Uint8Array([1, 2, 3]) })
      expect((await writer.until(is.appended)).seq).toBe(1)
      writer.close()
      for (const frame of [
        { type: LogMessage.append, nonce: 1, proof, data: new Uint8Array([9]) } as const,
        { type: LogMessage.snapshot, nonce: 1, proof, upToSeq: 1, data: new Uint8Array([9]) } as const,
      ]) {
        const reader = await rawLog(authed.wsUrl, withToken('r'))
        reader.send(frame)
        expect(await reader.closed).toBe(CloseCode.unauthorized)
      }
      const log = await readLog(authed.wsUrl, withToken('r'))
      expect(log.lastSeq).toBe(1)
      expect(log.entries.map((e) => [...e.data])).toEqual([[1, 2, 3]])
    } finally {
      expect(await authed.stop()).toBe(0)
    }
  })
})
