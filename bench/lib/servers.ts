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

/** Runs a child to completion and returns its last stdout line parsed as JSON. */
export async function runJson<T>(args: string[], cpu?: number): Promise<T> {
  const child = spawn(process.execPath, args, { cwd: root, stdio: ['ignore', 'pipe', 'pipe'] })
  if (cpu !== undefined) pin(child.pid!, cpu)
  let out = ''
  let err = ''
  child.stdout!.on('data', (d) => (out += d))
  child.stderr!.on('data', (d) => (err += d))
  const code = await new Promise<number | null>((res) => child.once('exit', res))
  const last = out.trim().split('\n').pop() ?? ''
  if (code !== 0) throw new Error(`${args.join(' ')} exited with ${code}:\n${out}${err}`)
  return JSON.parse(last) as T
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
