/**
 * HAProxy (Debian package `haproxy`) in front of murmur instances, run with the
 * operator example `docs/haproxy.cfg` itself: only the listening address and
 * the instances' ports are replaced, so a test of failover tests the config
 * the README shows.
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process'
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join, resolve } from 'node:path'

/** The operator example, as committed. */
export const HAPROXY_EXAMPLE = resolve(import.meta.dirname, '../../docs/haproxy.cfg')

/** A running HAProxy. */
export interface Haproxy {
  port: number
  url: string
  wsUrl: string
  child: ChildProcess
  /** What it printed. */
  output(): string
  stop(): Promise<void>
}

/**
 * `docs/haproxy.cfg` listening on 127.0.0.1:`port` with the example's
 * instances m1…mN on `backends`; `roundRobin` replaces the hash on the
 * document by round-robin (a benchmark's worst case, not for operators).
 */
export function haproxyConfig(port: number, backends: number[], roundRobin = false): string {
  const example = readFileSync(HAPROXY_EXAMPLE, 'utf8')
  const servers = example.match(/^  server m1 .*$/m)
  if (!servers || !/^  bind :80$/m.test(example)) throw new Error(`${HAPROXY_EXAMPLE} no longer has "bind :80" and "server m1 …" lines to fill in`)
  const balanced = roundRobin ? example.replace(/^  balance uri .*\n  hash-type .*\n/m, '  balance roundrobin\n') : example
  if (roundRobin && balanced === example) throw new Error(`${HAPROXY_EXAMPLE} no longer has the "balance uri" and "hash-type" lines`)
  return balanced
    .replace(/^  bind :80$/m, `  bind 127.0.0.1:${port}`)
    .replace(/^(  server m1 .*\n)(  server m\d .*\n)*/gm, (line) => {
      const template = line.split('\n')[0]!
      return backends.map((p, i) => template.replace(/ m1 127\.0\.0\.1:\d+ /, ` m${i + 1} 127.0.0.1:${p} `) + '\n').join('')
    })
}

/** Throws a clear message when `haproxy` is not installed (`.ci/run` installs it). */
export function requireHaproxy(): void {
  const r = spawnSync('haproxy', ['-v'], { encoding: 'utf8' })
  if (r.error || r.status !== 0) throw new Error('haproxy is not installed: apt-get install haproxy (Debian package; .ci/run installs it)')
}

/**
 * Starts HAProxy on `port` in front of `backends` and resolves once it
 * answers `/healthz` (through an instance whose health check passed).
 */
export async function startHaproxy(port: number, backends: number[], roundRobin = false): Promise<Haproxy> {
  requireHaproxy()
  const cfg = join(mkdtempSync(join(tmpdir(), 'murmur-haproxy-')), 'haproxy.cfg')
  writeFileSync(cfg, haproxyConfig(port, backends, roundRobin))
  const child = spawn('haproxy', ['-f', cfg, '-db'], { stdio: ['ignore', 'pipe', 'pipe'] })
  let out = ''
  child.stdout!.on('data', (d) => (out += d))
  child.stderr!.on('data', (d) => (out += d))
  const exited = new Promise<void>((r) => child.once('exit', () => r()))
  const url = `http://127.0.0.1:${port}`
  for (let i = 0; ; i++) {
    if (child.exitCode !== null) throw new Error(`haproxy exited with ${child.exitCode}:\n${out}`)
    try {
      if ((await fetch(`${url}/healthz`)).ok) break
    } catch {
      // not listening yet
    }
    if (i > 200) throw new Error(`haproxy did not answer /healthz within 20 s:\n${out}`)
    await new Promise((r) => setTimeout(r, 100))
  }
  return {
    port,
    url,
    wsUrl: `ws://127.0.0.1:${port}`,
    child,
    output: () => out,
    async stop() {
      if (child.exitCode === null && child.signalCode === null) child.kill('SIGTERM')
      await exited
    },
  }
}
