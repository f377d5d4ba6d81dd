/**
 * Crash safety of the real server under concurrent writers, short version:
 * four seeded kill -9 rounds through the shared driver (`bench/lib/crash-driver.ts`),
 * one with a torn WAL tail, one with garbage appended, one with a stale and
 * one with a missing `-shm`. The long version is `npm run soak -- --crash`.
 * Re-run a failure with `MURMUR_CRASH_SEED=<seed>` (printed).
 */
import { expect, it } from 'vitest'
import { runCrashRounds } from '../../bench/lib/crash-driver.ts'

const seed = Number(process.env.MURMUR_CRASH_SEED || Date.now() % 100_000)

it(`keeps every acknowledged update through kill -9, torn WAL tails and odd -shm files (seed ${seed})`, async () => {
  console.log(`crash: seed ${seed} (re-run: MURMUR_CRASH_SEED=${seed} npx vitest run test/sync/crash.test.ts)`)
  const run = await runCrashRounds({ seed, rounds: 4, rooms: 2, writersPerRoom: 2, tampers: ['tear', 'shm-stale', 'garbage', 'shm-missing'], earlyShare: 0, maxKillDelayMs: 300 })
  const where = `seed ${seed} (re-run: MURMUR_CRASH_SEED=${seed} npx vitest run test/sync/crash.test.ts; data kept in ${run.dataDir})`
  expect(run.failures, where).toEqual([])
  expect(run.rounds, where).toHaveLength(4)
  expect(run.finalExit, where).toBe(0)
  // Meaningful only if kills landed mid-write and the torn tails were really there and reported.
  for (const r of run.rounds) {
    expect(r.acked, `${where}: round ${r.round} confirmed updates before its kill`).toBeGreaterThan(0)
    expect(r.warned, `${where}: round ${r.round} start-up warned about the unclean shutdown`).toBe(true)
  }
  for (const r of run.rounds.filter((x) => x.tamper === 'tear' || x.tamper === 'garbage')) {
    expect(r.torn, `${where}: round ${r.round} made a torn tail`).toBe(true)
    expect(r.discardedBytes + r.staleBytes, `${where}: round ${r.round}: all of the tail accounted for in the warning`).toBe(r.tailBytes)
  }
  // A tear is written where the next frame goes (this cycle's salts), so it is always reported as discarded.
  expect(run.rounds[0]!.discardedBytes, `${where}: the torn tail of round 0 was reported as discarded`).toBeGreaterThan(0)
  expect(run.rounds.at(-1)!.checked, where).toBe(run.rounds.reduce((s, r) => s + r.acked, 0))
}, 60_000) // ~6 s on an idle 2-core machine (measured): four server restarts
