/**
 * Crash safety of the SQLite store: a child process appends (and compacts) in
 * a tight loop and is killed with SIGKILL at seeded random moments; after each
 * kill the store must open cleanly and hold every acknowledged row, byte for
 * byte. Re-run a failure exactly with `MURMUR_SEED=<seed>`.
 *
 * What this does and does not show: SIGKILL loses the process, not the
 * kernel's page cache, so it proves that an acknowledged append was committed
 * (not left in a buffer or an open transaction) and that a half-done
 * transaction is rolled back. Surviving power loss additionally relies on
 * `synchronous=FULL` making SQLite fsync before commit returns, which a test
 * on a live kernel cannot observe.
 */
import Database from 'better-sqlite3'
import { spawn } from 'node:child_process'
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join, resolve } from 'node:path'
import pino from 'pino'
import { afterAll, expect, test } from 'vitest'
import { openSqliteStore, SQLITE_FILE_NAME } from '../../server/store/sqlite.ts'
import { expectSameUpdates, prng, SEED } from './contract.ts'
import { CRASH_DOCS, crashPayload, crashSnapshot } from './crash-payload.ts'

const root = resolve(import.meta.dirname, '../..')
const ROUNDS = 10
const dir = mkdtempSync(join(tmpdir(), 'murmur-crash-'))
afterAll(() => rmSync(dir, { recursive: true, force: true }))

interface Round {
  /** Complete stdout lines printed before the kill. */
  lines: string[]
  stderr: string
}

const sleep = (ms: number) => new Promise<void>((res) => setTimeout(res, ms))

/**
 * Runs the writer and SIGKILLs it `killAfterAckMs` after its first acknowledged
 * append, or, when that is null, `killAfterSpawnMs` after spawning it (maybe
 * before it even opened the store).
 */
async function runWriter(seed: number, killAfterAckMs: number | null, killAfterSpawnMs: number): Promise<Round> {
  const child = spawn(process.execPath, ['--import', 'tsx', join(root, 'test/store/crash-writer.ts'), dir, String(seed)], {
    cwd: root,
    stdio: ['ignore', 'pipe', 'pipe'],
  })
  let out = ''
  let stderr = ''
  let onAck!: () => void
  const acked = new Promise<void>((res) => (onAck = res))
  child.stdout.on('data', (d) => {
    out += d
    if (/^A .*\n/m.test(out)) onAck()
  })
  child.stderr.on('data', (d) => (stderr += d))
  const exited = new Promise<void>((res) => child.once('exit', () => res()))
  const kill = killAfterAckMs === null ? sleep(killAfterSpawnMs) : acked.then(() => sleep(killAfterAckMs))
  await Promise.race([kill, exited]) // an exit on its own shows up in stderr, checked by the caller
  child.kill('SIGKILL')
  await exited
  // Only complete lines count: a line cut by the kill was not fully acknowledged to us.
  const lines = out.slice(0, out.lastIndexOf('\n') + 1).split('\n').filter(Boolean)
  return { lines, stderr }
}

test(`every acknowledged append survives kill -9 of the writer (seed ${SEED}, ${ROUNDS} rounds)`, async () => {
  const rand = prng(SEED)
  const lastSeen = new Map<string, number>(CRASH_DOCS.map((d) => [d, 0]))
  let acknowledged = 0
  let compactions = 0
  let lateRounds = 0
  for (let round = 0; round < ROUNDS; round++) {
    const early = rand() < 0.2 // sometimes kill during start-up (module loading, open, migration)
    if (!early) lateRounds++
    const { lines, stderr } = await runWriter(SEED + round, early ? null : 20 + Math.floor(rand() * 400), Math.floor(rand() * 800))
    const where = `seed ${SEED}, round ${round}`
    expect(stderr, `${where}: writer stderr`).not.toMatch(/Error|warn/i)

    const acked = new Map<string, number>()
    const compacted = new Map<string, number>()
    for (const line of lines) {
      const [kind, doc, seq] = line.split(' ')
      if (kind === 'A') acked.set(doc!, Math.max(acked.get(doc!) ?? 0, Number(seq))), acknowledged++
      else if (kind === 'C') compacted.set(doc!, Math.max(compacted.get(doc!) ?? 0, Number(seq))), compactions++
      else expect(line, where).toBe('ready')
    }

    // The file is sound and opens as a store without warnings.
    const raw = new Database(join(dir, SQLITE_FILE_NAME))
    expect(raw.pragma('integrity_check', { simple: true }), where).toBe('ok')
    raw.close()
    const warnings: string[] = []
    const store = openSqliteStore(dir, { log: pino({ level: 'warn' }, { write: (s: string) => warnings.push(s) }) })
    try {
      for (const doc of CRASH_DOCS) {
        const { updates, lastSeq } = await store.load(doc)
        // Rows are: an optional snapshot at S, then S+1 … lastSeq, each with its exact bytes.
        let first = 1
        const expected: Uint8Array[] = []
        if (updates[0]?.[0] === 2) {
          first = new DataView(updates[0].buffer, updates[0].byteOffset).getUint32(1) + 1
          expected.push(crashSnapshot(doc, first - 1))
        }
        for (let s = first; s <= lastSeq; s++) expected.push(crashPayload(doc, s))
        expectSameUpdates(updates, expected, `${where}, ${doc}:`)
        expect(lastSeq, `${where}, ${doc}: every acknowledged append is there`).toBeGreaterThanOrEqual(acked.get(doc) ?? 0)
        expect(lastSeq, `${where}, ${doc}: nothing from an earlier round was lost`).toBeGreaterThanOrEqual(lastSeen.get(doc)!)
        expect(first - 1, `${where}, ${doc}: an acknowledged compaction is durable`).toBeGreaterThanOrEqual(compacted.get(doc) ?? 0)
        lastSeen.set(doc, lastSeq)
      }
    } finally {
      await store.close()
    }
    expect(warnings, where).toEqual([])
  }
  // Meaningful only if kills landed mid-write: every late round acknowledged appends before its kill.
  expect(acknowledged, `seed ${SEED}: acknowledged appends over all rounds`).toBeGreaterThan(lateRounds)
  console.log(`[crash, seed ${SEED}] ${ROUNDS} kills, ${acknowledged} acknowledged appends, ${compactions} compactions; final seqs ${[...lastSeen].map(([d, s]) => `${d}=${s}`).join(' ')}`)
}, 60_000) // ~5–10 s on an idle 2-core machine (measured); each round starts a tsx child, which gets slow under load
