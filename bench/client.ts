/**
 * Client benchmark in Chromium (`npm run bench -- client`, or
 * `node --import tsx bench/client.ts [--quick]`): how long a browser takes
 * to open documents of 1k / 10k / 100k / 260k automerge-paper edits from the
 * server and from IndexedDB, and keystroke-to-remote latency direct (WebRTC)
 * vs via the server, in a small and in large documents. Prints markdown
 * tables, writes bench/client.svg/.png and the Client block of
 * bench/README.md (`--quick`: a short smoke run that writes neither).
 *
 * WebRTC in Chromium needs a non-loopback address, so the script re-executes
 * itself under `../shared/isolated-net` (root) unless already inside. It
 * serves a client built for this run (`vite build` into a temp dir) unless
 * `E2E_CLIENT_DIR` names one. A watchdog (`--max-minutes`, default 10)
 * bounds the run.
 */
import { rmSync } from 'node:fs'
import { buildClient } from './lib/client-build.ts'
import { insideIsolatedNet, reexecIsolated } from './lib/client-netns.ts'

const argv = process.argv.slice(2)

async function main(): Promise<number> {
  if (!insideIsolatedNet()) return reexecIsolated(new URL(import.meta.url).pathname, argv)
  const maxMinutes = Number(argv.find((a) => a.startsWith('--max-minutes='))?.slice(14) ?? 10)
  const watchdog = setTimeout(() => {
    console.error(`client benchmark: still running after ${maxMinutes} min, giving up`)
    process.exit(3)
  }, maxMinutes * 60_000)
  watchdog.unref()
  let built: string | null = null
  if (!process.env.E2E_CLIENT_DIR) process.env.E2E_CLIENT_DIR = built = buildClient()
  try {
    // The harness reads E2E_CLIENT_DIR when it is first imported: only now.
    const { parseArgs, runClientBench } = await import('./lib/client-run.ts')
    await runClientBench(parseArgs(argv))
    return 0
  } finally {
    if (built) rmSync(built, { recursive: true, force: true })
  }
}

main().then(
  (code) => process.exit(code),
  (err) => {
    console.error(err)
    process.exit(1)
  },
)
