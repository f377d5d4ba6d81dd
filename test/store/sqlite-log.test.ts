import Database from 'better-sqlite3'
import { join } from 'node:path'
import { mkdtempSync } from 'node:fs'
import { tmpdir } from 'node:os'
import pino from 'pino'
import { expect, test } from 'vitest'
import { openSqliteLogStore } from '../../server/store/sqlite-log.ts'
import { openSqliteStore } from '../../server/store/sqlite.ts'
import { logStoreContract } from './log-contract.ts'

logStoreContract('sqlite', (dir) => openSqliteLogStore(dir, { log: pino({ level: 'silent' }) }))
logStoreContract('sqlite without group commit', (dir) => openSqliteLogStore(dir, { log: pino({ level: 'silent' }), groupCommit: false }))

test('the log shares murmur.db with the plain store, and a row whose checksum fails is skipped, not fatal', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'murmur-log-'))
  const plain = openSqliteStore(dir, { log: pino({ level: 'silent' }) })
  const lines: string[] = []
  const logs = openSqliteLogStore(dir, { log: pino({ level: 'warn' }, { write: (s: string) => lines.push(s) }) })
  await plain.append('p', [new Uint8Array([1])])
  await logs.append('d', new Uint8Array(32).fill(1), [new Uint8Array([1]), new Uint8Array([2])])
  const db = new Database(join(dir, 'murmur.db'))
  db.prepare("UPDATE log_entries SET data = x'ff' WHERE doc_id = 'd' AND seq = 1").run()
  db.close()
  const r = await logs.read('d', 0)
  expect(r.entries.map((e) => e.seq)).toEqual([2])
  expect(lines.join('')).toContain('checksum')
  expect((await plain.load('p')).updates.length).toBe(1)
  await logs.close()
  await plain.close()
})
