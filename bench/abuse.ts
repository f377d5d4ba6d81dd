/**
 * The abuse table (`npm run fuzz -- --abuse [--before DIR] [--attack NAME]`):
 * each attack of the adversarial review (bench/lib/abuse.ts) against a fresh
 * server with default limits, optionally also against an older checkout
 * (`--before`, e.g. a `git worktree` of the commit before the fixes), printed
 * as one table: the bystander's worst round trip on another document and
 * address (how long everyone else waited), RSS before / peak / after, and how
 * the server answered. Exit code 1 when the server died in an attack.
 */
import { attackNames, runAttack, type AbuseResult } from './lib/abuse.ts'

/** Runs the abuse scenarios and prints the table. */
export async function runAbuse(argv: string[]): Promise<boolean> {
  const arg = (name: string) => (argv.includes(`--${name}`) ? argv[argv.indexOf(`--${name}`) + 1] : undefined)
  const before = arg('before')
  const only = arg('attack')
  const names = only ? attackNames.filter((n) => n.includes(only)) : attackNames
  const rows: { build: string; r: AbuseResult }[] = []
  for (const name of names) {
    for (const [build, root] of before ? ([['before', before], ['after', undefined]] as const) : ([['this', undefined]] as const)) {
      process.stderr.write(`${build}: ${name}…\n`)
      rows.push({ build, r: await runAttack(name, root) })
    }
  }
  const fmt = (n: number) => (Number.isFinite(n) ? n.toFixed(0) : '?')
  console.log('\n| attack | build | worst bystander round trip (ms) | RSS before → peak → after (MiB) | server answer |')
  console.log('|---|---|---:|---|---|')
  for (const { build, r } of rows) {
    console.log(`| ${r.attack} | ${build} | ${fmt(r.worstRoundTripMs)} | ${fmt(r.rssBeforeMiB)} → ${fmt(r.rssPeakMiB)} → ${fmt(r.rssAfterMiB)} | ${r.outcome} |`)
  }
  return rows.every(({ r }) => !r.outcome.startsWith('server died'))
}
