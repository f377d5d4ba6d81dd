import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import * as Y from 'yjs'
import { startServer, type ServerProcess } from '../helpers/server.ts'
import { frameType, rawSync, syncMessage, untilDoc, yClient } from '../helpers/clients.ts'
import { mintToken } from '../../server/auth.ts'
import { CloseCode, MessageType } from '../../src/protocol/messages.ts'

const secret = 'test-secret-0123456789'

describe('access control on /sync', () => {
  let server: ServerProcess
  beforeAll(async () => {
    server = await startServer({ args: ['--auth-secret', secret] })
  })
  afterAll(async () => {
    await server?.stop()
  })

  const close = async (path: string) => (await (await rawSync(server.wsUrl, path)).closed).code

  it('refuses missing, forged, expired and other-document tokens with 4401', async () => {
    expect(await close('/sync/doc1')).toBe(CloseCode.unauthorized)
    expect(await close(`/sync/doc1?token=${mintToken('other-secret', 'doc1', 'rw', 60)}`)).toBe(CloseCode.unauthorized)
    expect(await close(`/sync/doc1?token=${mintToken(secret, 'doc1', 'rw', 60, Date.now() - 120_000)}`)).toBe(CloseCode.unauthorized)
    expect(await close(`/sync/doc1?token=${mintToken(secret, 'doc2', 'rw', 60)}`)).toBe(CloseCode.unauthorized)
    expect(await close('/sync/doc1?token=garbage.token')).toBe(CloseCode.unauthorized)
  })

  it('lets read-write tokens edit and read-only tokens only read', async () => {
    const writer = yClient(server.wsUrl, 'doc1', { params: { token: mintToken(secret, 'doc1', 'rw', 60) } })
    const reader = yClient(server.wsUrl, 'doc1', { params: { token: mintToken(secret, 'doc1', 'r', 60) } })
    await Promise.all([writer.synced, reader.synced])
    writer.text.insert(0, 'written by the writer')
    await untilDoc(reader.doc, () => reader.text.toString() === 'written by the writer', 'reader receives')
    // A raw read-only socket's write is refused with a permission-denied auth message.
    const raw = await rawSync(server.wsUrl, `/sync/doc1?token=${mintToken(secret, 'doc1', 'r', 60)}`)
    const rogue = new Y.Doc()
    rogue.getText('text').insert(0, 'vandalism ')
    raw.send(syncMessage(2, Y.encodeStateAsUpdate(rogue)))
    await raw.waitFor((f) => frameType(f) === MessageType.auth)
    raw.ws.close()
    reader.text.insert(0, 'reader edit ')
    writer.text.insert(writer.text.length, '.')
    await untilDoc(reader.doc, () => reader.text.toString().endsWith('.'), 'reader receives again')
    expect(writer.text.toString()).toBe('written by the writer.')
    writer.destroy()
    reader.destroy()
  })

  it('mints tokens from the command line', async () => {
    const { execFileSync } = await import('node:child_process')
    const token = execFileSync(process.execPath, ['--import', 'tsx', 'server/main.ts', 'token', '--doc', 'doc1', '--mode', 'r', '--ttl', '60'], {
      env: { ...process.env, MURMUR_AUTH_SECRET: secret },
      stdio: ['ignore', 'pipe', 'ignore'],
    }).toString().trim()
    const raw = await rawSync(server.wsUrl, `/sync/doc1?token=${token}`)
    raw.send(syncMessage(0, new Uint8Array([0])))
    await raw.waitFor((f) => f[0] === 0 && f[1] === 1)
    raw.ws.close()
  })
})
