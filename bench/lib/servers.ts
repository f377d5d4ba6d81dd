/**
 * Starting and measuring server processes for benchmarks: a free port, RSS
 * from /proc, CPU pinning, and a JSON-lines child runner.
 */
import { execFileSync, spawn, type ChildProcess } from 'node:child_process'
import { readdirSync, readFileSync } from 'node:fs'
import { createServer } from 'node:net'
import { cpus } from 'node:os'
import { resolve } from 'node:path'
import { createInterface } from 'node:readline'

/** The repository root. */
export const root = resolve(import.meta.dirname, '../..')

/** A free TCP port on 127.0.0.1 (for servers that cannot take port 0). */
export function freePort(): Promise<number> {
  return new Promise((res, rej) => {
    const s = createServer()
    s.once('error', rej)
    s.listen(0, '127.0.0.1', () => {
      const port = (s.address() as { port: number }).port
      s.close(() => res(port))
    })
  })
}

/** Resident set size of process `pid` in KiB (VmRSS from /proc). */
export function rssKiB(pid: number): number {
  const m = /^VmRSS:\s+(\d+) kB/m.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))
  if (!m) throw new Error(`no VmRSS for ${pid}`)
  return Number(m[1])
}

/**
 * CPU time process `pid` has used so far, all threads, user and system, in
 * seconds: the run time from /proc/<pid>/task/<tid>/schedstat, in nanoseconds
 * (the clock-tick counters of /proc/<pid>/stat are too coarse for short runs).
 */
export function cpuSeconds(pid: number): number {
  let ns = 0
  for (const tid of readdirSync(`/proc/${pid}/task`)) {
    try {
      ns += Number(readFileSync(`/proc/${pid}/task/${tid}/schedstat`, 'utf8').split(' ')[0])
    } catch {
      // the thread exited meanwhile
    }
  }
  return ns / 1e9
}

/** Cores the benchmark may pin to: server on the first, load on the second (when there are two). */
export const cores = cpus().length

/** Pins every thread of `pid` to `cpu` (best effort: needs `taskset`). Returns whether it worked. */
export function pin(pid: number, cpu: number): boolean {
  if (cores < 2) return false
  try {
    execFileSync('taskset', ['-a', '-cp', String(cpu % cores), String(pid)], { stdio: 'ignore' })
    return true
  } catch {
    return false
  }
}

/** Spawns `node` with `args`, resolving once a stdout line matches `ready` (with its match). */
export function spawnNode(args: string[], ready: RegExp, env: Record<string, string> = {}): Promise<{ child: ChildProcess; match: RegExpMatchArray; output: () => string }> {
  const child = spawn(process.execPath, args, { cwd: root, env: { ...process.env, ...env }, stdio: ['pipe', 'pipe', 'pipe'] })
  let output = ''
  child.stderr!.on('data', (d) => (output += d))
  return new Promise((res, rej) => {
    createInterface({ input: child.stdout! }).on('line', (line) => {
      output += line + '\n'
      const match = line.match(ready)
      if (match) res({ child, match, output: () => output })
    })
    child.once('exit', (code) => rej(new Error(`${args.join(' ')} exited with ${code}:\n${output}`)))
  })
}

/**
 * A long-lived helper process that takes JSON jobs on stdin, one a line, and
 * answers each with one JSON line (e.g. `bench/lib/signal-load.ts`): one
 * process start for a whole benchmark instead of one per case.
 */
export class JobProcess {
  private readonly child: ChildProcess
  private readonly waiting: ((line: string) => void)[] = []
  private output = ''

  /** Starts `node <args>`, pinned to `cpu` when given. */
  constructor(args: string[], cpu?: number) {
    this.child = spawn(process.execPath, args, { cwd: root, stdio: ['pipe', 'pipe', 'pipe'] })
    if (cpu !== undefined) pin(this.child.pid!, cpu)
    this.child.stderr!.on('data', (d) => (this.output += d))
    createInterface({ input: this.child.stdout! }).on('line', (line) => {
      this.output += line + '\n'
      this.waiting.shift()?.(line)
    })
  }

  /** Sends `job` and resolves with the parsed answer; rejects if the process dies first. */
  run<T>(job: object): Promise<T> {
    return new Promise((res, rej) => {
      const onExit = (code: number | null) => rej(new Error(`job process exited with ${code}:\n${this.output}`))
      this.child.once('exit', onExit)
      this.waiting.push((line) => {
        this.child.off('exit', onExit)
        res(JSON.parse(line) as T)
      })
      this.child.stdin!.write(JSON.stringify(job) + '\n')
    })
  }

  /** Closes stdin and waits for the process to exit. */
  async close(): Promise<void> {
    if (this.child.exitCode !== null) return
    const exited = new Promise((res) => this.child.once('exit', res))
    this.child.stdin!.end()
    await exited
  }
}

/** Stops a child with SIGTERM (SIGKILL after 3 s) and waits for it. */
export function stopChild(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return Promise.resolve()
  return new Promise((res) => {
    const timer = setTimeout(() => child.kill('SIGKILL'), 3000)
    child.once('exit', () => {
      clearTimeout(timer)
      res()
    })
    child.kill('SIGTERM')
  })
}

/** The inspector URL a process started with `--inspect=127.0.0.1:0` printed, or undefined. */
export function inspectorUrl(output: string): string | undefined {
  return /Debugger listening on (ws:\/\/\S+)/.exec(output)?.[1]
}

/**
 * Forces a full garbage collection in the process behind inspector `url`
 * (HeapProfiler.collectGarbage), so RSS readings do not depend on when V8
 * last collected. Opens and closes its own inspector session.
 */
export async function forceGc(url: string): Promise<void> {
  const { WebSocket } = await import('ws')
  const ws = new WebSocket(url)
  await new Promise((res, rej) => {
    ws.once('open', res)
    ws.once('error', rej)
  })
  await new Promise<void>((res) => {
    ws.on('message', (data) => {
      if (JSON.parse(String(data)).id === 1) res()
    })
    ws.send(JSON.stringify({ id: 1, method: 'HeapProfiler.collectGarbage' }))
  })
  ws.close()
}

/** Read and write system calls process `pid` has made so far (syscr/syscw of /proc/<pid>/io; writev counts as one write). */
export function syscalls(pid: number): { reads: number; writes: number } {
  const io = readFileSync(`/proc/${pid}/io`, 'utf8')
  return { reads: Number(/^syscr: (\d+)/m.exec(io)?.[1]), writes: Number(/^syscw: (\d+)/m.exec(io)?.[1]) }
}
