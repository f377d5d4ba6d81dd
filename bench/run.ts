/**
 * `npm run bench`: runs every benchmark one after another (never in
 * parallel: they compare servers side by side and need the cores), each in
 * its own process, and prints their tables. `npm run bench -- signaling`
 * runs only the named ones; with exactly one named, the flags after it go to
 * that benchmark with their values (`npm run bench -- hybrid --peers 2,4`). Each benchmark is
 * bounded in time by itself. `client` and `hybrid-browser` run Chromium and
 * re-execute themselves under `../shared/isolated-net` (root) for WebRTC.
 */
import { spawnSync } from 'node:child_process'

const all = ['signaling', 'backup', 'load', 'client', 'bundle', 'first-visit', 'history', 'private', 'hybrid', 'hybrid-browser', 'mesh-parts'] as const
/** Run only when named: they need PostgreSQL, Redis and HAProxy. */
const optional = ['cluster'] as const
// Names first; from the first flag on, everything (values too: `--people 2,8`) belongs to the benchmark.
const args = process.argv.slice(2)
const firstFlag = args.findIndex((a) => a.startsWith('-'))
const wanted = firstFlag < 0 ? args : args.slice(0, firstFlag)
const flags = wanted.length === 1 && firstFlag >= 0 ? args.slice(firstFlag) : []
const unknown = wanted.filter((w) => !([...all, ...optional] as readonly string[]).includes(w))
if (unknown.length) {
  console.error(`unknown benchmark(s): ${unknown.join(', ')}; choose from ${[...all, ...optional].join(', ')}`)
  process.exit(2)
}
let failed = 0
for (const name of wanted.length ? wanted : all) {
  console.log(`\n=== bench/${name}.ts ===`)
  const started = Date.now()
  const r = spawnSync(process.execPath, ['--import', 'tsx', `bench/${name}.ts`, ...flags], { stdio: 'inherit' })
  console.log(`=== ${name}: exit ${r.status ?? r.signal} after ${((Date.now() - started) / 1000).toFixed(0)} s`)
  if (r.status !== 0) failed++
}
process.exit(failed ? 1 : 0)
