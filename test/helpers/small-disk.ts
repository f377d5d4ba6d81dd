import { execFileSync, spawn, type ChildProcess } from 'node:child_process'
import { mkdtempSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join, resolve } from 'node:path'

/**
 * A small tmpfs mounted on `dir` inside a private mount namespace, held open
 * by a `sleep` process so it outlives server restarts. Servers started with
 * `prefix` see it as their data directory; nothing outside the namespace does.
 * Needs root (CI and the dev machine run tests as root).
 */
export interface SmallDisk {
  /** The mount point (same path inside and outside the namespace). */
  dir: string
  /** Command prefix that runs a program inside the namespace, in the repository root (`nsenter … --`). */
  prefix: string[]
  /** Fills every free byte with one file: appends that need a new page fail with ENOSPC. */
  fill(): void
  /** Deletes the filler: storage is writable again. */
  free(): void
  /** Unmounts (by ending the namespace's last process). */
  close(): Promise<void>
}

/** Mounts a `bytes`-sized tmpfs in a fresh mount namespace. */
export async function smallDisk(bytes: number): Promise<SmallDisk> {
  const dir = mkdtempSync(join(tmpdir(), 'murmur-disk-'))
  const holder: ChildProcess = spawn('unshare', ['--mount', '--propagation', 'private', 'sh', '-c', `mount -t tmpfs -o size=${bytes} tmpfs "$0" && echo mounted && exec sleep 86400`, dir], {
    stdio: ['ignore', 'pipe', 'pipe'],
    cwd: resolve(import.meta.dirname, '../..'), // nsenter -w runs programs in this directory
  })
  let err = ''
  holder.stderr!.on('data', (d) => (err += d))
  await new Promise<void>((res, rej) => {
    holder.stdout!.once('data', () => res())
    holder.once('exit', (code) => rej(new Error(`could not mount a tmpfs (exit ${code}): ${err}`)))
  })
  const prefix = ['nsenter', '-t', String(holder.pid), '-m', '-w', '--']
  const inside = (script: string) => execFileSync(prefix[0]!, [...prefix.slice(1), 'sh', '-c', script, 'sh', dir], { stdio: 'pipe' })
  return {
    dir,
    prefix,
    fill: () => inside('cat /dev/zero > "$1/filler" 2>/dev/null; test -s "$1/filler"'),
    free: () => inside('rm -f "$1/filler"'),
    close: () =>
      new Promise<void>((res) => {
        if (holder.exitCode !== null || holder.signalCode !== null) return res()
        holder.once('exit', () => res())
        holder.kill('SIGKILL')
      }),
  }
}
