import { spawn, type ChildProcess } from 'node:child_process'
import { mkdtempSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join, resolve } from 'node:path'

/** A murmur server running as a real child process. */
export interface ServerProcess {
  /** e.g. http://127.0.0.1:40123 */
  url: string
  /** ws://127.0.0.1:40123 */
  wsUrl: string
  port: number
  dataDir: string
  child: ChildProcess
  /** Everything the process printed so far (stdout + stderr). */
  output(): string
  /** Resolves once the output matches `pattern` `times` times (it may already have). */
  printed(pattern: RegExp, times?: number, timeoutMs?: number): Promise<void>
  /** Sends `signal` and resolves with the exit code (null when killed by a signal). */
  stop(signal?: NodeJS.Signals): Promise<number | null>
}

const root = resolve(import.meta.dirname, '../..')

/**
 * Starts `server/main.ts` in a child process on a free port of 127.0.0.1 and
 * resolves once it prints the URL it serves. `dataDir` defaults to a new temp dir;
 * pass the same one again to restart on the same storage. `root`: another
 * checkout to run (benchmarks compare a fix with the code before it).
 */
export async function startServer(
  opts: {
    dataDir?: string
    args?: string[]
    env?: Record<string, string>
    port?: number
    /** Runs node under this command, e.g. `SmallDisk.prefix`. */
    prefix?: string[]
    /** Another checkout to run. */
    root?: string
  } = {},
): Promise<ServerProcess> {
  const dataDir = opts.dataDir ?? mkdtempSync(join(tmpdir(), 'murmur-test-'))
  const args = ['--import', 'tsx', 'server/main.ts', '--host', '127.0.0.1', '--port', String(opts.port ?? 0), '--data', dataDir, '--log-level', 'warn', ...(opts.args ?? [])]
  const [cmd, ...pre] = [...(opts.prefix ?? []), process.execPath]
  const child = spawn(cmd!, [...pre, ...args], { cwd: opts.root ?? root, env: { ...process.env, ...opts.env }, stdio: ['ignore', 'pipe', 'pipe'] })
  let out = ''
  child.stdout!.on('data', (d) => (out += d))
  child.stderr!.on('data', (d) => (out += d))
  const exited = new Promise<number | null>((res) => child.once('exit', (code) => res(code)))
  const url = await new Promise<string>((res, rej) => {
    const onData = () => {
      const m = /serving (http:\/\/[^\s/]+)/.exec(out)
      if (m) {
        child.stdout!.off('data', onData)
        res(m[1])
      }
    }
    child.stdout!.on('data', onData)
    child.once('exit', (code) => rej(new Error(`server exited with ${code} before listening:\n${out}`)))
  })
  const port = Number(new URL(url).port)
  return {
    url,
    wsUrl: url.replace(/^http/, 'ws'),
    port,
    dataDir,
    child,
    output: () => out,
    printed(pattern, times = 1, timeoutMs = 20_000) {
      const g = new RegExp(pattern.source, pattern.flags.includes('g') ? pattern.flags : pattern.flags + 'g')
      const seen = () => (out.match(g)?.length ?? 0) >= times
      if (seen()) return Promise.resolve()
      return new Promise((res, rej) => {
        const timer = setTimeout(() => (off(), rej(new Error(`timed out waiting for ${times}× ${pattern} in server output:\n${out.slice(-2000)}`))), timeoutMs)
        const onData = () => seen() && (off(), res())
        const off = () => {
          clearTimeout(timer)
          child.stdout!.off('data', onData)
          child.stderr!.off('data', onData)
        }
        // Listeners added after the ones that append to `out`, so `out` already holds the chunk.
        child.stdout!.on('data', onData)
        child.stderr!.on('data', onData)
      })
    },
    async stop(signal = 'SIGTERM') {
      if (child.exitCode !== null || child.signalCode !== null) return child.exitCode
      child.kill(signal)
      return exited
    },
  }
}

/** Reads the first sample of `name` (with or without labels) from the server's `/metrics`; NaN when absent. */
export async function metric(server: { url: string }, name: string): Promise<number> {
  const text = await (await fetch(`${server.url}/metrics`)).text()
  const line = text.split('\n').find((l) => l.startsWith(name + ' ') || l.startsWith(name + '{'))
  return line ? Number(line.split(' ').pop()) : NaN
}
