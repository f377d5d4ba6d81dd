/**
 * Profiles one backup-benchmark scenario on one server: the server runs with
 * `--cpu-prof`, the load in the benchmark's load generator, and the profile is
 * summarized (self time and inclusive time per function, top N).
 *
 *   node --import tsx bench/lib/backup-profile.ts <murmur|hocus> <cold-fetch|warm-fetch|durable> [--edits N] [--top N] [--strace]
 *     [--clients K] [--shared] [--query-every N]   (durable)
 *
 * - cold-fetch / warm-fetch: uploads the first N edits (default all) of the
 *   automerge-paper trace as one document, restarts the server with the
 *   profiler on, fetches a small warm-up document, then fetches the large one
 *   5 times with a fresh raw client (cold: a new server start for the first
 *   fetch only counts; every later fetch of Hocuspocus is also a load from
 *   storage, as it unloads documents without connections at once, while
 *   murmur keeps them 30 s; warm: a holder socket keeps it loaded).
 * - durable: K clients (default 1; `--shared`: on one document) appending
 *   single characters for 3 s (window 64; murmur: a durable query after every
 *   `--query-every` updates).
 * `--strace` also counts fsync/fdatasync/pwrite64/writev calls of the server.
 * Profiles are kept in the printed directory (open them in Chrome DevTools).
 */
import { spawn, type ChildProcess } from 'node:child_process'
import { readdirSync, readFileSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { createInterface } from 'node:readline'
import { killAll, startHocus, startMurmur, tempDir, type Target } from './backup-servers.ts'
import { root } from './servers.ts'
import { traceSnapshots } from '../../test/helpers/trace.ts'

const [which = 'murmur', scenario = 'cold-fetch'] = process.argv.slice(2).filter((a) => !a.startsWith('--') && !/^\d+$/.test(a))
const flag = (name: string, dflt: number) => {
  const i = process.argv.indexOf(name)
  return i >= 0 ? Number(process.argv[i + 1]) : dflt
}
const edits = flag('--edits', Infinity)
const top = flag('--top', 25)
const withStrace = process.argv.includes('--strace')
const clients = flag('--clients', 1)
const shared = process.argv.includes('--shared')
const queryEvery = flag('--query-every', 1)

interface ProfileNode {
  id: number
  callFrame: { functionName: string; url: string; lineNumber: number }
  children?: number[]
}
interface Profile {
  nodes: ProfileNode[]
  samples: number[]
  timeDeltas: number[]
  startTime: number
  endTime: number
}

/**
 * Self and inclusive milliseconds per function (name + file:line), from a
 * .cpuprofile. With `from`, samples before the first one whose stack has a
 * frame from a matching URL are left out (start-up and module loading).
 */
export function summarize(profile: Profile, n = 25, from?: RegExp): string {
  const byId = new Map(profile.nodes.map((x) => [x.id, x]))
  const parent = new Map<number, number>()
  for (const x of profile.nodes) for (const c of x.children ?? []) parent.set(c, x.id)
  const selfUs = new Map<number, number>()
  const stackMatches = (id: number) => {
    for (let cur: number | undefined = id; cur !== undefined; cur = parent.get(cur)) if (from!.test(byId.get(cur)!.callFrame.url)) return true
    return false
  }
  let first = from ? profile.samples.findIndex(stackMatches) : 0
  if (first < 0) first = profile.samples.length
  let spanUs = 0
  profile.samples.forEach((id, i) => {
    if (i < first) return
    const dt = profile.timeDeltas[i + 1] ?? 0
    spanUs += dt
    selfUs.set(id, (selfUs.get(id) ?? 0) + dt)
  })
  const key = (x: ProfileNode) => `${x.callFrame.functionName || '(anonymous)'} ${x.callFrame.url.replace(/^file:\/\//, '').replace(root + '/', '')}:${x.callFrame.lineNumber + 1}`
  const self = new Map<string, number>()
  const incl = new Map<string, number>()
  for (const [id, us] of selfUs) {
    self.set(key(byId.get(id)!), (self.get(key(byId.get(id)!)) ?? 0) + us)
    // Inclusive: count once per distinct function on the stack.
    const seen = new Set<string>()
    for (let cur: number | undefined = id; cur !== undefined; cur = parent.get(cur)) {
      const k = key(byId.get(cur)!)
      if (seen.has(k)) continue
      seen.add(k)
      incl.set(k, (incl.get(k) ?? 0) + us)
    }
  }
  const total = spanUs / 1000
  const fmt = (m: Map<string, number>) =>
    [...m]
      .sort((a, b) => b[1] - a[1])
      .slice(0, n)
      .map(([k, us]) => `  ${(us / 1000).toFixed(1).padStart(9)} ms  ${k}`)
      .join('\n')
  return `profile span ${total.toFixed(0)} ms${from ? ` (from the first sample under ${from.source})` : ''}\nself time:\n${fmt(self)}\ninclusive time:\n${fmt(incl)}`
}

/** A load generator process (same jobs as the benchmark). */
function loader() {
  const child: ChildProcess = spawn(process.execPath, ['--import', 'tsx', 'bench/lib/backup-load.ts'], { cwd: root, stdio: ['pipe', 'pipe', 'inherit'] })
  const lines = createInterface({ input: child.stdout! })
  const queue: ((l: string) => void)[] = []
  lines.on('line', (l) => queue.shift()?.(l))
  return {
    run: <T>(job: object) =>
      new Promise<T>((res, rej) => {
        queue.push((l) => {
          const r = JSON.parse(l)
          if (r.error) rej(new Error(r.error))
          else res(r)
        })
        child.stdin!.write(JSON.stringify(job) + '\n')
      }),
    stop: () => (child.stdin!.end(), new Promise((r) => child.once('exit', r))),
  }
}

async function main() {
  const dir = tempDir(`prof-${which}`)
  const profDir = join(dir, 'profiles')
  const start = (profile: boolean): Promise<Target> =>
    which === 'murmur'
      ? startMurmur(join(dir, 'data'), { nodeArgs: profile ? ['--cpu-prof', '--cpu-prof-dir', profDir] : [] })
      : startHocus(dir, {}, profile ? ['--cpu-prof', '--cpu-prof-dir', profDir] : [])
  const load = loader()
  const [small, big] = traceSnapshots([10_000, edits])
  const smallFile = join(dir, 'small.bin')
  const bigFile = join(dir, 'big.bin')
  writeFileSync(smallFile, small!.update)
  writeFileSync(bigFile, big!.update)
  const job = (t: Target, o: object) => ({ proto: t.proto, host: '127.0.0.1', port: t.port, ...o })
  const notes: string[] = []
  if (scenario.endsWith('fetch')) {
    let t = await start(false)
    await load.run(job(t, { mode: 'seed', docs: ['big', 'warmup'], files: [bigFile, smallFile], parallel: 1 }))
    await t.stop()
    t = await start(true)
    const cold = scenario === 'cold-fetch'
    const r = await load.run<{ cold: number[] | null; warm: Record<string, number[][]>; warmRecv: number[][] }>(
      job(t, { mode: 'fetch', docs: ['big'], textLength: [big!.textLength], clients: ['raw'], repeat: 5, cold, warmupDocs: ['warmup'], updateFile: smallFile }),
    )
    const r1 = (xs: number[][]) => JSON.stringify(xs.map((x) => x.map((v) => Math.round(v))))
    notes.push(`fetch ms: cold ${JSON.stringify(r.cold?.map(Math.round))} then held-loaded ${r1(r.warm.raw!)}, of which until the answer arrived ${r1(r.warmRecv)}`)
    await t.stop(15_000)
  } else {
    const t = await start(true)
    let st: ChildProcess | null = null
    let stErr = ''
    if (withStrace) {
      st = spawn('strace', ['-f', '-c', '-e', 'trace=fsync,fdatasync,pwrite64,writev', '-p', String(t.pid)], { stdio: ['ignore', 'ignore', 'pipe'] })
      st.stderr!.on('data', (d) => (stErr += d))
      await new Promise((r) => setTimeout(r, 500))
    }
    const r = await load.run<{ results: object[] }>(job(t, { mode: 'durable', runs: [{ clients, shared }], queryEvery, window: 64, warmupMs: 300, measureMs: 3000, drainMs: 2000, serverPid: t.pid, series: t.series }))
    notes.push(`durable: ${JSON.stringify(r.results)}`)
    if (st) {
      st.kill('SIGINT')
      await new Promise((res) => st!.once('exit', res))
      notes.push(stErr.split('\n').filter((l) => /calls|fsync|fdatasync|pwrite|writev|total|---/.test(l)).join('\n'))
    }
    await t.stop(15_000)
  }
  await load.stop()
  const files = readdirSync(profDir).filter((f) => f.endsWith('.cpuprofile'))
  console.log(`${which} ${scenario} (${big!.edits} edits, ${big!.update.byteLength} B state); profiles in ${profDir}`)
  for (const n of notes) console.log(n)
  const focus = which === 'murmur' ? /server\/(sync|rooms)\.ts/ : /@hocuspocus\/server/
  // Only the main thread: the other profile is tsx's module-loader worker.
  const main = files.find((f) => /\.0\.\d+\.cpuprofile$/.test(f)) ?? files[0]!
  console.log(`\n${main}\n${summarize(JSON.parse(readFileSync(join(profDir, main), 'utf8')), top, focus)}`)
}

try {
  await main()
} catch (err) {
  killAll()
  throw err
}
