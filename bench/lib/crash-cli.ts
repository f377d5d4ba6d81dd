/**
 * `npm run soak -- --crash [--rounds 50] [--seed N] [--rooms 4] [--writers 3] [--max-seconds 240] [--chart FILE.svg]`:
 * the long crash-safety run (`crash-driver.ts`). Prints a line per round,
 * then the summary and per-tampering tables; `--chart` writes the SVG (and a
 * PNG beside it through `rsvg-convert` when installed). Exits 1 when a check
 * failed, printing the seed and the command that replays the plan.
 */
import { execFileSync } from 'node:child_process'
import { existsSync, writeFileSync } from 'node:fs'
import { cpus } from 'node:os'
import { runCrashRounds } from './crash-driver.ts'
import { crashSvg, roundLine, summaryTable, tamperTable } from './crash-report.ts'

const USAGE = 'npm run soak -- --crash [--rounds 50] [--seed N] [--rooms 4] [--writers 3] [--max-seconds 240] [--chart FILE.svg]'

/** Runs the crash soak with the arguments after `--crash`; resolves with the exit code. */
export async function crashSoak(argv: string[]): Promise<number> {
  const o = { rounds: 50, seed: Math.floor(Math.random() * 2 ** 31), rooms: 4, writers: 3, maxSeconds: 240, chart: '' }
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i]!
    const num = () => {
      const v = Number(argv[++i])
      if (!Number.isFinite(v)) throw new Error(`${a} needs a number`)
      return v
    }
    if (a === '--rounds') o.rounds = num()
    else if (a === '--seed') o.seed = num()
    else if (a === '--rooms') o.rooms = num()
    else if (a === '--writers') o.writers = num()
    else if (a === '--max-seconds') o.maxSeconds = num()
    else if (a === '--chart') o.chart = argv[++i] ?? ''
    else if (a === '--help' || a === '-h') {
      console.log(USAGE)
      return 0
    } else throw new Error(`unknown argument ${a} (${USAGE})`)
  }
  const replay = `npm run soak -- --crash --seed ${o.seed} --rounds ${o.rounds} --rooms ${o.rooms} --writers ${o.writers}`
  console.log(`crash soak: seed ${o.seed}, ${o.rounds} rounds, ${o.rooms} rooms × ${o.writers} writers, no new round after ${o.maxSeconds} s`)
  const run = await runCrashRounds({ seed: o.seed, rounds: o.rounds, rooms: o.rooms, writersPerRoom: o.writers, maxSeconds: o.maxSeconds, onRound: (r) => console.log(roundLine(r)) })
  const setup = `real server process, ${o.rooms} rooms × ${o.writers} raw y-websocket writers (window 16 durable queries each), seed ${o.seed}, ${cpus().length} cores`
  console.log(`\n${summaryTable(run, setup)}\n\n${tamperTable(run)}\n`)
  if (o.chart) {
    writeFileSync(o.chart, crashSvg(run, `murmur crash safety: ${run.rounds.length} × kill -9 under ${o.rooms * o.writers} concurrent writers (seed ${o.seed})`))
    const png = o.chart.replace(/\.svg$/, '.png')
    if (existsSync('/usr/bin/rsvg-convert') && png !== o.chart) {
      execFileSync('/usr/bin/rsvg-convert', ['-o', png, o.chart])
      console.log(`chart: ${o.chart}, ${png}`)
    } else console.log(`chart: ${o.chart}`)
  }
  if (run.rounds.length < o.rounds && run.failures.length === 0) console.log(`stopped after ${run.rounds.length} rounds: --max-seconds ${o.maxSeconds} reached`)
  if (run.failures.length) {
    console.log(`FAILED (seed ${o.seed}; data kept in ${run.dataDir}):\n  ${run.failures.join('\n  ')}\n  replay: ${replay}`)
    return 1
  }
  console.log(`all ${run.rounds.length} rounds passed (replay: ${replay})`)
  return 0
}
