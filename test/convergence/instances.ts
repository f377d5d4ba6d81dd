/**
 * The multi-instance server side of a convergence run (issue 10): N real
 * murmur processes on one fresh PostgreSQL database and one Redis key prefix
 * of their own (`--store postgres://… --redis redis://… --redis-prefix …`).
 * Each peer's signaling and backup go to instances chosen from the seed (often
 * two different ones), and the plan's server kills `kill -9` one instance,
 * chosen from the seed and the step, restarting it on the same port after the
 * pause, while the others keep serving.
 *
 * The choices are derived outside the plan's random stream, so a seed keeps
 * the same operations with one instance or many.
 */
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { startServer, type ServerProcess } from '../helpers/server.ts'
import { checkRedis, freshPostgresDatabase, REDIS_URL } from '../helpers/services.ts'

/** A 32-bit mix of the arguments (the same inputs give the same value). */
function mix(...xs: number[]): number {
  let h = 0x811c9dc5
  for (const x of xs) {
    h = Math.imul(h ^ (x >>> 0), 0x01000193) >>> 0
    h = Math.imul(h ^ (h >>> 15), 0x2c1b3c6d) >>> 0
  }
  return (h ^ (h >>> 13)) >>> 0
}

/** The instance (0…count-1) that peer `peer`'s signaling (`/signal`) uses. */
export function signalInstanceOf(seed: number, peer: number, count: number): number {
  return (seed + peer) % count
}

/** The instance that peer `peer`'s backup link (`/sync`) uses: a different one from its signaling for most peers. */
export function syncInstanceOf(seed: number, peer: number, count: number): number {
  return (seed + 2 * peer + 1) % count
}

/** The instance the plan's `step`-th operation (a server kill) kills. */
export function victimOf(seed: number, step: number, count: number): number {
  return mix(seed, step, 0x6b696c6c) % count
}

/** N murmur instances on PostgreSQL + Redis, each restartable on its port. */
export class Instances {
  readonly ports: number[] = []
  private readonly servers: (ServerProcess | null)[] = []
  private readonly restarts: (Promise<void> | null)[] = []
  private readonly dataDirs: string[] = []
  private readonly logs: string[] = []
  /** Instances killed so far, in order. */
  readonly killed: number[] = []

  private constructor(
    readonly args: string[],
    private readonly db: { url: string; drop: () => Promise<void> },
    readonly prefix: string,
    private readonly track: (s: ServerProcess) => void,
  ) {}

  /**
   * Creates a fresh database and Redis prefix and starts `count` instances on
   * free ports (`freePort`) with `serverArgs` after the cluster flags.
   */
  static async start(count: number, serverArgs: string[], freePort: () => Promise<number>, track: (s: ServerProcess) => void): Promise<Instances> {
    const [db, prefix] = await Promise.all([freshPostgresDatabase(), checkRedis()])
    const set = new Instances(['--store', db.url, '--redis', REDIS_URL, '--redis-prefix', prefix, ...serverArgs], db, prefix, track)
    for (let i = 0; i < count; i++) {
      set.ports.push(await freePort())
      set.dataDirs.push(mkdtempSync(join(tmpdir(), `murmur-instance-${i}-`)))
      set.servers.push(null)
      set.restarts.push(null)
    }
    await Promise.all(set.ports.map((_, i) => set.launch(i)))
    return set
  }

  /** Where the stored copy lives, for the failure report. */
  describe(): string {
    return `PostgreSQL ${this.db.url}, Redis prefix ${this.prefix}, instances on ports ${this.ports.join(', ')}`
  }

  private async launch(i: number): Promise<void> {
    // The port was ours a moment ago; another process may grab it in between, so retry briefly.
    for (let attempt = 0; ; attempt++) {
      try {
        const s = await startServer({ dataDir: this.dataDirs[i], port: this.ports[i], args: this.args })
        this.track(s)
        this.servers[i] = s
        return
      } catch (err) {
        if (attempt >= 20) throw new Error(`could not restart instance ${i} on port ${this.ports[i]}: ${(err as Error).message}`)
        await new Promise((r) => setTimeout(r, 250))
      }
    }
  }

  /** `kill -9` instance `i` (after its pending restart, if any); it restarts on the same port after `downMs`. */
  async kill(i: number, downMs: number): Promise<void> {
    if (this.restarts[i]) await this.restarts[i]
    const dead = this.servers[i]!
    this.servers[i] = null
    const code = await dead.stop('SIGKILL')
    this.logs.push(`--- instance ${i}:\n${dead.output()}`)
    if (code !== null) throw new Error(`instance ${i} had exited on its own (code ${code}) before kill -9:\n${dead.output()}`)
    this.killed.push(i)
    this.restarts[i] = new Promise<void>((r) => setTimeout(r, downMs))
      .then(() => this.launch(i))
      .finally(() => (this.restarts[i] = null))
  }

  /** Resolves once every killed instance is up again. */
  async settled(): Promise<void> {
    await Promise.all(this.restarts)
  }

  /**
   * Stops every instance with SIGTERM (a flush and exit 0 is the promise) and
   * starts them again; resolves with the exit codes and the slowest stop.
   */
  async restartAll(): Promise<{ codes: (number | null)[]; ms: number }> {
    await this.settled()
    const started = Date.now()
    const codes = await Promise.all(
      this.servers.map(async (s, i) => {
        this.servers[i] = null
        const code = await s!.stop('SIGTERM')
        this.logs.push(`--- instance ${i}:\n${s!.output()}`)
        return code
      }),
    )
    const ms = Date.now() - started
    await Promise.all(this.ports.map((_, i) => this.launch(i)))
    return { codes, ms }
  }

  /** What every instance printed (earlier processes first). */
  output(): string {
    return [...this.logs, ...this.servers.map((s, i) => (s ? `--- instance ${i}:\n${s.output()}` : ''))].join('\n')
  }

  /** SIGKILLs everything; unless `keep`, drops the database and removes the data directories. */
  async close(keep: boolean): Promise<void> {
    await Promise.all(this.restarts.map((r) => r?.catch(() => {})))
    await Promise.all(this.servers.map((s) => s?.stop('SIGKILL').catch(() => {})))
    if (keep) return
    for (const d of this.dataDirs) rmSync(d, { recursive: true, force: true })
    await this.db.drop().catch(() => {})
  }
}
