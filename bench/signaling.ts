/**
 * Signaling benchmark: murmur's `/signal` (the real server process) against
 * y-webrtc's reference server (`y-webrtc/bin/server.js`) and two ceilings: a
 * bare `ws` forwarder (every frame to every other socket, nothing else), and
 * the same with corked sockets (the batching murmur does), side by side in
 * one run on this machine.
 *
 *   node --import tsx bench/signaling.ts [--quick] [--no-readme]
 *
 * - Fan-out, as a curve over the room size (2, 5, 10, 25, 50, 100
 *   subscribers): N sockets on one topic, 2 of them (1 when N = 2) publishing
 *   a typical y-webrtc ICE-candidate message as fast as the server keeps up;
 *   messages delivered per second, summed over all sockets (best of 3
 *   interleaved rounds), and per second of server CPU time (median), which
 *   other load on the machine disturbs less.
 * - Memory, as a curve over the number of peers (250, 1,000, 4,000 held at
 *   once, rooms of 20): RSS growth of the server process per idle connected
 *   peer, read from /proc/<pid>/status after a forced GC (through an
 *   inspector session) on fresh servers.
 *
 * The load generator (`bench/lib/signal-load.ts`) is a separate process on
 * its own core; servers are pinned to the other one. Prints markdown tables,
 * draws `bench/signaling.svg` / `.png` (`bench/lib/chart.ts`) and writes the
 * tables into the "Signaling" section of `bench/README.md` (`--quick`: a
 * short run that leaves both alone; its chart goes to the temp directory).
 */
import { readFileSync, writeFileSync, existsSync } from 'node:fs'
import { cpus, loadavg, tmpdir } from 'node:os'
import { join } from 'node:path'
import { setTimeout as sleep } from 'node:timers/promises'
import { startServer } from '../test/helpers/server.ts'
import { COLORS, renderChart, writeChart } from './lib/chart.ts'
import { cores, forceGc, freePort, inspectorUrl, JobProcess, pin, root, rssKiB, spawnNode, stopChild } from './lib/servers.ts'

const quick = process.argv.includes('--quick')
const writeReadme = !process.argv.includes('--no-readme')
const SERVER_CPU = 0
const LOAD_CPU = 1
/** Subscribers in the fan-out room, one curve point each. */
const FANOUT_SIZES = quick ? [2, 10, 50] : [2, 5, 10, 25, 50, 100]
/** The unmeasured warm-up round runs at this size only. */
const WARMUP_SIZE = quick ? 10 : 25
const ROUNDS = quick ? 1 : 3
const MEASURE_MS = quick ? 500 : 1000
const WINDOW = 64
/** Idle peers held after each memory step (cumulative), in rooms of PEERS_PER_ROOM. */
const PEER_STEPS = quick ? [250, 1000] : [250, 1000, 4000]
const PEERS_PER_ROOM = 20
/** Memory is measured once the last server started has run this long (see main). */
const SETTLE_AFTER_START_MS = 12_000

/** The fan-out topic: a document id, as y-webrtc room names are in murmur. */
const TOPIC = 'Xq3vN0b1c2d3e4f5g6h7i8'

/** A typical y-webrtc signaling message: an ICE candidate for one peer. */
const PAYLOAD = JSON.stringify({
  type: 'publish',
  topic: TOPIC,
  data: {
    to: '6f1c1f4e-2a4b-4d0e-9a51-0c7f2b8e5d11',
    from: 'a3b5c7d9-1e2f-4a6b-8c0d-2e4f6a8b0c1d',
    type: 'signal',
    token: 0.7364021853,
    signal: { type: 'candidate', candidate: { candidate: 'candidate:842163049 1 udp 1677729535 192.0.2.2 54321 typ srflx raddr 0.0.0.0 rport 0 generation 0 ufrag 4ZcD network-cost 999', sdpMLineIndex: 0, sdpMid: '0' } },
  },
})

interface Target {
  name: string
  /** Inspector URL, to force a GC before reading RSS. */
  inspector?: string
  port: number
  path: string
  subscribe: boolean
  pid: number
  stop(): Promise<void>
}

async function startOurs(): Promise<Target> {
  // Limits meant for browsers are lifted: the load generator is one client sending as fast as it can.
  const s = await startServer({ args: ['--max-signal-rate', '1000000000', '--max-connections-per-ip', '1000000', '--log-level', 'error'], env: { NODE_OPTIONS: `${process.env.NODE_OPTIONS ?? ''} ${INSPECT}` } })
  await sleep(200) // the inspector line may follow the URL line
  return { name: 'murmur /signal', inspector: inspectorUrl(s.output()), port: s.port, path: '/signal', subscribe: true, pid: s.child.pid!, stop: async () => void (await s.stop()) }
}

async function startReference(): Promise<Target> {
  const port = await freePort()
  const { child, output } = await spawnNode([INSPECT, join(root, 'node_modules/y-webrtc/bin/server.js')], /Signaling server running/, { PORT: String(port) })
  return { name: 'y-webrtc reference', inspector: inspectorUrl(output()), port, path: '/', subscribe: true, pid: child.pid!, stop: () => stopChild(child) }
}

async function startCeiling(): Promise<Target> {
  const { child, match, output } = await spawnNode([INSPECT, '--import', 'tsx', 'bench/lib/ws-forward.ts'], /listening (\d+)/)
  return { name: 'bare ws forward', inspector: inspectorUrl(output()), port: Number(match[1]), path: '/', subscribe: false, pid: child.pid!, stop: () => stopChild(child) }
}

async function startCorkedCeiling(): Promise<Target> {
  const { child, match, output } = await spawnNode([INSPECT, '--import', 'tsx', 'bench/lib/ws-forward.ts', '--cork'], /listening (\d+)/)
  return { name: 'bare ws forward + cork', inspector: inspectorUrl(output()), port: Number(match[1]), path: '/', subscribe: false, pid: child.pid!, stop: () => stopChild(child) }
}

/** The load generator: one process for the whole run, on its own core. */
let load: JobProcess

interface Rate {
  /** Messages delivered per wall-clock second, summed over all sockets. */
  perSecond: number
  /** Messages delivered per second of server CPU time (user + system): less sensitive to other load on the machine. */
  perCpuSecond: number
  /** Messages delivered per write system call of the server (syscw of /proc/<pid>/io; a `writev` counts once): how much each write batches. */
  perWrite: number
}

async function fanout(t: Target, n: number, measureMs = MEASURE_MS): Promise<Rate> {
  // The watcher (the last socket) must not publish: with 2 subscribers, one publisher.
  const job = { mode: 'fanout', host: '127.0.0.1', port: t.port, path: t.path, subscribe: t.subscribe, topic: TOPIC, n, publishers: Math.min(2, n - 1), payload: PAYLOAD, window: WINDOW, warmupMs: 300, measureMs, serverPid: t.pid }
  const r = await load.run<{ deliveries: number; seconds: number; serverCpuSeconds: number; serverWrites: number }>(job)
  return { perSecond: r.deliveries / r.seconds, perCpuSecond: r.deliveries / Math.max(r.serverCpuSeconds, 0.01), perWrite: r.deliveries / Math.max(r.serverWrites, 1) }
}

/** The median (upper median for an even count). */
const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!

/** Every server runs with an inspector on a free port, used only to force a GC before reading RSS. */
const INSPECT = '--inspect=127.0.0.1:0'

/**
 * RSS of the server after forced full GCs, once it stops moving (V8 gives
 * memory back a while after a collection, and closed sockets take a moment to
 * be released): a GC, 500 ms, another GC, then sampled every 250 ms until four
 * samples in a row are within 64 KiB, or 8 s; the median of the last four.
 */
async function settledRss(t: Target): Promise<number> {
  if (!t.inspector) throw new Error(`${t.name}: no inspector URL`)
  await sleep(300)
  await forceGc(t.inspector)
  await sleep(500)
  await forceGc(t.inspector)
  const samples = [rssKiB(t.pid)]
  for (let i = 0; i < 32; i++) {
    await sleep(250)
    samples.push(rssKiB(t.pid))
    const last = samples.slice(-4)
    if (last.length === 4 && Math.max(...last) - Math.min(...last) < 64) break
  }
  return median(samples.slice(-4))
}

/**
 * RSS growth per idle peer as the number of peers grows: peers are added in
 * steps (`PEER_STEPS`, rooms of `PEERS_PER_ROOM`), all held, and the settled
 * RSS read after each step; one value per step (KiB per peer held so far).
 */
async function memoryCurve(t: Target): Promise<number[]> {
  const idle = (count: number, offset: number) =>
    load.run({ mode: 'idle', host: '127.0.0.1', port: t.port, path: t.path, subscribe: t.subscribe, count, offset, perRoom: PEERS_PER_ROOM })
  // A few connections first, so code compiled on the first one is in the baseline.
  await idle(50, 0)
  await load.run({ mode: 'release' })
  // The released sockets' memory goes back in stages: settle twice, keep the second reading.
  await settledRss(t)
  const before = await settledRss(t)
  const perPeer: number[] = []
  let held = 0
  try {
    for (const peers of PEER_STEPS) {
      await idle(peers - held, held)
      held = peers
      perPeer.push(((await settledRss(t)) - before) / peers)
    }
  } finally {
    await load.run({ mode: 'release' })
  }
  return perPeer
}

const fmt = (x: number) => (Number.isFinite(x) ? Math.round(x).toLocaleString('en-US') : '–')
const times = (a: number, b: number) => (Number.isFinite(a) && Number.isFinite(b) && b > 0 ? `${(a / b).toFixed(2)}×` : '–')

/** Colors and dashes per server, the same in every panel: murmur solid blue, the reference red, the two ceilings grey and dashed. */
const STYLE: Record<string, { color: string; dash?: string }> = {
  'y-webrtc reference': { color: COLORS[1]! },
  'murmur /signal': { color: COLORS[0]! },
  'bare ws forward': { color: '#7f7f7f', dash: '6 4' },
  'bare ws forward + cork': { color: COLORS[2]!, dash: '6 4' },
}

/** The signaling chart: fan-out deliveries/s and per server CPU-second against subscribers, and RSS per idle peer against peers. */
function signalingChart(names: string[], rates: Map<string, Rate>, memory: Map<string, number[]>, footer: string): string {
  const fan = (key: keyof Rate) => names.map((name) => ({ name, ...STYLE[name]!, points: FANOUT_SIZES.map((n) => ({ x: n, y: rates.get(`${name}/${n}`)![key] })) }))
  const subscribers = { label: 'subscribers in the room (log scale)', log: true, ticks: FANOUT_SIZES.map((n) => ({ value: n, label: String(n) })), min: FANOUT_SIZES[0]! / 1.3, max: FANOUT_SIZES.at(-1)! * 1.3 }
  return renderChart({
    title: 'Signaling: murmur /signal vs the y-webrtc reference server, and two bare ws ceilings',
    legend: names.map((name) => ({ name, ...STYLE[name]! })),
    footer,
    panels: [
      { title: `Fan-out: deliveries per second, best of ${ROUNDS} round${ROUNDS > 1 ? 's' : ''} (higher is better)`, x: subscribers, y: { label: 'deliveries/s (log)', log: true }, series: fan('perSecond'), legend: 'none', height: 220 },
      { title: `Fan-out: deliveries per server CPU-second, median of ${ROUNDS} (higher is better)`, x: subscribers, y: { label: 'deliveries per CPU-s (log)', log: true }, series: fan('perCpuSecond'), legend: 'none', height: 220 },
      {
        title: `Memory per idle peer (rooms of ${PEERS_PER_ROOM}; lower is better)`,
        x: { label: 'idle peers connected (log scale)', log: true, ticks: PEER_STEPS.map((n) => ({ value: n, label: n.toLocaleString('en-US') })), min: PEER_STEPS[0]! / 1.4, max: PEER_STEPS.at(-1)! * 1.4 },
        y: { label: 'KiB RSS per peer', min: 0 },
        series: names.map((name) => ({ name, ...STYLE[name]!, points: PEER_STEPS.map((n, i) => ({ x: n, y: memory.get(name)![i]! })) })),
        legend: 'none',
        height: 200,
      },
    ],
  })
}

async function main() {
  const t0 = performance.now()
  load = new JobProcess(['--import', 'tsx', 'bench/lib/signal-load.ts'], LOAD_CPU)
  const targets: Target[] = []
  for (const start of [startReference, startOurs, startCeiling, startCorkedCeiling]) targets.push(await start())
  const startedAt = performance.now() // when the last server came up
  const pinned = targets.every((t) => pin(t.pid, SERVER_CPU))
  try {
    // Memory first, on fresh servers: after a fan-out their heaps have slack that
    // new connections fill without growing RSS. (Memory needs no JIT warm-up.)
    // But not too fresh: some 8 s after start-up V8's memory reducer gives back
    // several MiB (murmur: 90 → 82 MiB), which would land inside a measurement.
    await sleep(Math.max(0, SETTLE_AFTER_START_MS - (performance.now() - startedAt)))
    const memory = new Map<string, number[]>()
    for (const t of targets) {
      memory.set(t.name, await memoryCurve(t))
      process.stderr.write(`memory ${t.name}: ${memory.get(t.name)!.map((k, i) => `${PEER_STEPS[i]} peers ${k.toFixed(1)}`).join(', ')} KiB/peer\n`)
    }
    // An unmeasured round first: V8 needs a few seconds of load to optimize the
    // hot paths and grow its young generation, in the servers and the load generator.
    for (const t of targets) await fanout(t, WARMUP_SIZE, 1000)
    // Interleaved rounds, so load from elsewhere on the machine hits every server alike.
    const runs = new Map<string, Rate[]>() // `${name}/${n}` → one Rate per round
    for (let round = 0; round < ROUNDS; round++) {
      for (const n of FANOUT_SIZES) {
        // Rotate the order each round, so no server always follows the same one.
        for (const t of [...targets.slice(round % targets.length), ...targets.slice(0, round % targets.length)]) {
          const r = await fanout(t, n)
          const key = `${t.name}/${n}`
          runs.set(key, [...(runs.get(key) ?? []), r])
          process.stderr.write(`round ${round + 1} N=${n} ${t.name}: ${fmt(r.perSecond)} deliveries/s, ${fmt(r.perCpuSecond)} per server CPU-s, ${r.perWrite.toFixed(1)} per write\n`)
        }
      }
    }
    // Throughput: best round (load from elsewhere only ever slows a run down).
    // CPU efficiency: median round (a starved server batches more, which flatters it).
    const rates = new Map<string, Rate>(
      [...runs].map(([key, rs]) => [key, { perSecond: Math.max(...rs.map((r) => r.perSecond)), perCpuSecond: median(rs.map((r) => r.perCpuSecond)), perWrite: median(rs.map((r) => r.perWrite)) }]),
    )

    const names = targets.map((t) => t.name) // reference, ours, ceiling, corked ceiling
    const header = (first: string) => [`| ${first} | ${names.join(' | ')} | murmur ÷ reference | murmur ÷ bare ws | murmur ÷ bare ws + cork |`, '| ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |']
    const row = (label: string, [ref, ours, ceil, cork]: number[], digits = 0) =>
      `| ${label} | ${[ref, ours, ceil, cork].map((x) => (digits ? x!.toFixed(digits) : fmt(x!))).join(' | ')} | ${times(ours!, ref!)} | ${times(ours!, ceil!)} | ${times(ours!, cork!)} |`
    const fanRows = (key: keyof Rate, digits = 0) => FANOUT_SIZES.map((n) => row(n === 2 ? '2 (1 publisher)' : String(n), names.map((name) => rates.get(`${name}/${n}`)![key]), digits))
    const text = [
      `**Fan-out: deliveries per second** (best of ${ROUNDS} rounds; higher is better):`,
      '',
      ...header('subscribers'),
      ...fanRows('perSecond'),
      '',
      `**Fan-out: deliveries per server CPU-second** (median of ${ROUNDS} rounds; higher is better):`,
      '',
      ...header('subscribers'),
      ...fanRows('perCpuSecond'),
      '',
      `**Fan-out: deliveries per server write system call** (median of ${ROUNDS} rounds; how many deliveries one \`write\`/\`writev\` carries):`,
      '',
      ...header('subscribers'),
      ...fanRows('perWrite', 1),
      '',
      `**Memory per idle peer**: KiB of RSS growth per peer, all peers held (rooms of ${PEERS_PER_ROOM}; lower is better):`,
      '',
      ...header('idle peers'),
      ...PEER_STEPS.map((n, i) => row(`${n.toLocaleString('en-US')} (${Math.ceil(n / PEERS_PER_ROOM)} rooms)`, names.map((name) => memory.get(name)![i]!), 1)),
    ].join('\n')
    const seconds = (performance.now() - t0) / 1000
    const setup =
      `${cpus()[0]?.model ?? 'unknown CPU'} × ${cores}, Node ${process.version}, load average ${loadavg()[0].toFixed(1)} at the end; ` +
      `servers ${pinned ? `pinned to CPU ${SERVER_CPU}, load generator to CPU ${LOAD_CPU}` : 'not pinned'}; ` +
      `${PAYLOAD.length}-byte ICE-candidate message, 2 publishers (1 with 2 subscribers), ≤${WINDOW} messages in flight, 1 warm-up round (${WARMUP_SIZE} subscribers) and ${ROUNDS} measured interleaved rounds × ${MEASURE_MS / 1000} s per size; ` +
      `idle peers added in steps of ${PEER_STEPS.map((n) => n.toLocaleString('en-US')).join(' → ')} on fresh servers; run took ${seconds.toFixed(0)} s (${new Date().toISOString().slice(0, 10)}).`
    console.log(`\n${text}\n\n${setup}`)
    const chart = writeChart(quick ? join(tmpdir(), 'murmur-signaling-quick.svg') : join(root, 'bench/signaling.svg'), signalingChart(names, rates, memory, `murmur bench/signaling.ts, ${new Date().toISOString().slice(0, 10)}: ${cores} shared cores, servers on one, load generator on the other`))
    console.log(chart.note)
    if (writeReadme && !quick) updateReadme(`${text}\n\n![signaling fan-out and memory per peer](signaling.png)`, setup)
  } finally {
    await load.close()
    for (const t of targets) await t.stop()
  }
}

/** Replaces the table and setup line in the "Signaling" section of bench/README.md, keeping the prose. */
function updateReadme(table: string, setup: string): void {
  const path = join(root, 'bench/README.md')
  const text = existsSync(path) ? readFileSync(path, 'utf8') : '# Benchmarks\n'
  const start = text.indexOf('\n## Signaling\n')
  if (start < 0) {
    writeFileSync(path, `${text.trimEnd()}\n\n## Signaling\n\n<!-- signaling:begin -->\n${table}\n\n${setup}\n<!-- signaling:end -->\n`)
    return
  }
  const begin = text.indexOf('<!-- signaling:begin -->', start)
  const end = text.indexOf('<!-- signaling:end -->', start)
  if (begin < 0 || end < 0) throw new Error('bench/README.md: Signaling section lacks <!-- signaling:begin/end --> markers')
  writeFileSync(path, `${text.slice(0, begin)}<!-- signaling:begin -->\n${table}\n\n${setup}\n${text.slice(end)}`)
}

await main()
