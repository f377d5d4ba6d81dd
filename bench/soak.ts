/**
 * Soak: the convergence harness (`test/convergence/harness.ts`) over many
 * seeds, 3–8 peers each (drawn from the seed), for a bounded time.
 *
 *   npm run soak -- [--minutes 10] [--seed <n>] [--runs <k>] [--peers <p>] [--steps <s>] [--max-kills <k>] [--max-crashes <c>] [--instances <n>] [--chart FILE.svg] [--verbose]
 *
 * Every third seed (seed % 3 === 2) runs on 3 instances on PostgreSQL + Redis
 * (`test/convergence/instances.ts`; needs both services, as `npm test`) and
 * the rest on one SQLite server; `--instances <n>` runs every seed on n.
 *
 * With `--crash` it runs the crash-safety soak instead (`bench/lib/crash-cli.ts`):
 *
 *   npm run soak -- --crash [--rounds 50] [--seed N] [--rooms 4] [--writers 3] [--max-seconds 240] [--chart FILE.svg]
 *
 * Seeds run one after another, starting at `--seed` (default: random) and
 * counting up, until `--minutes` have passed (a started run finishes) or
 * `--runs` seeds ran. Prints one table row per seed ("agree s": from healing
 * everything to identical replicas and server) and, for each failure, the
 * full report with the command that replays it; `--chart` draws agreement time
 * against peers. Exits 1 if any seed failed.
 */
import { runSeed, reproduce, type RunResult } from '../test/convergence/harness.ts'
import { writeChart } from './lib/chart.ts'
import { crashSoak } from './lib/crash-cli.ts'
import { soakChart } from './lib/soak-chart.ts'

if (process.argv.includes('--crash')) process.exit(await crashSoak(process.argv.slice(2).filter((a) => a !== '--crash')))

function parseArgs(argv: string[]) {
  const opts = { minutes: 10, seed: undefined as number | undefined, runs: Infinity, peers: undefined as number | undefined, steps: undefined as number | undefined, maxCrashes: undefined as number | undefined, maxKills: undefined as number | undefined, minKills: undefined as number | undefined, instances: undefined as number | undefined, chart: undefined as string | undefined, verbose: false }
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i]
    const num = () => {
      const v = Number(argv[++i])
      if (!Number.isFinite(v)) throw new Error(`${a} needs a number`)
      return v
    }
    if (a === '--minutes') opts.minutes = num()
    else if (a === '--seed') opts.seed = num()
    else if (a === '--runs') opts.runs = num()
    else if (a === '--peers') opts.peers = num()
    else if (a === '--steps') opts.steps = num()
    else if (a === '--max-crashes') opts.maxCrashes = num()
    else if (a === '--max-kills') opts.maxKills = num()
    else if (a === '--min-kills') opts.minKills = num()
    else if (a === '--instances') opts.instances = num()
    else if (a === '--chart') opts.chart = argv[++i]
    else if (a === '--verbose' || a === '-v') opts.verbose = true
    else if (a === '--help' || a === '-h') {
      console.log('npm run soak -- [--minutes 10] [--seed <n>] [--runs <k>] [--peers 3-8] [--steps <s>] [--max-kills <k>] [--max-crashes <c>] [--min-kills <k>] [--instances <n>] [--chart FILE.svg] [--verbose]')
      process.exit(0)
    } else throw new Error(`unknown argument ${a} (see --help)`)
  }
  if (opts.peers !== undefined && (opts.peers < 2 || opts.peers > 8)) throw new Error('--peers must be 2–8')
  return opts
}

// Ctrl-C: exit through process.exit so the harness's exit hook kills the peers and the server.
process.on('SIGINT', () => process.exit(130))
process.on('SIGTERM', () => process.exit(143))

const args = parseArgs(process.argv.slice(2))
const firstSeed = args.seed ?? Math.floor(Math.random() * 2 ** 31)
const deadline = Date.now() + args.minutes * 60_000
const columns = ['seed', 'inst', 'peers', 'steps', 'edits', 'burst', 'rtc', 'srv', 'block', 'part', 'heal', 'kill', 'crash', 'segv', 'server', 'closes', 'cli err', 'length', 'agree s', 'total s', 'outcome']
const widths = [11, 4, 5, 5, 5, 5, 4, 4, 5, 4, 4, 4, 5, 4, 12, 22, 7, 7, 8, 7, 7]
const row = (cells: (string | number)[]) => cells.map((c, i) => String(c).padStart(widths[i])).join(' ')

console.log(`soak: seeds from ${firstSeed}, ${args.minutes} min${Number.isFinite(args.runs) ? `, at most ${args.runs} runs` : ''}${args.peers ? `, ${args.peers} peers` : ', 3–8 peers'}`)
console.log(row(columns))
/** `--compact-after-updates 5 --idle-unload-ms 90` → `c5 u90`. */
function serverFlags(args: string[]): string {
  const short: Record<string, string> = { '--compact-after-updates': 'c', '--idle-unload-ms': 'u' }
  const out: string[] = []
  for (let i = 0; i < args.length; i += 2) out.push(`${short[args[i]] ?? args[i]}${args[i + 1]}`)
  return out.join(' ') || 'defaults'
}

const results: RunResult[] = []
const clientErrorSamples: string[] = []
for (let seed = firstSeed; results.length < args.runs && (results.length === 0 || Date.now() < deadline); seed = (seed + 1) % 2 ** 31) {
  const opts = { seed, peers: args.peers, steps: args.steps, maxCrashes: args.maxCrashes, maxKills: args.maxKills, minKills: args.minKills, instances: args.instances ?? (seed % 3 === 2 ? 3 : 1), log: args.verbose ? (l: string) => console.log(`  ${l}`) : undefined }
  const r = await runSeed(opts)
  results.push(r)
  const closes = Object.entries(r.closeCodes)
    .filter(([c]) => c !== 'local')
    .map(([c, k]) => `${c}×${k}`)
    .join(' ')
  const f = r.faults
  console.log(row([r.seed, r.instances, r.peers, r.steps, r.edits, f.burst, f.rtc, f.srv, f.block, f.partition, f.heal, f.kill, f.crash, r.peerCrashes.length, serverFlags(r.serverArgs), closes || '-', r.clientErrors, r.length, (r.agreeMs / 1000).toFixed(1), (r.ms / 1000).toFixed(1), r.error ? 'FAIL' : 'ok']))
  for (const note of r.notes) console.log(`  note (seed ${r.seed}): ${note}`)
  if (r.error) console.log(`\n${r.error}\n  replay: ${reproduce(opts)}\n`)
  for (const e of r.clientErrorSamples) if (!clientErrorSamples.includes(e)) clientErrorSamples.push(e)
}
const failed = results.filter((r) => r.error)
const edits = results.reduce((s, r) => s + r.edits, 0)
const kills = results.reduce((s, r) => s + r.faults.kill, 0)
console.log(`\n${results.length} seeds, ${edits} edit transactions, ${kills} server kills: ${failed.length ? `${failed.length} FAILED (seeds ${failed.map((r) => r.seed).join(', ')})` : 'all converged'}`)
if (clientErrorSamples.length) console.log(`client library exceptions caught in WebSocket handlers (reported, as a browser would, not failures):\n  ${clientErrorSamples.join('\n  ')}`)
if (args.chart) console.log(writeChart(args.chart, soakChart(results)).note)
process.exit(failed.length ? 1 : 0)
