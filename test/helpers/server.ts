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
export async function startServer(opts: { dataDir?: string; args?: string[]; env?: Record<string, string>; port?: number; root?: string } = {}): Promise<ServerProcess> {
  const dataDir = opts.dataDir ?? mkdtempSync(join(tmpdir(), 'murmur-test-'))
  const args = ['--import', 'tsx', 'server/main.ts', '--host', '127.0.0.1', '--port', String(opts.port ?? 0), '--data', dataDir, '--log-level', 'warn', ...(opts.args ?? [])]
  const child = spawn(process.execPath, args, { cwd: opts.root ?? root, env: { ...process.env, ...opts.env }, stdio: ['ignore', 'pipe', 'pipe'] })
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
    async stop(signal = 'SIGTERM') {
      if (child.exitCode !== null || child.signalCode !== null) return child.exitCode
      child.kill(signal)
      return exited
    },
  }
}
