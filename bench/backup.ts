/**
 * Backup benchmark: murmur's `/sync` (the real server process, SQLite) against
 * Hocuspocus 4 + its SQLite extension and the in-memory y-websocket reference
 * server (`@y/websocket-server`), side by side in one run on this machine.
 *
 *   node --import tsx bench/backup.ts [--quick] [--no-readme] [--no-rss] [--only=durable|fetch|rss]
 *
 * 1. Durable updates/s, as a curve over K sockets (1, 2, 4, 8, 16, 32) each
 *    on its own document, plus 4 and 16 sockets all on one document, append single characters as fast as the server confirms them
 *    (≤ WINDOW unconfirmed per socket; per document when shared). murmur:
 *    durable acks (a query after every update, and after every 8th);
 *    Hocuspocus: updates covered by a finished SQLite store (server-side
 *    counters; with `debounce: 0` and with its defaults); y-websocket-server:
 *    applied in memory (no durability: a ceiling for relaying/applying).
 * 2. Fresh client, large document: documents of 1k/10k/100k/260k edits of the
 *    automerge-paper trace uploaded by one client (waited until persisted);
 *    a fresh client times connect → synced (text length checked), cold (server
 *    just restarted, document loaded from storage) and warm (held loaded).
 * 3. Server RSS per loaded document: 100 documents of 10k edits.
 *
 * Servers run in their own processes (pinned to CPU 0 when possible); every
 * load runs in a separate load-generator process (`bench/lib/backup-load.ts`,
 * CPU 1). Measurements are interleaved across servers in rounds so load from
 * elsewhere on the machine hits each alike; tables show medians. Prints
 * markdown, draws `bench/backup.svg` / `.png` (`bench/lib/chart.ts`: the
 * durable curve and the fetch curve) and writes the tables into the "Backup"
 * section of `bench/README.md` (`--quick`/`--only`: neither; the chart goes
 * to the temp directory).
 */
import { spawn, type ChildProcess } from 'node:child_process'
import { existsSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { createInterface } from 'node:readline'
import { cpus, loadavg, tmpdir } from 'node:os'
import { join } from 'node:path'
import { setTimeout as sleep } from 'node:timers/promises'
import Database from 'better-sqlite3'
import { selfCheck } from './lib/backup-proto.ts'
import { COLORS, renderChart, writeChart, type Panel, type Series } from './lib/chart.ts'
import { killAll, MURMUR_BENCH_FLAGS, removeTempDirs, started, startHocus, startMurmur, startYws, tempDir, type Target } from './lib/backup-servers.ts'
import { cores, pin, root, rssKiB } from './lib/servers.ts'
import { traceSnapshots, type TraceSnapshot } from '../test/helpers/trace.ts'

const quick = process.argv.includes('--quick')
const only = process.argv.find((a) => a.startsWith('--only='))?.slice(7) // durable | fetch | rss: run one section (no README update)
const writeReadme = !process.argv.includes('--no-readme') && !only
const LOAD_CPU = 1
const ROUNDS = quick ? 1 : 3
const MEASURE_MS = 1000
const WARMUP_MS = 300
const WINDOW = 64
const HOCUS0_WINDOW = 8
/** Client counts of the "a doc each" curve (the chart's x axis). */
const CURVE = quick ? [1, 4, 16] : [1, 2, 4, 8, 16, 32]
const CONFIGS = [...CURVE.map((clients) => ({ clients, shared: false })), { clients: 4, shared: true }, { clients: 16, shared: true }]
const SIZES = [1_000, 10_000, 100_000, Infinity]
const FETCH_REPEAT = quick ? 1 : 5
const COLD_COPIES = quick ? 1 : 3
const RSS_DOCS = quick ? 20 : 100
const log = (s: string) => process.stderr.write(`${s}\n`)

const median = (xs: number[]) => {
  const s = xs.filter((x) => Number.isFinite(x)).sort((a, b) => a - b)
  if (s.length === 0) return NaN
  const m = s.length >> 1
  return s.length % 2 ? s[m]! : (s[m - 1]! + s[m]!) / 2
}
const fmt = (x: number) => (Number.isFinite(x) ? Math.round(x).toLocaleString('en-US') : '–')
const ms = (x: number) => (Number.isFinite(x) ? (x < 10 ? x.toFixed(1) : Math.round(x).toLocaleString('en-US')) : '–')
const ratio = (a: number, b: number) => (Number.isFinite(a) && Number.isFinite(b) && b > 0 ? `${(a / b).toFixed(2)}×` : '–')
const label = (c: { clients: number; shared: boolean }) => `${c.clients} client${c.clients > 1 ? 's' : ''}, ${c.shared ? 'one shared doc' : 'a doc each'}`

/** Commit latency of this disk right now (WAL, synchronous=FULL, one tiny row): p50 and p90 in ms. */
function fsyncProbe(): [number, number] {
  const dir = tempDir('fsync')
  const db = new Database(join(dir, 'probe.db'))
  db.pragma('journal_mode = WAL')
  db.pragma('synchronous = FULL')
  db.exec('CREATE TABLE t (x BLOB)')
  const ins = db.prepare('INSERT INTO t VALUES (?)')
  const t: number[] = []
  for (let i = 0; i < 40; i++) {
    const t0 = performance.now()
    ins.run(Buffer.alloc(32))
    t.push(performance.now() - t0)
  }
  db.close()
  rmSync(dir, { recursive: true, force: true })
  t.sort((a, b) => a - b)
  return [t[20]!, t[36]!]
}

/** The long-lived load-generator process (`bench/lib/backup-load.ts`): one job at a time. */
class Loader {
  private child!: ChildProcess
  private lines: string[] = []
  private waiting: ((line: string) => void) | null = null
  async start(): Promise<void> {
    this.child = spawn(process.execPath, ['--import', 'tsx', 'bench/lib/backup-load.ts'], { cwd: root, stdio: ['pipe', 'pipe', 'inherit'] })
    pin(this.child.pid!, LOAD_CPU)
    createInterface({ input: this.child.stdout! }).on('line', (line) => {
      if (this.waiting) {
        const w = this.waiting
        this.waiting = null
        w(line)
      } else this.lines.push(line)
    })
    this.child.once('exit', (code) => {
      if (code !== 0) {
        log(`load generator exited with ${code}`)
        for (const t of started) log(`server ${t.proto} (pid ${t.pid}): exit code ${t.child.exitCode}, signal ${t.child.signalCode}; output:\n${t.output().slice(-2000)}`)
        killAll()
        process.exit(1)
      }
    })
  }
  async run<T>(job: object): Promise<T> {
    this.child.stdin!.write(JSON.stringify(job) + '\n')
    const line = this.lines.shift() ?? (await new Promise<string>((res) => (this.waiting = res)))
    const r = JSON.parse(line) as T & { error?: string }
    if (r.error) throw new Error(`load generator: ${r.error}`)
    return r
  }
  async stop(): Promise<void> {
    this.child.stdin!.end()
    await new Promise((res) => this.child.once('exit', res))
  }
}
const loader = new Loader()

// ───────────────────────────── 1. durable updates/s ─────────────────────────────

interface RunResult {
  clients: number
  shared: boolean
  sent: number
  seconds: number
  serverCpuSeconds: number | null
  drainMs: number | null
  durable: number | null
  applied: number | null
}

interface Variant {
  key: string
  /** Variants with the same `server` share one server process (default: their own). */
  server?: string
  start: () => Promise<Target>
  /** Unconfirmed updates per socket. */
  window: number
  /** murmur: durable query after every this many updates. */
  queryEvery?: number
  /** How long to wait, after sending stops, for everything to be confirmed (0: don't). */
  drainMs: (round: number) => number
  /** Rounds to run (default ROUNDS). */
  rounds?: number
}

let hocusInfo = ''
const VARIANTS: Variant[] = [
  { key: 'murmur', start: () => startMurmur(tempDir('m')), window: WINDOW, drainMs: () => 3000 },
  // Same server, client asking only after every 8th update: what per-update acks cost (comparable to the y-websocket-server probe below).
  { key: 'murmur8', server: 'murmur', start: () => startMurmur(tempDir('m')), window: WINDOW, queryEvery: 8, drainMs: () => 3000 },
  {
    key: 'hocus0',
    start: async () => {
      const t = await startHocus(tempDir('h0'), { debounce: 0 })
      hocusInfo = t.info
      return t
    },
    // Every applied update queues one full-document store that runs to completion before the next
    // event-loop turn, so a small window already saturates it; a large one only leaves a long queue
    // of stores behind (seconds per config) that the next configuration would have to wait out.
    window: HOCUS0_WINDOW,
    drainMs: () => 8000,
  },
  // Durable is ~0 within a window by construction (debounce 2 s, maxDebounce 10 s): one round, with the drain measured.
  { key: 'hocusDefault', start: () => startHocus(tempDir('hd')), window: WINDOW, drainMs: () => 4000, rounds: 1 },
  { key: 'yws', start: () => startYws(), window: WINDOW, drainMs: () => 3000 },
]

async function durableSection() {
  const results = new Map<string, RunResult[]>() // `${variant}/${configIndex}` → one per round
  // Every server stays up for the whole section (start-up is slow on a busy machine); each run uses new documents.
  const targets = new Map<string, Target>()
  for (const v of VARIANTS) if (!targets.has(v.server ?? v.key)) targets.set(v.server ?? v.key, await v.start())
  try {
    for (let round = 0; round < ROUNDS; round++) {
      for (const v of VARIANTS) {
        if (round >= (v.rounds ?? ROUNDS)) continue
        const t = targets.get(v.server ?? v.key)!
        const job = { mode: 'durable', proto: t.proto, host: '127.0.0.1', port: t.port, runs: CONFIGS, window: v.window, queryEvery: v.queryEvery, warmupMs: WARMUP_MS, measureMs: MEASURE_MS, drainMs: v.drainMs(round), serverPid: t.pid, series: t.series, docPrefix: `${v.key}-r${round}` }
        const { results: rs } = await loader.run<{ results: RunResult[] }>(job)
        for (const r of rs) {
          const i = CONFIGS.findIndex((c) => c.clients === r.clients && c.shared === r.shared)
          const key = `${v.key}/${i}`
          results.set(key, [...(results.get(key) ?? []), r])
          const rate = (r.durable ?? r.applied ?? 0) / r.seconds
          log(`durable round ${round + 1} ${v.key} ${label(r)}: ${fmt(rate)}/s confirmed${r.applied != null && r.durable != null ? ` (${fmt(r.applied / r.seconds)}/s applied)` : ''}, server CPU ${r.serverCpuSeconds?.toFixed(2)} s, drain ${r.drainMs == null ? '–' : Math.round(r.drainMs)} ms`)
        }
      }
    }
  } finally {
    for (const t of targets.values()) await t.kill()
  }
  const rate = (key: string, i: number, f: (r: RunResult) => number | null) => median((results.get(`${key}/${i}`) ?? []).map((r) => (f(r) ?? NaN) / r.seconds))
  const cpuUs = (key: string, i: number, f: (r: RunResult) => number | null) =>
    median((results.get(`${key}/${i}`) ?? []).map((r) => ((r.serverCpuSeconds ?? NaN) * 1e6) / Math.max(1, f(r) ?? NaN)))
  const drain = (key: string, i: number) => {
    const d = (results.get(`${key}/${i}`) ?? []).map((r) => r.drainMs).filter((x) => x !== null) as number[]
    return d.length ? ms(median(d)) : 'not measured'
  }
  const rows = [
    '| load | murmur: durable/s | murmur, query every 8th update: durable/s | Hocuspocus `debounce: 0`: durable/s | Hocuspocus defaults: durable/s (applied/s) | y-websocket-server: applied/s, not durable | murmur ÷ Hocuspocus `debounce: 0` | murmur ÷ y-websocket-server | murmur (every 8th) ÷ y-websocket-server |',
    '| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |',
    ...CONFIGS.map((c, i) => {
      const m = rate('murmur', i, (r) => r.durable)
      const m8 = rate('murmur8', i, (r) => r.durable)
      const h0 = rate('hocus0', i, (r) => r.durable)
      const hd = rate('hocusDefault', i, (r) => r.durable)
      const hdA = rate('hocusDefault', i, (r) => r.applied)
      const y = rate('yws', i, (r) => r.applied)
      return `| ${label(c)} | ${fmt(m)} | ${fmt(m8)} | ${fmt(h0)} | ${fmt(hd)} (${fmt(hdA)}) | ${fmt(y)} | ${ratio(m, h0)} | ${ratio(m, y)} | ${ratio(m8, y)} |`
    }),
  ]
  const cpuRows = [
    '| load | murmur | murmur, query every 8th | Hocuspocus `debounce: 0` | Hocuspocus defaults (per applied) | y-websocket-server (per applied) |',
    '| --- | ---: | ---: | ---: | ---: | ---: |',
    ...CONFIGS.map(
      (c, i) =>
        `| ${label(c)} | ${ms(cpuUs('murmur', i, (r) => r.durable))} | ${ms(cpuUs('murmur8', i, (r) => r.durable))} | ${ms(cpuUs('hocus0', i, (r) => r.durable))} | ${ms(cpuUs('hocusDefault', i, (r) => r.applied))} | ${ms(cpuUs('yws', i, (r) => r.applied))} |`,
    ),
  ]
  const drainRows = [
    '| load | murmur: all durable | murmur, query every 8th: all durable | Hocuspocus `debounce: 0`: all stored | Hocuspocus defaults: all stored | y-websocket-server: all applied |',
    '| --- | ---: | ---: | ---: | ---: | ---: |',
    ...CONFIGS.map((c, i) => `| ${label(c)} | ${drain('murmur', i)} | ${drain('murmur8', i)} | ${drain('hocus0', i)} | ${drain('hocusDefault', i)} | ${drain('yws', i)} |`),
  ]
  // The "a doc each" curve, for the chart: rate (per second) and server CPU µs per confirmed update.
  const curve = (key: string, f: (r: RunResult) => number | null) =>
    CURVE.map((clients) => CONFIGS.findIndex((c) => c.clients === clients && !c.shared)).map((i) => ({ rate: rate(key, i, f), cpuUs: cpuUs(key, i, f) }))
  const chart: DurableCurves = {
    murmur: curve('murmur', (r) => r.durable),
    murmur8: curve('murmur8', (r) => r.durable),
    hocus0: curve('hocus0', (r) => r.durable),
    hocusDefaultApplied: curve('hocusDefault', (r) => r.applied),
    yws: curve('yws', (r) => r.applied),
  }
  return { rows, cpuRows, drainRows, chart }
}

/** Per variant, one point per `CURVE` client count (a doc each): confirmed updates/s and server CPU µs per confirmed update. */
type DurableCurves = Record<'murmur' | 'murmur8' | 'hocus0' | 'hocusDefaultApplied' | 'yws', { rate: number; cpuUs: number }[]>

// ───────────────────────────── 2. fresh client, large document ─────────────────────────────

interface FetchResult {
  cold: number[] | null
  coldRecv: number[] | null
  coldCpu: number[] | null
  warm: Record<string, number[][]>
  warmRecv: number[][]
  warmCpu: number[][]
  applyMs: number[]
}

async function fetchSection(snaps: TraceSnapshot[], files: string[], warmFile: string) {
  // Copy 'a' of every size is held loaded for the warm fetches; COLD_COPIES more copies give that many cold loads per size from one restart.
  const copies = Array.from({ length: COLD_COPIES }, (_, c) => String.fromCharCode(98 + c))
  const name = (i: number, copy: string) => `trace-${snaps[i]!.edits}-${copy}`
  const coldDocs = copies.flatMap((c) => snaps.map((_, i) => name(i, c)))
  const coldLengths = copies.flatMap(() => snaps.map((s) => s.textLength))
  const docs = snaps.map((_, i) => name(i, 'a'))
  const lengths = snaps.map((s) => s.textLength)
  const seedAll = (t: Target) =>
    loader.run({ mode: 'seed', proto: t.proto, host: '127.0.0.1', port: t.port, docs: [...docs, ...coldDocs, 'warmup'], files: [...files, ...copies.flatMap(() => files), warmFile], parallel: 1 })
  // The first client kind does the cold pass; 'raw' first everywhere, so every server is compared with the same client.
  const fetchJob = (t: Target, cold: boolean, clients: string[]) =>
    loader.run<FetchResult>({
      mode: 'fetch', proto: t.proto, host: '127.0.0.1', port: t.port, docs, textLength: lengths, clients, repeat: FETCH_REPEAT,
      ...(cold ? { coldDocs, coldLengths, warmupDocs: ['warmup'] } : {}), updateFile: warmFile, serverPid: t.pid,
    })

  const acc: Record<string, number[][]> = {}
  const add = (key: string, values: number[] | undefined | null, sizeOf: (k: number) => number) => {
    acc[key] ??= snaps.map(() => [])
    values?.forEach((v, k) => acc[key]![sizeOf(k)]!.push(v))
  }
  const record = (who: string, r: FetchResult) => {
    const cold = (k: number) => k % snaps.length
    add(`${who} cold`, r.cold, cold)
    add(`${who} cold recv`, r.coldRecv, cold)
    add(`${who} cold cpu`, r.coldCpu, cold)
    r.warmCpu.forEach((xs, i) => add(`${who} warm cpu`, xs, () => i))
    for (const [kind, key] of [['raw', 'warm'], ['stock', 'warm stock']] as const) {
      r.warm[kind]?.forEach((xs, i) => add(`${who} ${key}`, xs, () => i))
    }
    r.warmRecv.forEach((xs, i) => add(`${who} warm recv`, xs, () => i))
    add('apply', r.applyMs, (k) => k)
  }
  // murmur and Hocuspocus: upload, stop (flushes), start again on the same storage: every document is cold.
  for (const [who, start] of [
    ['murmur', (dir: string) => startMurmur(dir)],
    ['hocus', (dir: string) => startHocus(dir)],
  ] as const) {
    const dir = tempDir(`fetch-${who}`)
    let t = await start(dir)
    await seedAll(t)
    await t.stop()
    t = await start(dir)
    try {
      record(who, await fetchJob(t, true, who === 'hocus' ? ['raw'] : ['raw', 'stock']))
    } finally {
      await t.stop()
    }
    log(`fetch ${who} done`)
  }
  const yws = await startYws()
  try {
    await seedAll(yws)
    record('yws', await fetchJob(yws, false, ['raw', 'stock']))
  } finally {
    await yws.stop()
  }
  const med = (key: string, i: number) => median(acc[key]?.[i] ?? [])
  const cell = (name: string, kind: string, i: number) => `${ms(med(`${name} ${kind}`, i))} (${ms(med(`${name} ${kind} recv`, i))})`
  const rows = [
    '| document (automerge-paper) | murmur cold | Hocuspocus cold | murmur warm | Hocuspocus warm | y-websocket-server warm | murmur warm, stock provider | y-websocket-server warm, stock provider | client apply alone | murmur ÷ Hocuspocus cold: total (answer) | murmur ÷ Hocuspocus warm: total (answer) | murmur ÷ y-websocket-server warm: total (answer) |',
    '| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |',
    ...snaps.map((s, i) => {
      const v = (k: string) => med(k, i)
      const both = (a: string, b: string) => `${ratio(v(a), v(b))} (${ratio(v(`${a} recv`), v(`${b} recv`))})`
      return (
        `| ${fmt(s.edits)} edits (${fmt(s.textLength)} chars, ${(s.update.byteLength / 1024).toFixed(0)} KiB state) | ${cell('murmur', 'cold', i)} | ${cell('hocus', 'cold', i)} | ${cell('murmur', 'warm', i)} | ${cell('hocus', 'warm', i)} | ${cell('yws', 'warm', i)} | ` +
        `${ms(v('murmur warm stock'))} | ${ms(v('yws warm stock'))} | ${ms(v('apply'))} | ${both('murmur cold', 'hocus cold')} | ${both('murmur warm', 'hocus warm')} | ${both('murmur warm', 'yws warm')} |`
      )
    }),
  ]
  const cpu = (k: string, i: number) => ms(med(`${k} cpu`, i))
  const cpuRatio = (a: string, b: string, i: number) => ratio(med(`${a} cpu`, i), med(`${b} cpu`, i))
  const cpuRows = [
    '| document | murmur cold | Hocuspocus cold | murmur warm | Hocuspocus warm | y-websocket-server warm | murmur ÷ Hocuspocus cold | murmur ÷ Hocuspocus warm | murmur ÷ y-websocket-server warm |',
    '| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |',
    ...snaps.map(
      (s, i) =>
        `| ${fmt(s.edits)} edits | ${cpu('murmur cold', i)} | ${cpu('hocus cold', i)} | ${cpu('murmur warm', i)} | ${cpu('hocus warm', i)} | ${cpu('yws warm', i)} | ${cpuRatio('murmur cold', 'hocus cold', i)} | ${cpuRatio('murmur warm', 'hocus warm', i)} | ${cpuRatio('murmur warm', 'yws warm', i)} |`,
    ),
  ]
  // Per series, one value per size, for the chart: ms to synced and server CPU ms.
  const chartKeys = ['murmur cold', 'hocus cold', 'murmur warm', 'hocus warm', 'yws warm', 'apply']
  const chart: FetchCurves = {
    edits: snaps.map((s) => s.edits),
    ms: Object.fromEntries(chartKeys.map((k) => [k, snaps.map((_, i) => med(k, i))])),
    cpuMs: Object.fromEntries(chartKeys.map((k) => [k, snaps.map((_, i) => med(`${k} cpu`, i))])),
  }
  return { rows, cpuRows, chart }
}

/** Fresh-client curves: document sizes (edits) and, per series key (`murmur cold`, `hocus warm`, `apply`, …), ms to synced and server CPU ms per size. */
interface FetchCurves {
  edits: number[]
  ms: Record<string, number[]>
  cpuMs: Record<string, number[]>
}

// ───────────────────────────── chart ─────────────────────────────

/** The backup chart: durable updates/s and CPU per update against clients (a doc each), fresh-client ms and server CPU against document size. */
function backupChart(d: DurableCurves | null, f: FetchCurves | null, footer: string): string {
  const panels: Panel[] = []
  if (d) {
    const x = { label: 'clients, each on its own document (log scale)', log: true, ticks: CURVE.map((n) => ({ value: n, label: String(n) })), min: CURVE[0]! / 1.25, max: CURVE.at(-1)! * 1.25 }
    const series = (key: 'rate' | 'cpuUs'): Series[] => [
      { name: 'murmur: durable', color: COLORS[0]!, points: CURVE.map((n, i) => ({ x: n, y: d.murmur[i]![key] })) },
      { name: 'murmur, query every 8th: durable', color: '#6baed6', points: CURVE.map((n, i) => ({ x: n, y: d.murmur8[i]![key] })) },
      { name: 'Hocuspocus debounce 0: stored', color: COLORS[1]!, points: CURVE.map((n, i) => ({ x: n, y: d.hocus0[i]![key] })) },
      { name: 'Hocuspocus defaults: applied only (0 durable)', color: COLORS[3]!, dash: '6 4', points: CURVE.map((n, i) => ({ x: n, y: d.hocusDefaultApplied[i]![key] })) },
      { name: 'y-websocket-server: applied, in memory', color: COLORS[2]!, dash: '6 4', points: CURVE.map((n, i) => ({ x: n, y: d.yws[i]![key] })) },
    ]
    panels.push({ title: 'Confirmed updates per second (median of rounds; higher is better)', x, y: { label: 'updates/s (log)', log: true }, series: series('rate'), legend: 'right', height: 230 })
    panels.push({ title: 'Server CPU per confirmed update (lower is better)', x, y: { label: 'µs per update (log)', log: true }, series: series('cpuUs'), legend: 'right', height: 200 })
  }
  if (f) {
    const x = { label: 'document: edits of the automerge-paper trace (log scale)', log: true, ticks: f.edits.map((e) => ({ value: e, label: e.toLocaleString('en-US') })), min: f.edits[0]! / 1.4, max: f.edits.at(-1)! * 1.4 }
    const styles: [string, string, string, string?][] = [
      ['murmur cold', 'murmur, cold (load from SQLite)', COLORS[0]!],
      ['hocus cold', 'Hocuspocus, cold (load from SQLite)', COLORS[1]!],
      ['murmur warm', 'murmur, warm (held loaded)', COLORS[0]!, '6 4'],
      ['hocus warm', 'Hocuspocus, warm', COLORS[1]!, '6 4'],
      ['yws warm', 'y-websocket-server, warm (in memory)', COLORS[2]!, '6 4'],
      ['apply', 'client applying the state alone', '#7f7f7f', '2 3'],
    ]
    const series = (m: Record<string, number[]>): Series[] =>
      styles.filter(([k]) => m[k]!.some(Number.isFinite)).map(([k, name, color, dash]) => ({ name, color, dash, points: f.edits.map((e, i) => ({ x: e, y: m[k]![i]! })) }))
    panels.push({ title: 'Fresh client receives the document: ms from connect to synced (lower is better)', x, y: { label: 'ms (log)', log: true }, series: series(f.ms), legend: 'right', height: 230 })
    panels.push({ title: 'Server CPU per fresh client (lower is better)', x, y: { label: 'server CPU ms (log)', log: true }, series: series(f.cpuMs), legend: 'right', height: 200 })
  }
  return renderChart({ title: 'Backup: murmur /sync vs Hocuspocus + SQLite and y-websocket-server (in memory)', footer, width: 1000, panels })
}

// ───────────────────────────── 3. RSS per loaded document ─────────────────────────────

async function rssSection(file: string) {
  const names = Array.from({ length: RSS_DOCS }, (_, i) => `rss-${i}`)
  /** Runs a holding job (seed with hold, or hold) and returns the RSS growth per doc in KiB. */
  const grow = async (t: Target, job: object) => {
    await sleep(1000)
    const before = rssKiB(t.pid)
    await loader.run({ proto: t.proto, host: '127.0.0.1', port: t.port, docs: names, holdId: 'rss', ...job })
    await sleep(1500)
    const after = rssKiB(t.pid)
    await loader.run({ mode: 'release', proto: t.proto, host: '127.0.0.1', port: t.port, holdId: 'rss' })
    return (after - before) / RSS_DOCS
  }
  const out: Record<string, number> = {}
  const mDir = tempDir('rss-m')
  const hDir = tempDir('rss-h')
  let t = await startMurmur(mDir)
  out['murmur upload'] = await grow(t, { mode: 'seed', updateFile: file, hold: true, parallel: 50 })
  await t.stop()
  t = await startMurmur(mDir)
  out['murmur load'] = await grow(t, { mode: 'hold' })
  await t.stop()
  t = await startHocus(hDir)
  out['hocus upload'] = await grow(t, { mode: 'seed', updateFile: file, hold: true, parallel: 50 })
  await t.stop()
  t = await startHocus(hDir)
  out['hocus load'] = await grow(t, { mode: 'hold' })
  await t.stop()
  t = await startYws()
  out['yws upload'] = await grow(t, { mode: 'seed', updateFile: file, hold: true, parallel: 50 })
  await t.stop()
  const kib = (x: number) => `${Math.round(x).toLocaleString('en-US')} KiB`
  return [
    `| ${RSS_DOCS} documents of 10k edits, each held by one socket | murmur | Hocuspocus + SQLite | y-websocket-server | murmur ÷ Hocuspocus | murmur ÷ y-websocket-server |`,
    '| --- | ---: | ---: | ---: | ---: | ---: |',
    `| RSS growth per document, uploaded by its client | ${kib(out['murmur upload']!)} | ${kib(out['hocus upload']!)} | ${kib(out['yws upload']!)} | ${ratio(out['murmur upload']!, out['hocus upload']!)} | ${ratio(out['murmur upload']!, out['yws upload']!)} |`,
    `| RSS growth per document, loaded from storage after a restart | ${kib(out['murmur load']!)} | ${kib(out['hocus load']!)} | – | ${ratio(out['murmur load']!, out['hocus load']!)} | – |`,
  ]
}

// ───────────────────────────── main ─────────────────────────────

async function main() {
  const t0 = performance.now()
  const load0 = loadavg()[0]
  await selfCheck()
  const snaps = traceSnapshots(SIZES)
  log(`trace: ${snaps.map((s) => `${s.edits} edits → ${s.textLength} chars, ${s.update.byteLength} B`).join('; ')} (full replay verified equal to endContent)`)
  const work = tempDir('files')
  const files = snaps.map((s, i) => {
    const f = join(work, `trace-${i}.bin`)
    writeFileSync(f, s.update)
    return f
  })
  const tenK = files[SIZES.indexOf(10_000)]!
  const [fs50, fs90] = fsyncProbe()
  log(`disk commit latency (WAL, synchronous=FULL): p50 ${fs50.toFixed(1)} ms, p90 ${fs90.toFixed(1)} ms`)

  await loader.start()
  const run = (section: string) => !only || only === section
  const durable = run('durable') ? await durableSection() : { rows: ['(skipped)'], cpuRows: ['(skipped)'], drainRows: ['(skipped)'], chart: null }
  log(durable.rows.join('\n'))
  const fetched = run('fetch') ? await fetchSection(snaps, files, tenK) : { rows: ['(skipped)'], cpuRows: ['(skipped)'], chart: null }
  log(fetched.rows.join('\n'))
  const rss = process.argv.includes('--no-rss') || !run('rss') ? ['(skipped)'] : await rssSection(tenK)
  log(rss.join('\n'))
  await loader.stop()
  removeTempDirs()

  const seconds = (performance.now() - t0) / 1000
  const [fsEnd50, fsEnd90] = fsyncProbe()
  const setup =
    `${cpus()[0]?.model ?? 'unknown CPU'} × ${cores} (shared with other jobs: load average ${load0.toFixed(1)} at the start, ${loadavg()[0].toFixed(1)} at the end), ` +
    `Node ${process.version}, ${hocusInfo || 'Hocuspocus'} (SQLite extension, defaults: journal_mode=delete, synchronous=FULL), @y/websocket-server 0.1.1, ` +
    `murmur with \`${MURMUR_BENCH_FLAGS.join(' ')}\`; disk commit latency p50/p90 ${fs50.toFixed(1)}/${fs90.toFixed(1)} ms at the start, ${fsEnd50.toFixed(1)}/${fsEnd90.toFixed(1)} ms at the end. ` +
    `Servers pinned to CPU 0, load generator to CPU 1. Durable: ≤${WINDOW} unconfirmed updates per socket, or per document when shared (Hocuspocus \`debounce: 0\`: ≤${HOCUS0_WINDOW}), ${WARMUP_MS} ms warm-up + ${MEASURE_MS / 1000} s measured, median of ${ROUNDS} rounds (Hocuspocus defaults: 1). ` +
    `Fetch: warm first (one copy of each document held loaded by another socket), median of ${FETCH_REPEAT} per size and client; then cold, median of ${COLD_COPIES} (${COLD_COPIES} more copies of each document, first loads after one restart; murmur keeps a document 30 s after its last client leaves, Hocuspocus unloads it at once). Run took ${seconds.toFixed(0)} s (${new Date().toISOString().slice(0, 10)}).`
  const text = [
    '**Durable updates per second** (single-character Yjs updates; "durable" = murmur acked it after an fsynced commit / Hocuspocus finished the SQLite store covering it):',
    '',
    ...durable.rows,
    '',
    '**Server CPU per confirmed update** (µs; less sensitive to the machine\'s other load than wall-clock rates):',
    '',
    ...durable.cpuRows,
    '',
    '**Drain**: ms from the moment the clients stop sending until every sent update is confirmed:',
    '',
    ...durable.drainRows,
    '',
    '**Fresh client receives a large document**: ms from connect to synced with the same minimal client everywhere (in parentheses: until the server\'s whole answer had arrived, before the client applied it); text length checked every time:',
    '',
    ...fetched.rows,
    '',
    '**Server CPU per fresh client** (ms of the server\'s main thread from connect to synced, from /proc/<pid>/schedstat; raw client; cold includes loading from storage):',
    '',
    ...fetched.cpuRows,
    '',
    '**Server memory per loaded document**:',
    '',
    ...rss,
  ].join('\n')
  console.log(`\n${text}\n\n${setup}`)
  // The committed chart only from a full run of every section; others go to the temp directory.
  const chartPath = writeReadme && !quick ? join(root, 'bench/backup.svg') : join(tmpdir(), 'murmur-backup-quick.svg')
  console.log(writeChart(chartPath, backupChart(durable.chart, fetched.chart, `murmur bench/backup.ts, ${new Date().toISOString().slice(0, 10)}: ${cores} shared cores, servers on one, load generator on the other`)).note)
  if (writeReadme && !quick) updateReadme(`${text}\n\n![durable updates/s and CPU per update against clients; fresh-client time and server CPU against document size](backup.png)`, setup)
}

/** Replaces the generated part of the "Backup" section of bench/README.md, keeping its prose and every other section. */
function updateReadme(text: string, setup: string): void {
  const path = join(root, 'bench/README.md')
  // Re-read right before writing: another benchmark may have rewritten its own section meanwhile.
  const current = existsSync(path) ? readFileSync(path, 'utf8') : '# Benchmarks\n'
  const block = `<!-- backup:begin -->\n${text}\n\n${setup}\n<!-- backup:end -->`
  const start = current.indexOf('\n## Backup\n')
  if (start < 0) {
    writeFileSync(path, `${current.trimEnd()}\n\n## Backup\n\n${block}\n`)
    return
  }
  const begin = current.indexOf('<!-- backup:begin -->', start)
  const end = current.indexOf('<!-- backup:end -->', start)
  if (begin < 0 || end < 0) throw new Error('bench/README.md: Backup section lacks <!-- backup:begin/end --> markers')
  writeFileSync(path, current.slice(0, begin) + block + current.slice(end + '<!-- backup:end -->'.length))
}

try {
  await main()
} catch (err) {
  // Leave no server behind when a run fails.
  killAll()
  throw err
}
