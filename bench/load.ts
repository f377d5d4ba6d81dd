/**
 * Load test of `/sync` relay: many rooms × clients × edits per second against
 * one murmur server process on loopback, in steps of increasing load until it
 * saturates (relay latency p99 above 1 s, errors, or edits not delivered).
 *
 *   node --import tsx bench/load.ts [--step-seconds 12] [--gens 2] [--steps R×C×E,...]
 *                                   [--long] [--no-stop] [--json FILE] [--chart bench/load.svg]
 *                                   [--server-args "--overload-heap-bytes 0 ..."] [--pause-seconds 10] [--memory]
 *   node --import tsx bench/load.ts --chart-from FILE.json [--chart bench/load.svg]
 *
 * - Clients are raw y-websocket protocol clients (`bench/lib/load-gen.ts`) in
 *   `--gens` generator processes, separate from the server; all clients of a
 *   room live in one generator, so latency (edit sent by one client → the
 *   update received by each other client of the room) is measured on one clock.
 * - The server runs with `--max-sync-rate 100000 --max-connections-per-ip
 *   100000` (all clients share 127.0.0.1; the defaults would cap them) and
 *   `--idle-unload-ms 3000` (each step uses fresh rooms; the previous step's
 *   unload). Every edit is persisted to SQLite as in production.
 * - Each second: server RSS (/proc), CPU (schedstat), and `/metrics`
 *   (`nodejs_eventloop_lag_p99_seconds`, reset by each scrape, so one value
 *   per second).
 * - Default: 8 steps of 12 s (~3 min with connect and drain); `--long` uses
 *   25 s steps. It stops after two saturated steps in a row unless `--no-stop`.
 * - Writes a chart (SVG; PNG too when `rsvg-convert` is installed) through
 *   `bench/lib/chart.ts`; `--chart-from` redraws it from a `--json` file
 *   without running anything.
 */
import { fork, type ChildProcess } from 'node:child_process'
import { mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir, cpus, loadavg } from 'node:os'
import { join, resolve } from 'node:path'
import { startServer } from '../test/helpers/server.ts'
import { cpuSeconds, rssKiB } from './lib/servers.ts'
import { BUCKET_MS, type GenResult, type StepOrder } from './lib/load-gen.ts'
import { renderChart, writeChart } from './lib/chart.ts'
import { startAckedWriter, storedKeystrokes, type AckedWriter } from './lib/acked-writer.ts'

function arg(name: string): string | undefined {
  const i = process.argv.indexOf(`--${name}`)
  return i >= 0 ? process.argv[i + 1] : undefined
}
const flag = (name: string) => process.argv.includes(`--${name}`)

/** rooms × clients per room × edits per second per client */
export interface Step {
  rooms: number
  clients: number
  rate: number
}

const defaultSteps: Step[] = [
  { rooms: 10, clients: 4, rate: 5 },
  { rooms: 25, clients: 4, rate: 5 },
  { rooms: 50, clients: 4, rate: 5 },
  { rooms: 100, clients: 4, rate: 5 },
  { rooms: 100, clients: 5, rate: 8 },
  { rooms: 200, clients: 5, rate: 8 },
  { rooms: 250, clients: 6, rate: 10 },
  { rooms: 400, clients: 6, rate: 10 },
]
const steps: Step[] = arg('steps')
  ? arg('steps')!.split(',').map((s) => {
      const [rooms, clients, rate] = s.split(/[x×]/).map(Number)
      return { rooms, clients, rate }
    })
  : defaultSteps
const stepSeconds = Number(arg('step-seconds') ?? (flag('long') ? 25 : 12))
const gens = Number(arg('gens') ?? 2)
/** Seconds with no load between steps (`--pause-seconds`), to see the server recover from an overload step. */
const pauseSeconds = Number(arg('pause-seconds') ?? 0)
const drainMs = 2000
const P99_LIMIT_MS = 1000
const serverArgs = ['--log-level', 'error', '--max-sync-rate', '100000', '--max-connections-per-ip', '100000', '--max-sockets-per-ip', '100000', '--idle-unload-ms', '3000', ...(arg('server-args')?.split(/\s+/).filter(Boolean) ?? [])]

export interface StepReport extends Step {
  connections: number
  targetEditsPerSec: number
  editsPerSec: number
  deliveriesPerSec: number
  delivered: number
  p50: number
  p99: number
  max: number
  errors: number
  closes: Record<string, number>
  serverCpuPct: number
  /** Server CPU time per edit (all threads; the edit's relays and its persistence included). */
  cpuUsPerEdit: number
  /** Share of the step the server's threads were runnable but not running (CPU contention). */
  serverWaitPct: number
  /** Share of samples the server's main thread was running/runnable, and blocked on disk (fsync). */
  mainRunningPct: number
  mainDiskPct: number
  genCpuPct: number
  lagP99MaxMs: number
  lagP99MedianMs: number
  rssStartMiB: number
  rssPeakMiB: number
  rssEndMiB: number
  connectS: number
  saturated: string | null
}

function quantile(hist: Map<number, number>, total: number, q: number): number {
  const target = q * total
  let seen = 0
  for (const [bucket, n] of [...hist].sort((a, b) => a[0] - b[0])) {
    seen += n
    if (seen >= target) return (bucket + 1) * BUCKET_MS
  }
  return NaN
}

async function metric(url: string, name: string): Promise<number> {
  try {
    const text = await (await fetch(`${url}/metrics`, { signal: AbortSignal.timeout(2000) })).text()
    const line = text.split('\n').find((l) => l.startsWith(name + ' '))
    return line ? Number(line.split(' ')[1]) : NaN
  } catch {
    return NaN
  }
}

/** The SQLite commit histogram (`murmur_storage_commit_seconds`): count, sum (s) and cumulative bucket counts by upper bound. */
async function commitHistogram(url: string): Promise<{ count: number; sum: number; buckets: [number, number][] } | null> {
  for (let attempt = 0; attempt < 5; attempt++) {
    try {
      const text = await (await fetch(`${url}/metrics`, { signal: AbortSignal.timeout(10_000) })).text()
      const value = (name: string) => Number(text.split('\n').find((l) => l.startsWith(name + ' '))?.split(' ')[1] ?? NaN)
      const buckets = [...text.matchAll(/^murmur_storage_commit_seconds_bucket\{le="([^"]+)"\} (\S+)$/gm)].map((m) => [Number(m[1]), Number(m[2])] as [number, number])
      return { count: value('murmur_storage_commit_seconds_count'), sum: value('murmur_storage_commit_seconds_sum'), buckets }
    } catch {
      // overloaded: the loop answers late
    }
  }
  return null
}

/** One line on how long SQLite commits held the event loop between two histogram reads over `wallS` seconds. */
function commitLine(a: Awaited<ReturnType<typeof commitHistogram>>, b: Awaited<ReturnType<typeof commitHistogram>>, wallS: number): string {
  if (!a || !b) return 'commits: /metrics unanswered'
  const n = b.count - a.count
  const sum = b.sum - a.sum
  const over = (le: number) => n - ((b.buckets.find(([x]) => x === le)?.[1] ?? 0) - (a.buckets.find(([x]) => x === le)?.[1] ?? 0))
  const where = serverArgs.join(' ').includes('--sqlite-writer main') ? 'on the event loop' : 'on the writer thread'
  return `commits: ${fmt(n)} (${fmt(n / wallS)}/s), ${where} ${fmt(sum * 1000)} ms = ${fmt((sum / wallS) * 100, 1)}% of the step, mean ${fmt(n ? (sum / n) * 1000 : NaN, 2)} ms, ${fmt(over(0.01))} over 10 ms, ${fmt(over(0.05))} over 50 ms`
}

function startGen(): Promise<ChildProcess> {
  const child = fork(resolve(import.meta.dirname, 'lib/load-gen.ts'), [], { execArgv: ['--import', 'tsx'], stdio: ['ignore', 'inherit', 'inherit', 'ipc'] })
  return new Promise((res, rej) => {
    child.once('message', () => res(child))
    child.once('exit', (code) => rej(new Error(`generator exited with ${code}`)))
  })
}

function nextMessage<T>(child: ChildProcess, type: string): Promise<T> {
  return new Promise((res) => {
    const on = (m: { type: string }) => {
      if (m.type !== type) return
      child.off('message', on)
      res(m as T)
    }
    child.on('message', on)
  })
}

/**
 * Seconds the threads of `pid` spent runnable but waiting for a CPU (second
 * field of /proc/<pid>/task/<tid>/schedstat): high when other processes on
 * the machine compete for the cores, which inflates every latency here.
 */
function waitSeconds(pid: number): number {
  let ns = 0
  try {
    for (const tid of readdirSync(`/proc/${pid}/task`)) {
      try {
        ns += Number(readFileSync(`/proc/${pid}/task/${tid}/schedstat`, 'utf8').split(' ')[1])
      } catch {
        // thread gone
      }
    }
  } catch {
    return NaN
  }
  return ns / 1e9
}

/**
 * Samples the state of the server's main thread (/proc/<pid>/task/<pid>/stat)
 * every few ms: R running or runnable, D in uninterruptible (disk) sleep — with
 * better-sqlite3 an fsync blocks the event loop there — S sleeping (idle).
 */
function threadStates(pid: number) {
  const counts: Record<string, number> = {}
  const timer = setInterval(() => {
    try {
      const stat = readFileSync(`/proc/${pid}/task/${pid}/stat`, 'utf8')
      const state = stat.slice(stat.lastIndexOf(')') + 2, stat.lastIndexOf(')') + 3)
      counts[state] = (counts[state] ?? 0) + 1
    } catch {
      // gone
    }
  }, 4)
  return {
    stop(): { running: number; disk: number } {
      clearInterval(timer)
      const total = Object.values(counts).reduce((a, b) => a + b, 0) || 1
      return { running: ((counts.R ?? 0) / total) * 100, disk: ((counts.D ?? 0) / total) * 100 }
    },
  }
}

const fmt = (n: number, d = 0) => (Number.isFinite(n) ? n.toFixed(d) : '-')

/** One RSS sample of the run: seconds since the start, MiB, and the step it belongs to. */
export interface RssSample {
  t: number
  rss: number
  step: number
}

/**
 * The load test's chart (SVG): relay latency p50/p99 per step on a log scale
 * with the saturation threshold, and server RSS each second over the run with
 * the steps shaded.
 */
export function loadChart(steps: StepReport[], rss: RssSample[], limitMs: number): string {
  const ms = (v: number) => (v >= 1000 ? `${v / 1000} s` : `${v} ms`)
  const worst = Math.max(10_000, ...steps.map((s) => s.p99).filter(Number.isFinite))
  const best = Math.min(1, ...steps.map((s) => s.p50).filter((v) => Number.isFinite(v) && v > 0))
  // The gap between two steps' samples breaks the RSS line (NaN ends a segment).
  const rssPoints = rss.flatMap((r, i) => (i > 0 && rss[i - 1]!.step !== r.step ? [{ x: r.t, y: NaN }] : []).concat({ x: r.t, y: r.rss }))
  const bands = [...new Set(rss.map((r) => r.step))].map((step) => {
    const ts = rss.filter((r) => r.step === step).map((r) => r.t)
    return { from: Math.min(...ts), to: Math.max(...ts), label: String(step + 1), fill: step % 2 ? '#eef3fa' : '#f5f5f5' }
  })
  const tMax = Math.max(1, ...rss.map((r) => r.t))
  return renderChart({
    footer: `murmur bench/load.ts — ${steps.length} steps; rooms×clients×edits/s: ${steps.map((s) => `${s.rooms}×${s.clients}×${s.rate}`).join(', ')}`,
    panels: [
      {
        title: 'Relay latency per load step (edit sent → received by another client of the room)',
        height: 230,
        x: {
          label: 'load step: edits/s offered, connections (✗ = saturated)',
          min: -0.35,
          max: Math.max(1, steps.length) - 0.65,
          ticks: steps.map((s, i) => ({ value: i, label: `${s.targetEditsPerSec} e/s`, sub: `${s.connections} conns${s.saturated ? ' ✗' : ''}` })),
        },
        y: { label: 'latency (log)', log: true, min: 10 ** Math.floor(Math.log10(best)), max: 10 ** Math.ceil(Math.log10(worst)), format: ms },
        series: [
          { name: 'p50', color: '#1f77b4', points: steps.map((s, i) => ({ x: i, y: s.p50 })) },
          { name: 'p99', color: '#d62728', points: steps.map((s, i) => ({ x: i, y: s.p99 })) },
        ],
        hlines: [{ y: limitMs, label: `saturation: p99 > ${limitMs} ms` }],
      },
      {
        title: 'Server RSS over the run (sampled each second; shaded: load steps)',
        height: 200,
        legend: 'none',
        x: { label: 'time since the start of the run', min: 0, max: tMax, format: (v) => `${v} s` },
        y: { label: 'RSS', min: 0, max: Math.max(50, ...rss.map((r) => r.rss)) * 1.1, format: (v) => `${v} MiB` },
        series: [{ name: 'RSS', color: '#2ca02c', markers: false, points: rssPoints }],
        bands,
      },
    ],
  })
}

async function main(): Promise<void> {
  const dataDir = mkdtempSync(join(tmpdir(), 'murmur-load-'))
  const server = await startServer({ dataDir, args: serverArgs })
  const pid = server.child.pid!
  const generators = await Promise.all(Array.from({ length: gens }, startGen))
  const cleanup = () => {
    for (const g of generators) g.kill('SIGKILL')
    server.child.kill('SIGKILL')
  }
  process.once('exit', cleanup)
  for (const sig of ['SIGINT', 'SIGTERM'] as const) process.on(sig, () => process.exit(130))

  console.log(`murmur load test — ${cpus().length} CPUs (${cpus()[0]?.model.trim()}), load average ${loadavg().map((l) => l.toFixed(1)).join(' ')} at start; ${gens} generator processes; ${stepSeconds} s per step`)
  console.log(`server flags: ${serverArgs.join(' ')}`)
  const t0 = performance.now()
  /** RSS (MiB) each second over the whole run, with the step it belongs to. */
  const rssSeries: RssSample[] = []
  const reports: StepReport[] = []
  const writers: AckedWriter[] = []
  const header = ['step', 'rooms×clients×edits/s', 'conns', 'edits/s (target)', 'relayed/s', 'delivered', 'p50 ms', 'p99 ms', 'max ms', 'errors', 'server CPU (runq wait)', 'CPU µs/edit', 'main thread R/D', 'gen CPU', 'loop lag p99 ms (med/max)', 'RSS MiB start/peak/end']
  console.log('\n' + header.join(' | '))

  for (const [i, step] of steps.entries()) {
    if (i > 0 && pauseSeconds > 0) {
      // Load dropped to nothing: does the server recover by itself (overload budget off again)?
      await new Promise((r) => setTimeout(r, pauseSeconds * 1000))
      console.log(`(paused ${pauseSeconds} s; murmur_overloaded = ${await metric(server.url, 'murmur_overloaded')})`)
    }
    const rooms = Array.from({ length: step.rooms }, (_, r) => `load${i}r${r}`)
    const share = generators.map((_, g) => rooms.filter((_, r) => r % gens === g))
    const tConnect = performance.now()
    const connected = generators.map((g) => nextMessage<{ clients: number; connectErrors: number }>(g, 'connected'))
    generators.forEach((g, k) => g.send({ type: 'step', wsUrl: server.wsUrl, rooms: share[k], clients: step.clients, rate: step.rate, seconds: stepSeconds, drainMs } satisfies StepOrder))
    const conns = await Promise.all(connected)
    const connectS = (performance.now() - tConnect) / 1000
    const results = generators.map((g) => nextMessage<GenResult>(g, 'result'))
    const rss0 = rssKiB(pid) / 1024
    const cpu0 = cpuSeconds(pid)
    const wait0 = waitSeconds(pid)
    const states = threadStates(pid)
    const lags: number[] = []
    let peak = rss0
    await metric(server.url, 'nodejs_eventloop_lag_p99_seconds') // reset the lag histogram
    // One more client asks for durable acks throughout the step; checked after the last step.
    const writer = await startAckedWriter(server.wsUrl, `acked${i}`)
    writers.push(writer)
    const commits0 = await commitHistogram(server.url)
    for (const g of generators) g.send({ type: 'go' })
    const start = performance.now()
    const sampler = setInterval(async () => {
      const rss = rssKiB(pid) / 1024
      peak = Math.max(peak, rss)
      rssSeries.push({ t: (performance.now() - t0) / 1000, rss, step: i })
      const lag = await metric(server.url, 'nodejs_eventloop_lag_p99_seconds')
      if (Number.isFinite(lag)) lags.push(lag * 1000)
      if (flag('memory')) {
        const [heap, ext, over] = await Promise.all(['nodejs_heap_size_used_bytes', 'nodejs_external_memory_bytes', 'murmur_overloaded'].map((m) => metric(server.url, m)))
        console.log(`  t=${((performance.now() - start) / 1000).toFixed(0)}s RSS ${rss.toFixed(0)} MiB, heap ${(heap / 1048576).toFixed(0)} MiB, external ${(ext / 1048576).toFixed(0)} MiB, overloaded ${over}`)
      }
    }, 1000)
    const res = await Promise.all(results)
    writer.stop()
    clearInterval(sampler)
    const wallS = (performance.now() - start) / 1000
    const cpu = cpuSeconds(pid) - cpu0
    const wait = waitSeconds(pid) - wait0
    const main = states.stop()
    const rssEnd = rssKiB(pid) / 1024
    rssSeries.push({ t: (performance.now() - t0) / 1000, rss: rssEnd, step: i })

    const hist = new Map<number, number>()
    for (const r of res) for (let k = 0; k < r.hist.length; k += 2) hist.set(r.hist[k], (hist.get(r.hist[k]) ?? 0) + r.hist[k + 1])
    const received = res.reduce((n, r) => n + r.received, 0)
    const expected = res.reduce((n, r) => n + r.expected, 0)
    const sent = res.reduce((n, r) => n + r.sent, 0)
    const elapsed = Math.max(...res.map((r) => r.elapsedMs)) / 1000
    const closes: Record<string, number> = {}
    for (const r of res) for (const [c, n] of Object.entries(r.closes)) closes[c] = (closes[c] ?? 0) + n
    const errors = res.reduce((n, r) => n + r.connectErrors, 0) + Object.values(closes).reduce((a, b) => a + b, 0)
    const sortedLags = lags.slice().sort((a, b) => a - b)
    const report: StepReport = {
      ...step,
      connections: conns.reduce((n, c) => n + c.clients, 0),
      targetEditsPerSec: step.rooms * step.clients * step.rate,
      editsPerSec: sent / elapsed,
      deliveriesPerSec: received / elapsed,
      delivered: expected ? received / expected : 1,
      p50: quantile(hist, received, 0.5),
      p99: quantile(hist, received, 0.99),
      max: quantile(hist, received, 1),
      errors,
      closes,
      serverCpuPct: (cpu / wallS) * 100,
      cpuUsPerEdit: (cpu / Math.max(1, sent)) * 1e6,
      serverWaitPct: (wait / wallS) * 100,
      mainRunningPct: main.running,
      mainDiskPct: main.disk,
      genCpuPct: (res.reduce((n, r) => n + r.cpuSeconds, 0) / wallS) * 100,
      lagP99MaxMs: sortedLags.at(-1) ?? NaN,
      lagP99MedianMs: sortedLags[Math.floor(sortedLags.length / 2)] ?? NaN,
      rssStartMiB: rss0,
      rssPeakMiB: peak,
      rssEndMiB: rssEnd,
      connectS,
      saturated: null,
    }
    const why: string[] = []
    if (report.p99 > P99_LIMIT_MS) why.push(`p99 ${fmt(report.p99)} ms > ${P99_LIMIT_MS}`)
    if (errors > 0) why.push(`${errors} errors`)
    if (report.delivered < 0.99) why.push(`only ${fmt(report.delivered * 100, 1)}% delivered`)
    if (report.editsPerSec < 0.9 * report.targetEditsPerSec) why.push(`generators reached ${fmt(report.editsPerSec)} of ${report.targetEditsPerSec} edits/s`)
    report.saturated = why.length ? why.join(', ') : null
    reports.push(report)
    console.log(
      [
        i + 1,
        `${step.rooms}×${step.clients}×${step.rate}`,
        report.connections,
        `${fmt(report.editsPerSec)} (${report.targetEditsPerSec})`,
        fmt(report.deliveriesPerSec),
        `${fmt(report.delivered * 100, 1)}%`,
        fmt(report.p50, 1),
        fmt(report.p99, 1),
        fmt(report.max),
        errors,
        `${fmt(report.serverCpuPct)}% (${fmt(report.serverWaitPct)}%)`,
        fmt(report.cpuUsPerEdit),
        `${fmt(report.mainRunningPct)}%/${fmt(report.mainDiskPct)}%`,
        `${fmt(report.genCpuPct)}%`,
        `${fmt(report.lagP99MedianMs)}/${fmt(report.lagP99MaxMs)}`,
        `${fmt(rss0)}/${fmt(peak)}/${fmt(rssEnd)}`,
      ].join(' | ') + (report.saturated ? `  ← saturated: ${report.saturated}` : ''),
    )
    console.log(`  ${commitLine(commits0, await commitHistogram(server.url), wallS)}`)
    // Two saturated steps in a row end the run (one alone may be a hiccup of a shared machine).
    if (report.saturated && reports.at(-2)?.saturated && !flag('no-stop')) break
    // Let the previous step's rooms unload before the next one.
    await new Promise((r) => setTimeout(r, 4000))
  }
  const total = (performance.now() - t0) / 1000
  // Saturation: the first step from which every later step is saturated (a lone
  // saturated step followed by healthy ones is a transient, reported as such).
  let from = reports.length
  while (from > 0 && reports[from - 1].saturated) from--
  const transients = reports.slice(0, from).map((r, k) => (r.saturated ? k + 1 : 0)).filter(Boolean)
  const lastOk = [...reports].reverse().find((r) => !r.saturated)
  console.log(
    `\n${from < reports.length ? `saturated from step ${from + 1} on (${reports[from].saturated})` : 'did not saturate'}${transients.length ? `; transient saturation in step ${transients.join(', ')}` : ''}; highest unsaturated load: ${lastOk ? `${lastOk.targetEditsPerSec} edits/s over ${lastOk.connections} connections (p99 ${fmt(lastOk.p99)} ms, server CPU ${fmt(lastOk.serverCpuPct)}%)` : 'none'}; ${fmt(total)} s in all`,
  )
  if (lastOk) console.log(`server CPU per edit at that step: ${fmt(lastOk.cpuUsPerEdit)} µs (its relays and its share of group commits) → one uncontended core would take about ${fmt(1e6 / lastOk.cpuUsPerEdit)} edits/s at that batching`)
  const contended = reports.filter((r) => r.serverWaitPct > 50).length
  if (contended) console.log(`note: in ${contended} of ${reports.length} steps the server's threads waited for a CPU more than half the time (other load on the machine): latencies there measure that contention as much as the server`)
  const rssAfter = rssKiB(pid) / 1024
  await new Promise((r) => setTimeout(r, 5000))
  const rssIdle = rssKiB(pid) / 1024
  console.log(`server RSS: ${fmt(reports[0]?.rssStartMiB ?? NaN)} MiB before the first step, peak ${fmt(Math.max(...reports.map((r) => r.rssPeakMiB)))} MiB, ${fmt(rssAfter)} MiB after the last, ${fmt(rssIdle)} MiB after 5 s idle (rooms unloaded)`)

  // Every keystroke the server acknowledged as durable, in every step, must be stored (read back by a fresh client).
  for (const [k, w] of writers.entries()) {
    w.close()
    const stored = await storedKeystrokes(server.wsUrl, w.docId)
    console.log(`acked writer of step ${k + 1}: ${w.sent} keystrokes sent, ${w.acked} acknowledged durable, ${stored} stored after the run${stored >= w.acked ? ' — every acknowledged one is there' : ' — ACKNOWLEDGED KEYSTROKES MISSING'}`)
  }
  console.log(writeChart(arg('chart') ?? resolve(import.meta.dirname, 'load.svg'), loadChart(reports, rssSeries, P99_LIMIT_MS)).note)
  const json = arg('json')
  if (json) writeFileSync(json, JSON.stringify({ steps: reports, rssSeries, serverArgs, stepSeconds, gens }, null, 2))
  await server.stop()
  rmSync(dataDir, { recursive: true, force: true })
  process.exit(0)
}

const chartFrom = arg('chart-from')
if (chartFrom) {
  // Redraw the chart of an earlier run from its --json file.
  const saved = JSON.parse(readFileSync(chartFrom, 'utf8')) as { steps: StepReport[]; rssSeries: RssSample[] }
  console.log(writeChart(arg('chart') ?? resolve(import.meta.dirname, 'load.svg'), loadChart(saved.steps, saved.rssSeries, P99_LIMIT_MS)).note)
} else await main()
