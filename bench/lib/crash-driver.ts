/**
 * Crash-safety driver shared by `test/sync/crash.test.ts` (a few rounds) and
 * `npm run soak -- --crash` (50 rounds): the real server process
 * (`test/helpers/server.ts`) on a real SQLite file in a temp dir, several
 * rooms each written by several raw y-websocket clients over real sockets
 * (`crash-writer.ts`), and per round:
 *
 * 1. writers connect, sync and append as fast as their windows of durable
 *    queries allow; after the first `minAcks` confirmations (or, in "early"
 *    rounds, while the rooms are still loading and compacting) the server is
 *    killed with SIGKILL at a seeded random moment;
 * 2. the data directory is tampered with as a crash might leave it
 *    (`crash-tamper.ts`: torn WAL tail, garbage, missing/empty/stale -shm);
 * 3. the server is restarted on it, which must succeed; its log must hold the
 *    unclean-shutdown warning with exactly the committed frames the kill left
 *    and the tail the tampering made;
 * 4. the database file is checked (`crash-check.ts`: CRCs, Yjs loads, no
 *    pending structs) and every room is fetched through the server by a fresh
 *    client: every chunk ever confirmed by `[101, n]`, in this round or an
 *    earlier one, must be in both, and both texts must be equal.
 *
 * All decisions (kill moments, tampering, filler) come from the seed, so a
 * seed replays the same plan; the interleaving of writes within a round
 * depends on timing and is not reproduced exactly.
 */
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { SQLITE_FILE_NAME } from '../../server/store/sqlite.ts'
import { startServer, type ServerProcess } from '../../test/helpers/server.ts'
import { checkDatabase } from './crash-check.ts'
import { applyTamper, saveShm, TAMPERS, type Tamper } from './crash-tamper.ts'
import { CHUNK_RE, CrashWriter, fetchThroughServer } from './crash-writer.ts'

/** Options of `runCrashRounds`. */
export interface CrashRunOptions {
  seed: number
  rounds: number
  /** Documents written concurrently. Default 4. */
  rooms?: number
  /** Writing sockets per document. Default 3. */
  writersPerRoom?: number
  /** Tampering per round, cycled; default: drawn from the seed (a quarter of rounds untouched). */
  tampers?: Tamper[]
  /** Confirmations (all writers together) before the kill timer starts. Default 20. */
  minAcks?: number
  /** Longest random delay between those confirmations and the kill. Default 600 ms. */
  maxKillDelayMs?: number
  /** Share of rounds killed while the rooms load instead of mid-write. Default 0.1. */
  earlyShare?: number
  /** Start no new round after this many seconds. Default: no limit. */
  maxSeconds?: number
  /** Extra server flags. */
  serverArgs?: string[]
  /** Called after each round (progress lines). */
  onRound?: (r: CrashRound) => void
}

/** What happened in one round. */
export interface CrashRound {
  round: number
  tamper: Tamper
  /** For `tear`: whether uncommitted frames were cut or a partial frame written after the last commit. */
  how?: 'cut' | 'partial-frame'
  /** A torn tail or garbage was made in this round. */
  torn: boolean
  /** Killed while the rooms were loading rather than mid-write. */
  early: boolean
  /** ms from the kill timer's start (first `minAcks` confirmations, or sockets opened) to SIGKILL. */
  killAfterMs: number
  /** Chunks sent / confirmed in this round. */
  sent: number
  acked: number
  /** Confirmed chunks checked after the restart (this round and all earlier ones). */
  checked: number
  /** Confirmed chunks missing after the restart (must be 0). */
  lost: number
  /** WAL bytes the kill left and committed frames in it. */
  walBytes: number
  committedFrames: number
  /** Bytes after the last commit frame after tampering (stale frames of an earlier log cycle included). */
  tailBytes: number
  /** The server warned about the unclean shutdown / about discarding a tail of `discardedBytes`. */
  warned: boolean
  discardedBytes: number
  /** Bytes left from an earlier log cycle that the warning counted separately. */
  staleBytes: number
  /** Of those, what the kill itself left (before tampering). */
  staleBefore: number
  /** What the kill itself left after the last commit frame and recovery discards (before tampering). */
  discardableBefore: number
  restartMs: number
  /** Rows in the database after the restart, over all documents. */
  rows: number
  /** Failed checks (empty when the round passed). */
  failures: string[]
}

/** What `runCrashRounds` returns. */
export interface CrashRun {
  seed: number
  rounds: CrashRound[]
  /** Every failed check, prefixed with its round. */
  failures: string[]
  /** Exit code of the final SIGTERM stop (0 expected). */
  finalExit: number | null
  ms: number
  /** Kept when a check failed, removed otherwise. */
  dataDir: string
}

/** mulberry32: small seeded PRNG (the same one the other seeded tests use). */
export function prng(seed: number): () => number {
  return () => {
    seed = (seed + 0x6d2b79f5) | 0
    let t = Math.imul(seed ^ (seed >>> 15), 1 | seed)
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296
  }
}

const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms))

/** Draws the tampering of a round: none 25%, tear 25%, garbage 15%, each -shm case 10–15%. */
function drawTamper(rand: () => number): Tamper {
  const x = rand()
  return x < 0.25 ? 'none' : x < 0.5 ? 'tear' : x < 0.65 ? 'garbage' : x < 0.75 ? 'shm-missing' : x < 0.85 ? 'shm-empty' : 'shm-stale'
}

interface LogLine {
  level: number
  msg: string
  [k: string]: unknown
}
function logLines(output: string): LogLine[] {
  const out: LogLine[] = []
  for (const line of output.split('\n')) {
    if (!line.startsWith('{')) continue
    try {
      out.push(JSON.parse(line))
    } catch {
      /* a line cut by the kill */
    }
  }
  return out
}

/** Resolves once the server's output matches `re`, or after `timeoutMs` (the caller then checks and reports). */
function untilOutput(server: ServerProcess, re: RegExp, timeoutMs: number): Promise<void> {
  if (re.test(server.output())) return Promise.resolve()
  return new Promise((resolve) => {
    const done = () => {
      clearTimeout(timer)
      server.child.stdout!.off('data', onData)
      resolve()
    }
    const onData = () => re.test(server.output()) && done()
    const timer = setTimeout(done, timeoutMs)
    server.child.stdout!.on('data', onData)
  })
}

/** Runs the rounds; see the module comment. Never throws for a failed check: they are in `failures`. */
export async function runCrashRounds(opts: CrashRunOptions): Promise<CrashRun> {
  const started = Date.now()
  const rand = prng(opts.seed)
  const rooms = Array.from({ length: opts.rooms ?? 4 }, (_, i) => `crash-${i}`)
  const writersPerRoom = opts.writersPerRoom ?? 3
  const minAcks = opts.minAcks ?? 20
  const maxDelay = opts.maxKillDelayMs ?? 600
  const serverArgs = ['--max-sync-rate', '1000000', '--max-connections-per-ip', '100000', '--compact-after-updates', '300', ...(opts.serverArgs ?? [])]
  const dataDir = mkdtempSync(join(tmpdir(), 'murmur-crash-'))
  const dbFile = join(dataDir, SQLITE_FILE_NAME)
  const confirmed = new Map<string, Set<string>>(rooms.map((r) => [r, new Set()]))
  const result: CrashRun = { seed: opts.seed, rounds: [], failures: [], finalExit: null, ms: 0, dataDir }
  let staleShm: Buffer | null = null
  let server: ServerProcess | null = await startServer({ dataDir, args: serverArgs })
  const deadline = opts.maxSeconds ? started + opts.maxSeconds * 1000 : Infinity

  try {
    for (let round = 0; round < opts.rounds && Date.now() < deadline && server; round++) {
      const early = rand() < (opts.earlyShare ?? 0.1)
      const killAfterMs = Math.floor(rand() * (early ? 60 : maxDelay))
      const tamper = opts.tampers ? opts.tampers[round % opts.tampers.length]! : drawTamper(rand)
      const r: CrashRound = { round, tamper, torn: false, early, killAfterMs, sent: 0, acked: 0, checked: 0, lost: 0, walBytes: 0, committedFrames: 0, tailBytes: 0, warned: false, discardedBytes: 0, staleBytes: 0, staleBefore: 0, discardableBefore: 0, restartMs: 0, rows: 0, failures: [] }
      const fail = (msg: string) => r.failures.push(msg)

      // 1. Write, then kill.
      const writers = rooms.flatMap((docId, ri) =>
        Array.from({ length: writersPerRoom }, (_, w) => ({ docId, writer: new CrashWriter({ wsUrl: server!.wsUrl, docId, tag: `r${round}w${ri * writersPerRoom + w}`, rand: prng(opts.seed * 7919 + round * 131 + ri * 17 + w) }) })),
      )
      if (!early) {
        const synced = await Promise.allSettled(writers.map((w) => w.writer.synced))
        const bad = synced.filter((s) => s.status === 'rejected')
        if (bad.length) fail(`${bad.length} writers could not sync: ${(bad[0] as PromiseRejectedResult).reason}`)
        let onEnough!: () => void
        const enough = new Promise<void>((res) => (onEnough = res))
        const total = () => writers.reduce((s, w) => s + w.writer.acked.length, 0)
        for (const { writer } of writers) writer.start(() => total() >= minAcks && onEnough())
        const timeout = sleep(20_000).then(() => 'timeout' as const)
        if ((await Promise.race([enough, timeout])) === 'timeout') fail(`fewer than ${minAcks} confirmations within 20 s`)
      } else {
        for (const { writer } of writers) void writer.synced.then(() => writer.start(), () => {})
      }
      await sleep(killAfterMs)
      const exit = await server.stop('SIGKILL')
      if (exit !== null) fail(`server had exited on its own with ${exit} before the kill`)
      for (const { writer } of writers) writer.stop()
      await Promise.all(writers.map((w) => w.writer.destroy()))
      for (const { docId, writer } of writers) {
        r.sent += writer.sent
        r.acked += writer.acked.length
        for (const id of writer.acked) confirmed.get(docId)!.add(id)
      }

      // 2. Tamper.
      const shmNow = saveShm(dbFile)
      const t = applyTamper(dbFile, tamper, rand, staleShm)
      staleShm = shmNow ?? staleShm
      r.how = t.how
      r.torn = t.torn
      r.walBytes = t.before.fileBytes
      r.committedFrames = t.before.committedFrames
      r.tailBytes = t.tailBytes
      r.staleBefore = t.before.staleBytes
      r.discardableBefore = t.before.discardedBytes

      // 3. Restart: must succeed, and say what it recovered and discarded.
      const t0 = performance.now()
      try {
        server = await startServer({ dataDir, args: serverArgs })
      } catch (err) {
        server = null
        fail(`start-up failed: ${(err as Error).message.slice(0, 2000)}`)
        result.rounds.push(r)
        break
      }
      r.restartMs = performance.now() - t0
      // pino writes asynchronously, so its start-up lines may arrive after the "serving" line.
      const existed = t.before.fileBytes > 0 || t.tailBytes > 0
      if (existed) await untilOutput(server, /store: unclean shutdown/, 10_000)
      const warn = logLines(server.output()).find((l) => l.level === 40 && l.msg.startsWith('store: unclean shutdown'))
      r.warned = Boolean(warn)
      if (warn) r.discardedBytes = Number(warn.discardedBytes)
      if (existed && !warn) fail(`no unclean-shutdown warning although the kill left a WAL (${t.before.fileBytes} bytes); server output:\n${server.output().slice(-3000)}`)
      if (warn) {
        if (t.before.headerValid && warn.committedFrames !== t.before.committedFrames) {
          fail(`the warning reports ${warn.committedFrames} committed frames; the kill left ${t.before.committedFrames}`)
        }
        r.staleBytes = Number(warn.staleBytes)
        if (r.discardedBytes + r.staleBytes !== t.tailBytes) fail(`the warning discards ${r.discardedBytes} bytes (+${r.staleBytes} stale); the tail after the last commit is ${t.tailBytes} bytes`)
        // A torn frame is written where the next frame goes, so it is always this cycle's; garbage
        // appended at the end of a file that holds stale frames is (rightly) counted with them.
        const reported = t.before.staleBytes > 0 && tamper === 'garbage' ? r.staleBytes > t.before.staleBytes && /earlier WAL cycle/.test(warn.msg) : r.discardedBytes > 0 && /discarding/.test(warn.msg)
        if (t.torn && !reported) fail(`a torn tail was not reported: ${warn.msg}`)
      }

      // 4. Everything confirmed is there, on disk and through the server.
      let db: ReturnType<typeof checkDatabase> | null = null
      try {
        db = checkDatabase(dbFile)
      } catch (err) {
        fail(`database check failed: ${(err as Error).message}`)
      }
      for (const docId of rooms) {
        const acked = confirmed.get(docId)!
        r.checked += acked.size
        const onDisk = db?.get(docId)
        if (db) {
          r.rows += onDisk?.rows ?? 0
          if (onDisk?.badCrc) fail(`${docId}: ${onDisk.badCrc} rows fail their CRC`)
          if (onDisk?.unappliable) fail(`${docId}: ${onDisk.unappliable} rows do not apply`)
          if (onDisk?.pending) fail(`${docId}: the stored rows leave pending structs (a dependency is missing)`)
        }
        let live: { text: string; pending: boolean } | null = null
        try {
          live = await fetchThroughServer(server.wsUrl, docId)
        } catch (err) {
          fail(`${docId}: fetching through the server failed: ${(err as Error).message}`)
        }
        if (live?.pending) fail(`${docId}: the server's copy has pending structs`)
        if (live && onDisk && live.text !== onDisk.text) fail(`${docId}: the server serves a different text (${live.text.length} chars) than the file holds (${onDisk.text.length})`)
        const liveIds = live ? new Set([...live.text.matchAll(CHUNK_RE)].map((m) => m[1]!)) : null
        const missing = [...acked].filter((id) => !onDisk?.ids.has(id) || (liveIds && !liveIds.has(id)))
        r.lost += missing.length
        if (missing.length) fail(`${docId}: ${missing.length} confirmed chunks lost, e.g. ${missing.slice(0, 5).join(', ')}`)
      }
      for (const l of logLines(server.output())) if (l.level >= 50) fail(`server logged ${l.level === 50 ? 'an error' : 'a fatal'}: ${l.msg}`)
      result.rounds.push(r)
      result.failures.push(...r.failures.map((f) => `round ${round} (${tamper}${early ? ', early kill' : ''}): ${f}`))
      opts.onRound?.(r)
      if (r.failures.length) break
    }
  } finally {
    if (server) result.finalExit = await server.stop('SIGTERM')
    if (result.finalExit !== null && result.finalExit !== 0) result.failures.push(`final SIGTERM exited with ${result.finalExit}`)
    if (result.failures.length === 0) rmSync(dataDir, { recursive: true, force: true })
    result.ms = Date.now() - started
  }
  return result
}

/** Every tampering kind, for callers that want one round of each. */
export { TAMPERS }
