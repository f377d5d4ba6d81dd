/**
 * `npm run bench`: runs every benchmark one after another (never in
 * parallel: they compare servers side by side and need the cores), each in
 * its own process, and prints their tables. `npm run bench -- signaling`
 * runs only the named ones; with exactly one named, the flags after it go to
 * that benchmark (`npm run bench -- client --quick`). Each benchmark is
 * bounded in time by itself. `client` runs Chromium and re-executes itself
 * under `../shared/isolated-net` (root) for WebRTC.
 */
import { spawnSync } from 'node:child_process'

const all = ['signaling', 'backup', 'load', 'client', 'bundle', 'first-visit', 'history', 'private', 'hybrid', 'mesh-parts'] as const
/** Run only when named: they need PostgreSQL, Redis and HAProxy. */
const optional = ['cluster'] as const
const wanted = process.argv.slice(2).filter((a) => !a.startsWith('-'))
const flags = wanted.length === 1 ? process.argv.slice(2).filter((a) => a.startsWith('-')) : []
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
