/**
 * Protocol fuzzer for the murmur server: `npm run fuzz -- [--seconds 60] [--seed N]`.
 *
 * Throws random, truncated, bit-flipped and length-lying frames at `/sync` and
 * `/signal` of a real server child process (mutations of valid messages inside
 * valid outer framing, crafted Yjs updates, hostile JSON, broken WebSocket
 * framing, odd HTTP paths) while a bystander pair keeps editing in another
 * room, then checks that the victim room is unchanged. See bench/README.md
 * ("Fuzzing") for what each column means.
 *
 * Options:
 *   --seconds N        fuzzing time (default 60)
 *   --seed N           32-bit seed (default: random; printed)
 *   --concurrency N    fuzz sockets at once (default 12)
 *   --victim-share F   share of the time spent on the victim phase (default 0.3)
 *   --sessions R,V     end each phase after R (rooms) / V (victim) sessions, time permitting
 *   --session I[,J]    replay only these sessions of the rooms phase (prints them)
 *   --json FILE        also write the full report as JSON
 *   --chart FILE.svg   also draw memory, event-loop lag and input rate over the run (SVG, and PNG via rsvg-convert)
 *   --no-probe         skip the slow-reader probe after the phases
 *   --quiet            no progress lines
 *   --abuse            instead: the abuse table (bench/abuse.ts; --before DIR, --attack NAME)
 * Exit code 1 when a check fails (crash, hang, undocumented close code, victim
 * changed, bystander lost edits, server error logs).
 */
import { writeFileSync } from 'node:fs'
import { buildCorpus } from './lib/fuzz-corpus.ts'
import { makeSession } from './lib/fuzz-frames.ts'
import { writeChart } from './lib/chart.ts'
import { fuzzChart } from './lib/fuzz-chart.ts'
import { formatReport } from './lib/fuzz-report.ts'
import { fuzzLimits, runFuzz, type FuzzReport } from './lib/fuzz-run.ts'

if (process.argv.includes('--abuse')) {
  const { runAbuse } = await import('./abuse.ts')
  process.exit((await runAbuse(process.argv)) ? 0 : 1)
}

function arg(name: string): string | undefined {
  const i = process.argv.indexOf(`--${name}`)
  return i >= 0 ? process.argv[i + 1] : undefined
}

const seed = arg('seed') !== undefined ? Number(arg('seed')) >>> 0 : (Math.random() * 2 ** 32) >>> 0
const seconds = Number(arg('seconds') ?? 60)
const only = arg('session')?.split(',').map(Number)

if (only) {
  const corpus = buildCorpus(seed)
  for (const i of only) {
    const s = makeSession(seed, 'rooms', i, corpus, fuzzLimits, 'victim')
    const show = (d: Uint8Array | string) => (typeof d === 'string' ? JSON.stringify(d.slice(0, 300)) : Buffer.from(d.subarray(0, 300)).toString('hex'))
    console.log(`session ${i}: ${s.endpoint} ${s.path || ''} ${s.kind ?? ''}`)
    for (const f of s.frames) console.log(`  ${f.kind}${f.repeat ? ` ×${f.repeat}` : ''}: ${show(f.data)}`)
    for (const r of s.raw ?? []) console.log(`  raw: ${show(r)}`)
  }
}

// Exit through 'exit' handlers, which stop the server and bystander children.
for (const sig of ['SIGINT', 'SIGTERM'] as const) process.on(sig, () => process.exit(130))

process.stderr.write(`fuzzing with seed ${seed} for ${only ? 'the given sessions' : `${seconds} s`}\n`)
const report: FuzzReport = await runFuzz({
  seed,
  seconds,
  only,
  concurrency: Number(arg('concurrency') ?? 12),
  victimShare: Number(arg('victim-share') ?? 0.3),
  phaseSessions: arg('sessions') ? (([rooms, victim]) => ({ rooms, victim }))(arg('sessions')!.split(',').map(Number)) : undefined,
  verbose: !process.argv.includes('--quiet'),
  noProbe: process.argv.includes('--no-probe'),
})
console.log(formatReport(report))
const json = arg('json')
if (json) writeFileSync(json, JSON.stringify(report, null, 2))
const chart = arg('chart')
if (chart) console.log(writeChart(chart, fuzzChart(report)).note)

const failures = [
  report.crashes.length && 'server crashed',
  report.healthz !== 200 && '/healthz not 200',
  report.undocumentedCloseCodes.length && 'undocumented close codes',
  !report.victim.unchangedLive && 'victim changed (live)',
  !report.victim.unchangedStored && 'victim changed (stored)',
  (!report.bystander || report.bystander.lost > 0 || !report.bystander.converged) && 'bystander lost edits',
  report.violations.length && 'protocol violations',
  report.serverErrors.length && 'server logged errors',
  report.slowReaderError && `slow-reader probe failed: ${report.slowReaderError}`,
  report.slowReader && (report.slowReader.rssGrowthMiB > 128 || report.slowReader.healthzMs > 2000) && 'slow reader made the server buffer or block (F3)',
  report.slowReader && (report.slowReader.readerClose !== 1013 || report.slowReader.healthzStatus !== 200 || report.slowReader.serverExit !== null) && 'slow reader was not closed with 1013, or the server stopped answering',
].filter(Boolean)
if (failures.length) {
  console.log(`\nFAILED: ${failures.join(', ')} (seed ${seed})`)
  process.exitCode = 1
}
