/**
 * The servers the backup benchmark compares, each started as its own child
 * process on 127.0.0.1 (pinned to the server core when possible):
 *
 * - murmur: `server/main.ts` on a data directory (SQLite, WAL, synchronous=FULL),
 *   with the per-socket limits meant for browsers lifted for throughput runs.
 * - Hocuspocus + SQLite extension: `backup-hocus-server.ts` on a database file,
 *   with its default debounce or a given one.
 * - y-websocket-server: the reference server's own `src/server.js`, unchanged
 *   (in memory, no persistence).
 */
import type { ChildProcess } from 'node:child_process'
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import type { Proto } from './backup-proto.ts'
import { freePort, pin, root, spawnNode } from './servers.ts'

/** A running server under test. */
export interface Target {
  proto: Proto
  port: number
  pid: number
  child: ChildProcess
  /** SIGTERM (graceful: flushes), SIGKILL after `graceMs`. */
  stop(graceMs?: number): Promise<void>
  /** SIGKILL now (after a throughput run, to drop queued work). */
  kill(): Promise<void>
  output(): string
  /** Hocuspocus only: the file its wrapper logs applied/durable totals to. */
  series?: string
}

const SERVER_CPU = 0

/** Every server started in this process, for `killAll`. */
export const started: Target[] = []

/** SIGKILLs every server this process started that is still running (after a failed run). */
export function killAll(): void {
  for (const t of started) if (t.child.exitCode === null && t.child.signalCode === null) t.child.kill('SIGKILL')
}

function target(proto: Proto, port: number, child: ChildProcess, output: () => string): Target {
  pin(child.pid!, SERVER_CPU)
  const exited = new Promise<void>((res) => child.once('exit', () => res()))
  // spawnNode rejects its (already settled) promise on exit; nothing else listens.
  const alive = () => child.exitCode === null && child.signalCode === null
  const t: Target = {
    proto,
    port,
    pid: child.pid!,
    child,
    output,
    async stop(graceMs = 5000) {
      if (!alive()) return
      const t = setTimeout(() => child.kill('SIGKILL'), graceMs)
      child.kill('SIGTERM')
      await exited
      clearTimeout(t)
    },
    async kill() {
      if (!alive()) return
      child.kill('SIGKILL')
      await exited
    },
  }
  started.push(t)
  return t
}

const created: string[] = []

/** A fresh temporary directory for one server's data (removed by `removeTempDirs`). */
export function tempDir(prefix: string): string {
  const dir = mkdtempSync(join(tmpdir(), `murmur-bench-${prefix}-`))
  created.push(dir)
  return dir
}

/** Removes every directory `tempDir` made in this process. */
export function removeTempDirs(): void {
  for (const dir of created.splice(0)) rmSync(dir, { recursive: true, force: true })
}

/** Extra murmur flags for benchmark runs: one load-generator socket sends far faster than a person types. */
export const MURMUR_BENCH_FLAGS = ['--max-sync-rate', '1000000', '--max-connections-per-ip', '100000']

/** Starts murmur on `dataDir`. `nodeArgs` go before the script (e.g. `--cpu-prof`). */
export async function startMurmur(dataDir: string, opts: { nodeArgs?: string[]; args?: string[] } = {}): Promise<Target> {
  const { child, match, output } = await spawnNode(
    [...(opts.nodeArgs ?? []), '--import', 'tsx', 'server/main.ts', '--host', '127.0.0.1', '--port', '0', '--data', dataDir, '--log-level', 'warn', ...MURMUR_BENCH_FLAGS, ...(opts.args ?? [])],
    /serving http:\/\/[^:]+:(\d+)\//,
  )
  child.on('error', () => {})
  return target('murmur', Number(match[1]), child, output)
}

/** Hocuspocus settings: `debounce` null keeps its defaults (2000 ms, maxDebounce 10000 ms). */
export interface HocusOptions {
  debounce?: number | null
  maxDebounce?: number | null
}

/** Starts Hocuspocus + its SQLite extension on `<dataDir>/hocuspocus.sqlite` (`nodeArgs` before the script). Resolves with the pragmas it reports. */
export async function startHocus(dataDir: string, opts: HocusOptions = {}, nodeArgs: string[] = []): Promise<Target & { info: string }> {
  const series = join(dataDir, `series-${Date.now()}.txt`)
  const { child, match, output } = await spawnNode(
    [...nodeArgs, '--import', 'tsx', join(root, 'bench/lib/backup-hocus-server.ts'), JSON.stringify({ db: join(dataDir, 'hocuspocus.sqlite'), series, ...opts })],
    /^(hocuspocus \S+) listening (\d+) (.*)$/,
  )
  return { ...target('hocus', Number(match[2]), child, output), info: `${match[1]}, ${match[3]}`, series }
}

/** Starts the unchanged y-websocket reference server (`@y/websocket-server/src/server.js`). */
export async function startYws(): Promise<Target> {
  const port = await freePort()
  const { child, output } = await spawnNode([join(root, 'node_modules/@y/websocket-server/src/server.js')], /running at/, { HOST: '127.0.0.1', PORT: String(port) })
  return target('yws', port, child, output)
}
