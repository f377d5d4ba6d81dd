/**
 * The multi-instance mode, measured (issue 10):
 *
 * 1. Storage: durable updates/s (every update acknowledged only once committed)
 *    and the time a fresh client takes to fetch a document, SQLite (default)
 *    against PostgreSQL (`--store postgres://…`), one murmur process each, with
 *    the backup benchmark's load generator (`bench/lib/backup-load.ts`).
 * 2. Instances: the `/sync` relay (bench/lib/load-gen.ts: rooms × clients ×
 *    edits/s, latency edit → every other client of the room) through HAProxy to
 *    1, 2 and 3 instances on PostgreSQL + Redis (HAProxy runs the README's
 *    `docs/haproxy.cfg`, `test/helpers/haproxy.ts`); with 3 instances once hashing
 *    on the document (rooms live on one instance) and once round-robin (every
 *    room spans instances, so every edit crosses Redis).
 *
 *   node --import tsx bench/cluster.ts [--seconds 10] [--step 100x4x5] [--no-storage]
 *
 * Needs PostgreSQL and Redis (MURMUR_TEST_POSTGRES / MURMUR_TEST_REDIS, as the
 * tests) and `haproxy` (Debian package) for part 2. On a 2-core machine the
 * instances, Redis, PostgreSQL, HAProxy and the generators share two cores,
 * so part 2 shows the cost of the extra hops, not scaling.
 */
import { fork, spawn, type ChildProcess } from 'node:child_process'
import { mkdtempSync, writeFileSync } from 'node:fs'
import { cpus, loadavg, tmpdir } from 'node:os'
import { join, resolve } from 'node:path'
import { createInterface } from 'node:readline'
import * as Y from 'yjs'
import { startServer, type ServerProcess } from '../test/helpers/server.ts'
import { startHaproxy, type Haproxy } from '../test/helpers/haproxy.ts'
import { checkRedis, freshPostgresDatabase, REDIS_URL } from '../test/helpers/services.ts'
import { startMurmur, tempDir, removeTempDirs, killAll, type Target } from './lib/backup-servers.ts'
import { BUCKET_MS, type GenResult, type StepOrder } from './lib/load-gen.ts'
import { cpuSeconds, freePort } from './lib/servers.ts'

const arg = (name: string) => {
  const i = process.argv.indexOf(`--${name}`)
  return i >= 0 ? process.argv[i + 1] : undefined
}
const SECONDS = Number(arg('seconds') ?? 10)
const [ROOMS, CLIENTS, RATE] = (arg('step') ?? '100x4x5').split(/[x×]/).map(Number) as [number, number, number]
const root = resolve(import.meta.dirname, '..')
const fmt = (n: number) => (Number.isFinite(n) ? Math.round(n).toLocaleString('en-US') : '–')
const median = (xs: number[]) => {
  const s = xs.filter(Number.isFinite).sort((a, b) => a - b)
  return s.length ? s[Math.floor(s.length / 2)]! : NaN
}

/** The backup benchmark's load generator: one JSON job per line in, one result per line out. */
function startLoader() {
  const child = spawn(process.execPath, ['--import', 'tsx', 'bench/lib/backup-load.ts'], { cwd: root, stdio: ['pipe', 'pipe', 'inherit'] })
  const lines: string[] = []
  let waiting: ((l: string) => void) | null = null
  createInterface({ input: child.stdout! }).on('line', (l) => (waiting ? (waiting(l), (waiting = null)) : lines.push(l)))
  return {
    async run<T>(job: object): Promise<T> {
      child.stdin!.write(JSON.stringify(job) + '\n')
      const line = lines.shift() ?? (await new Promise<string>((res) => (waiting = res)))
      const r = JSON.parse(line) as T & { error?: string }
      if (r.error) throw new Error(`load generator: ${r.error}`)
      return r
    },
    stop: () => child.stdin!.end(),
  }
}

// ───────────── 1. storage ─────────────

const CONFIGS = [
  { clients: 1, shared: false },
  { clients: 4, shared: false },
  { clients: 16, shared: false },
  { clients: 16, shared: true },
]
const label = (c: { clients: number; shared: boolean }) => (c.shared ? `${c.clients} clients, one shared doc` : `${c.clients} client${c.clients > 1 ? 's' : ''}, a doc each`)

async function storageSection(pgUrl: string): Promise<string[]> {
  const loader = startLoader()
  const stores = { sqlite: { dir: tempDir('sq'), args: [] as string[] }, postgres: { dir: tempDir('pg'), args: ['--store', `${pgUrl}?schema=bench_storage`] } }
  const start = (k: keyof typeof stores) => startMurmur(stores[k].dir, { args: stores[k].args })
  const targets: Record<string, Target> = { sqlite: await start('sqlite'), postgres: await start('postgres') }
  const rates: Record<string, number[][]> = { sqlite: CONFIGS.map(() => []), postgres: CONFIGS.map(() => []) }
  for (let round = 0; round < 3; round++) {
    for (const k of ['sqlite', 'postgres'] as const) {
      const t = targets[k]!
      const { results } = await loader.run<{ results: { clients: number; shared: boolean; durable: number; seconds: number }[] }>({
        mode: 'durable', proto: 'murmur', host: '127.0.0.1', port: t.port, runs: CONFIGS, window: 64, warmupMs: 300, measureMs: 1000, drainMs: 3000, serverPid: t.pid, docPrefix: `${k}-r${round}`,
      })
      results.forEach((r, i) => rates[k]![i]!.push(r.durable / r.seconds))
      console.error(`durable round ${round + 1} ${k}: ${results.map((r) => fmt(r.durable / r.seconds)).join(' / ')} per s`)
    }
  }

  // Fetch: a typed document of 20,000 keystrokes; warm (loaded) and cold (first load after a restart).
  const doc = new Y.Doc()
  const text = doc.getText('text')
  for (let i = 0; i < 20_000; i++) {
    if (i % 9 === 8 && text.length > 0) text.delete((i * 31) % text.length, 1)
    else text.insert((i * 17) % (text.length + 1), String.fromCharCode(97 + (i % 26)))
  }
  const file = join(mkdtempSync(join(tmpdir(), 'murmur-cluster-')), 'doc.bin')
  writeFileSync(file, Y.encodeStateAsUpdate(doc))
  const cold = ['b', 'c', 'd', 'e', 'f'].map((c) => `fetch-${c}`)
  const fetchMs: Record<string, { warm: number; cold: number }> = {}
  for (const k of ['sqlite', 'postgres'] as const) {
    let t = targets[k]!
    await loader.run({ mode: 'seed', proto: 'murmur', host: '127.0.0.1', port: t.port, docs: ['fetch-a', ...cold, 'warmup'], updateFile: file, parallel: 1 })
    await t.stop()
    t = targets[k] = await start(k)
    const r = await loader.run<{ cold: number[]; warm: Record<string, number[][]> }>({
      mode: 'fetch', proto: 'murmur', host: '127.0.0.1', port: t.port, docs: ['fetch-a'], textLength: [text.length], clients: ['stock'], repeat: 7, coldDocs: cold, coldLengths: cold.map(() => text.length), warmupDocs: ['warmup'], updateFile: file, serverPid: t.pid,
    })
    fetchMs[k] = { warm: median(r.warm.stock![0]!), cold: median(r.cold) }
  }
  for (const t of Object.values(targets)) await t.kill()
  loader.stop()
  return [
    '| load | SQLite: durable/s | PostgreSQL: durable/s | PostgreSQL ÷ SQLite |',
    '| --- | ---: | ---: | ---: |',
    ...CONFIGS.map((c, i) => {
      const s = median(rates.sqlite![i]!)
      const p = median(rates.postgres![i]!)
      return `| ${label(c)} | ${fmt(s)} | ${fmt(p)} | ${(p / s).toFixed(2)}× |`
    }),
    '',
    `| fresh client, ${fmt(text.length)}-char document (20,000 edits, ${fmt(Y.encodeStateAsUpdate(doc).byteLength)} bytes) | SQLite | PostgreSQL |`,
    '| --- | ---: | ---: |',
    `| warm (document loaded), median of 7 | ${fetchMs.sqlite!.warm.toFixed(1)} ms | ${fetchMs.postgres!.warm.toFixed(1)} ms |`,
    `| cold (first load after a restart), median of 5 | ${fetchMs.sqlite!.cold.toFixed(1)} ms | ${fetchMs.postgres!.cold.toFixed(1)} ms |`,
  ]
}

// ───────────── 2. instances behind HAProxy ─────────────

function startGen(): Promise<ChildProcess> {
  const child = fork(resolve(import.meta.dirname, 'lib/load-gen.ts'), [], { execArgv: ['--import', 'tsx'], stdio: ['ignore', 'inherit', 'inherit', 'ipc'] })
  return new Promise((res, rej) => {
    child.once('message', () => res(child))
    child.once('exit', (code) => rej(new Error(`generator exited with ${code}`)))
  })
}
function nextMessage<T>(child: ChildProcess, type: string): Promise<T> {
  return new Promise((res) => {
    const on = (m: { type: string }) => m.type === type && (child.off('message', on), res(m as T))
    child.on('message', on)
  })
}
function quantile(hist: Map<number, number>, total: number, q: number): number {
  let seen = 0
  for (const [bucket, n] of [...hist].sort((a, b) => a[0] - b[0])) if ((seen += n) >= q * total) return (bucket + 1) * BUCKET_MS
  return NaN
}

async function instancesRun(pgUrl: string, redisPrefix: string, n: number, hash: boolean, tag: string): Promise<string> {
  const args = ['--store', `${pgUrl}?schema=bench_${tag}`, '--redis', REDIS_URL, '--redis-prefix', `${redisPrefix}-${tag}`, '--max-sync-rate', '100000', '--max-connections-per-ip', '100000', '--log-level', 'error', '--trust-proxy']
  const servers: ServerProcess[] = []
  for (let i = 0; i < n; i++) servers.push(await startServer({ args }))
  let proxy: Haproxy | undefined
  let gens: ChildProcess[] = []
  try {
    proxy = await startHaproxy(await freePort(), servers.map((s) => s.port), !hash)
    gens = await Promise.all([startGen(), startGen()])
    const rooms = Array.from({ length: ROOMS }, (_, r) => `${tag}-r${r}`)
    const connected = gens.map((g) => nextMessage(g, 'connected'))
    gens.forEach((g, k) => g.send({ type: 'step', wsUrl: `ws://127.0.0.1:${proxy!.port}`, rooms: rooms.filter((_, r) => r % 2 === k), clients: CLIENTS, rate: RATE, seconds: SECONDS, drainMs: 2000 } satisfies StepOrder))
    await Promise.all(connected)
    const results = gens.map((g) => nextMessage<GenResult>(g, 'result'))
    const cpu0 = servers.map((s) => cpuSeconds(s.child.pid!))
    const t0 = performance.now()
    for (const g of gens) g.send({ type: 'go' })
    const res = await Promise.all(results)
    const wall = (performance.now() - t0) / 1000
    const cpu = servers.reduce((sum, s, i) => sum + cpuSeconds(s.child.pid!) - cpu0[i]!, 0)
    const hist = new Map<number, number>()
    for (const r of res) for (let k = 0; k < r.hist.length; k += 2) hist.set(r.hist[k]!, (hist.get(r.hist[k]!) ?? 0) + r.hist[k + 1]!)
    const received = res.reduce((s, r) => s + r.received, 0)
    const expected = res.reduce((s, r) => s + r.expected, 0)
    const sent = res.reduce((s, r) => s + r.sent, 0)
    const elapsed = Math.max(...res.map((r) => r.elapsedMs)) / 1000
    const errors = res.reduce((s, r) => s + r.connectErrors + Object.values(r.closes).reduce((a, b) => a + b, 0), 0)
    return `| ${n} instance${n > 1 ? 's' : ''}, ${hash ? 'hash on document' : 'round-robin'} | ${fmt(sent / elapsed)} | ${((received / Math.max(1, expected)) * 100).toFixed(1)}% | ${quantile(hist, received, 0.5).toFixed(1)} | ${quantile(hist, received, 0.99).toFixed(1)} | ${errors} | ${((cpu / wall) * 100).toFixed(0)}% | ${fmt((cpu / Math.max(1, sent)) * 1e6)} |`
  } finally {
    for (const g of gens) g.kill()
    await proxy?.stop()
    await Promise.all(servers.map((s) => s.stop()))
  }
}

async function main() {
  const db = await freshPostgresDatabase()
  const prefix = await checkRedis()
  try {
    console.log(`murmur cluster benchmark — ${cpus().length} CPUs (${cpus()[0]?.model.trim()}), load average ${loadavg().map((l) => l.toFixed(1)).join(' ')} at start`)
    console.log('\n### Storage: SQLite vs PostgreSQL (one instance, median of 3 rounds of 1 s)\n')
    if (!process.argv.includes('--no-storage')) for (const line of await storageSection(db.url)) console.log(line)
    console.log(`\n### Instances behind HAProxy: ${ROOMS} rooms × ${CLIENTS} clients × ${RATE} edits/s (${fmt(ROOMS * CLIENTS * RATE)} edits/s offered), ${SECONDS} s\n`)
    console.log('| setup | edits/s | delivered | p50 ms | p99 ms | errors | instances CPU (sum, % of a core) | CPU µs/edit (all instances) |')
    console.log('| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |')
    for (const [n, hash] of [[1, true], [2, true], [3, true], [3, false]] as const) console.log(await instancesRun(db.url, prefix, n, hash, `n${n}${hash ? 'h' : 'r'}`))
    console.log(`\nload average at the end: ${loadavg().map((l) => l.toFixed(1)).join(' ')}`)
  } finally {
    killAll()
    removeTempDirs()
    await db.drop()
  }
}

await main()
