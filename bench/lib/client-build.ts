/**
 * Builds the client the benchmark serves into a private directory, so the
 * numbers are for the current `src/` and a concurrent `npm run test:e2e`
 * (which rebuilds `dist/`) cannot change files under a running benchmark.
 */
import { spawnSync } from 'node:child_process'
import { tmpdir } from 'node:os'
import { join, resolve } from 'node:path'

const root = resolve(import.meta.dirname, '../..')

/** Runs `vite build` into `$TMPDIR/murmur-bench-client-<pid>` and returns that directory. */
export function buildClient(): string {
  const outDir = join(tmpdir(), `murmur-bench-client-${process.pid}`)
  const r = spawnSync(process.execPath, [join(root, 'node_modules/vite/bin/vite.js'), 'build', '--logLevel', 'warn', '--outDir', outDir, '--emptyOutDir'], { cwd: root, stdio: 'inherit' })
  if (r.status !== 0) throw new Error(`vite build failed (exit ${r.status ?? r.signal})`)
  return outDir
}
