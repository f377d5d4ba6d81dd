/**
 * Chromium's WebRTC ignores loopback-only hosts, so the client benchmark runs
 * inside `../shared/isolated-net` (a private network namespace with one veth
 * pair and no route off the machine). `reexecIsolated` starts the same
 * script again in there when the current process is not already inside.
 */
import { spawnSync } from 'node:child_process'
import { existsSync } from 'node:fs'
import { networkInterfaces } from 'node:os'
import { resolve } from 'node:path'

/** Set in the environment of the re-executed process: "already inside isolated-net". */
export const NETNS_MARKER = 'MURMUR_ISOLATED_NET'

/** `isolated-net` beside the checkout (`<repo>/../shared/isolated-net`). */
export const ISOLATED_NET = resolve(import.meta.dirname, '../../../shared/isolated-net')

/** True when this process runs inside isolated-net (the marker is set, or the veth address 10.77.0.1 is present). */
export function insideIsolatedNet(): boolean {
  if (process.env[NETNS_MARKER] === '1') return true
  return Object.values(networkInterfaces()).some((addrs) => addrs?.some((a) => a.address === '10.77.0.1'))
}

/**
 * Runs `node --import tsx <script> <args>` under isolated-net with `env` added
 * and the marker set, waits for it and returns its exit code. Throws when
 * isolated-net is missing.
 */
export function reexecIsolated(script: string, args: string[], env: Record<string, string> = {}): number {
  if (!existsSync(ISOLATED_NET)) throw new Error(`${ISOLATED_NET} not found: the client benchmark needs it for WebRTC (a private netns; run as root)`)
  const r = spawnSync(ISOLATED_NET, [process.execPath, '--import', 'tsx', script, ...args], {
    stdio: 'inherit',
    env: { ...process.env, ...env, [NETNS_MARKER]: '1' },
  })
  if (r.error) throw r.error
  return r.status ?? 1
}
