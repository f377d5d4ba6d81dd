import { describe, expect, it } from 'vitest'
import { execFileSync } from 'node:child_process'
import { mkdtempSync } from 'node:fs'
import { join } from 'node:path'
import { tmpdir } from 'node:os'
import * as Y from 'yjs'
import { startServer } from '../helpers/server.ts'
import { frameType, rawSync, syncMessage, uintMessage } from '../helpers/clients.ts'
import { MessageType } from '../../src/protocol/messages.ts'
import { openSqliteStore } from '../../server/store/sqlite.ts'

describe('online backup command', () => {
  it('copies the live database while the server keeps running', async () => {
    const server = await startServer()
    const raw = await rawSync(server.wsUrl, '/sync/backed')
    const doc = new Y.Doc()
    doc.getText('text').insert(0, 'keep a copy of me')
    raw.send(syncMessage(2, Y.encodeStateAsUpdate(doc)))
    raw.send(uintMessage(MessageType.durableQuery, 1))
    await raw.waitFor((f) => frameType(f) === MessageType.durableAck)
    const copyDir = mkdtempSync(join(tmpdir(), 'murmur-copy-'))
    const out = execFileSync(process.execPath, ['--import', 'tsx', 'server/main.ts', 'backup', join(copyDir, 'murmur.db'), '--data', server.dataDir]).toString()
    expect(out).toContain('backed up')
    // The server is still serving while and after the copy is taken.
    raw.send(uintMessage(MessageType.durableQuery, 2))
    await raw.waitFor((f) => frameType(f) === MessageType.durableAck && f[1] === 2)
    raw.ws.close()
    expect(await server.stop()).toBe(0)
    const copy = openSqliteStore(copyDir)
    const stored = await copy.load('backed')
    await copy.close()
    const restored = new Y.Doc()
    for (const u of stored.updates) Y.applyUpdate(restored, u)
    expect(restored.getText('text').toString()).toBe('keep a copy of me')
  })
})
