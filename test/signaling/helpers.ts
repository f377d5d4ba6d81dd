/**
 * Helpers for the signaling tests: a raw `ws` client with an awaitable message
 * queue, and a server starter.
 */
import { spawn, type ChildProcess } from 'node:child_process'
import { resolve } from 'node:path'
import { createInterface } from 'node:readline'
import { WebSocket } from 'ws'
import { startServer, type ServerProcess } from '../helpers/server.ts'

/** Starts the real server process (`server/main.ts`) with `args`. */
export function startSignalServer(args: string[] = []): Promise<ServerProcess> {
  return startServer({ args })
}

/** What a closed socket reported. */
export interface Closed {
  code: number
  reason: string
}

/** A raw y-webrtc-protocol client over `ws`, for tests. */
export class Client {
  /** Every JSON message received and not yet taken by `next()`. */
  private queue: any[] = []
  private waiters: ((m: any) => void)[] = []
  /** Resolves when the socket closes. */
  readonly closed: Promise<Closed>

  private constructor(readonly ws: WebSocket) {
    ws.on('message', (data) => {
      const m = JSON.parse(String(data))
      const w = this.waiters.shift()
      if (w) w(m)
      else this.queue.push(m)
    })
    this.closed = new Promise((res) => ws.on('close', (code, reason) => res({ code, reason: String(reason) })))
    ws.on('error', () => {})
  }

  /** Opens a socket to `url` (e.g. `ws://127.0.0.1:1234/signal`). */
  static open(url: string): Promise<Client> {
    const ws = new WebSocket(url)
    const client = new Client(ws)
    return new Promise((res, rej) => {
      ws.once('open', () => res(client))
      ws.once('error', rej)
    })
  }

  /** Sends `msg`: objects as JSON, strings and buffers as they are. */
  send(msg: unknown, opts: { binary?: boolean } = {}): void {
    this.ws.send(typeof msg === 'string' || Buffer.isBuffer(msg) ? msg : JSON.stringify(msg), opts)
  }

  /** The next message, or a rejection after `ms`. */
  next(ms = 5000): Promise<any> {
    const m = this.queue.shift()
    if (m !== undefined) return Promise.resolve(m)
    return new Promise((res, rej) => {
      const timer = setTimeout(() => {
        this.waiters.splice(this.waiters.indexOf(done), 1)
        rej(new Error(`no message within ${ms} ms`))
      }, ms)
      const done = (m: any) => {
        clearTimeout(timer)
        res(m)
      }
      this.waiters.push(done)
    })
  }

  /**
   * Proves nothing else is queued for this client: a ping's pong must be the
   * very next message (the server answers in order).
   */
  async expectNothingPending(): Promise<void> {
    this.send({ type: 'ping' })
    const m = await this.next()
    if (m.type !== 'pong') throw new Error(`expected nothing pending, got ${JSON.stringify(m)}`)
  }

  /** Subscribes and waits until the server has processed it (ping round trip). */
  async subscribe(...topics: string[]): Promise<void> {
    this.send({ type: 'subscribe', topics })
    await this.expectNothingPending()
  }

  close(): void {
    this.ws.close()
  }
}

/** The server's `/metrics` value of `name` (first sample), or undefined. */
export async function metric(server: ServerProcess, name: string): Promise<number | undefined> {
  const text = await (await fetch(`${server.url}/metrics`)).text()
  const m = new RegExp(`^${name}(?:\\{[^}]*\\})? (\\S+)$`, 'm').exec(text)
  return m ? Number(m[1]) : undefined
}

/** The `/metrics` sample of `name` whose labels include all of `labels`, or undefined. */
export async function metricSample(server: ServerProcess, name: string, labels: Record<string, string>): Promise<number | undefined> {
  const text = await (await fetch(`${server.url}/metrics`)).text()
  for (const m of text.matchAll(new RegExp(`^${name}\\{([^}]*)\\} (\\S+)$`, 'gm'))) {
    if (Object.entries(labels).every(([k, v]) => m[1].includes(`${k}="${v}"`))) return Number(m[2])
  }
  return undefined
}

/** Path of a file next to this one. */
export const here = (file: string) => resolve(import.meta.dirname, file)

/**
 * A child process (`node --import tsx <script> ...args`) that prints one JSON
 * report per line: the latest report, a listener per report, its output
 * (stdout lines stamped with seconds since start) and a `stop()` that sends
 * SIGTERM and waits for the exit.
 */
export function startReporter<R>(script: string, args: string[], initial: R, env: Record<string, string> = {}) {
  const child: ChildProcess = spawn(process.execPath, ['--import', 'tsx', script, ...args], { stdio: ['pipe', 'pipe', 'pipe'], env: { ...process.env, ...env } })
  let output = ''
  let latest = initial
  const listeners = new Set<() => void>()
  const started = Date.now()
  // Each line of output carries the seconds since start, so a timeout shows when things happened.
  createInterface({ input: child.stdout! }).on('line', (line) => {
    output += `+${((Date.now() - started) / 1000).toFixed(1)}s ${line}\n`
    try {
      latest = JSON.parse(line)
    } catch {
      return
    }
    for (const l of listeners) l()
  })
  child.stderr!.on('data', (d) => (output += d))
  return {
    child,
    output: () => output,
    latest: () => latest,
    /** Calls `fn` after every report. */
    onReport: (fn: () => void) => listeners.add(fn),
    /** Resolves with the first report (the latest or a later one) for which `pred` holds. */
    until(pred: (r: R) => boolean, what: string, ms = 30_000): Promise<R> {
      return new Promise((res, rej) => {
        const check = () => pred(latest) && (listeners.delete(check), clearTimeout(timer), res(latest))
        const timer = setTimeout(() => (listeners.delete(check), rej(new Error(`timed out waiting for ${what}; latest report ${JSON.stringify(latest)}; output:\n${output}`))), ms)
        listeners.add(check)
        check()
      })
    },
    stop: () => new Promise<void>((res) => (child.exitCode !== null || child.signalCode !== null ? res() : (child.once('exit', () => res()), child.kill('SIGTERM')))),
  }
}
