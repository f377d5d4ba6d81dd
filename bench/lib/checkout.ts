/**
 * Another commit of this repository, ready to run next to the current one:
 * `git archive <ref>` into a temp dir, sharing this checkout's node_modules
 * (so it only works while the dependencies are the same), with its client
 * built by its own vite.config.ts. Benchmarks use it for "before" numbers.
 */
import { execFileSync, spawnSync } from 'node:child_process'
import { mkdtempSync, rmSync, symlinkSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join, resolve } from 'node:path'

const root = resolve(import.meta.dirname, '../..')

/** A checkout with a built client; `remove()` deletes it. */
export interface Checkout {
  /** The commit, abbreviated. */
  commit: string
  /** Where its files are (run its server with this as cwd). */
  root: string
  /** Its built client. */
  clientDir: string
  remove(): void
}

/** Extracts `ref` into a temp dir and builds its client there. */
export function checkoutAndBuild(ref: string): Checkout {
  const commit = execFileSync('git', ['rev-parse', '--short', ref], { cwd: root }).toString().trim()
  const dir = mkdtempSync(join(tmpdir(), `murmur-${commit}-`))
  execFileSync('sh', ['-c', `git archive ${commit} | tar -x -C ${JSON.stringify(dir)}`], { cwd: root })
  symlinkSync(join(root, 'node_modules'), join(dir, 'node_modules'))
  const r = spawnSync(process.execPath, [join(dir, 'node_modules/vite/bin/vite.js'), 'build', '--logLevel', 'warn'], { cwd: dir, stdio: 'inherit' })
  if (r.status !== 0) throw new Error(`vite build of ${commit} failed (exit ${r.status ?? r.signal})`)
  return { commit, root: dir, clientDir: join(dir, 'dist'), remove: () => rmSync(dir, { recursive: true, force: true }) }
}
