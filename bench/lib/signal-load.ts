/**
 * Load generator for the signaling benchmark, run as its own process (pinned to
 * its own core when possible) so it never shares a core with the server.
 * Reads JSON jobs from stdin, one a line, runs them one after another and
 * prints one JSON result line for each (see `LoadClient` in `servers.ts`).
 *
 * - `fanout`: `n` sockets on one topic; `publishers` of them publish `payload`
 *   as fast as the server keeps up (at most `window` messages not yet seen by
 *   a watcher socket); counts text frames delivered to all sockets during
 *   `measureMs` after `warmupMs`. Prints `{deliveries, publishes, seconds,
 *   loadCpuSeconds, serverCpuSeconds}` (CPU time of this process and of
 *   `serverPid` over the measured window).
 * - `idle`: opens `count` more sockets, each subscribed to one of `rooms`
 *   topics (or, with `perRoom`, socket `offset + i` to room
 *   `(offset + i) / perRoom`, so successive jobs fill rooms of that size),
 *   prints `{connected}` (all held so far) and holds them until the next
 *   `release` job.
 */
import { createInterface } from 'node:readline'
import { openRaw, textFrame, type RawWs } from './raw-ws.ts'
import { cpuSeconds, syscalls } from './servers.ts'

interface Job {
  mode: 'fanout' | 'idle' | 'release'
  host?: string
  port?: number
  path?: string
  /** Send y-webrtc subscribe messages (false for the bare forwarder, which has no topics). */
  subscribe?: boolean
  /** The fan-out topic (must match the payload's). */
  topic?: string
  n?: number
  publishers?: number
  payload?: string
  window?: number
  warmupMs?: number
  measureMs?: number
  count?: number
  rooms?: number
  /** `idle`: peers per room, counted from `offset` (instead of `rooms`). */
  perRoom?: number
  offset?: number
  /** The server's pid, to read its CPU time over the measured window. */
  serverPid?: number
}

const out = (o: object) => process.stdout.write(JSON.stringify(o) + '\n')
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms))

/** Opens `count` sockets, `batch` handshakes at a time; subscribes socket i to `topic(i)` and waits for its pong. */
async function openMany(job: Job, count: number, topic: (i: number) => string): Promise<RawWs[]> {
  const sockets: RawWs[] = []
  const batch = 100
  for (let i = 0; i < count; i += batch) {
    const opened = await Promise.all(Array.from({ length: Math.min(batch, count - i) }, () => openRaw(job.host!, job.port!, job.path!)))
    if (job.subscribe) {
      await Promise.all(
        opened.map((ws, k) => {
          const ready = new Promise<void>((res) => (ws.onFrames = () => res()))
          ws.write(Buffer.concat([textFrame(JSON.stringify({ type: 'subscribe', topics: [topic(i + k)] })), textFrame('{"type":"ping"}')]))
          return ready
        }),
      )
      for (const ws of opened) ws.onFrames = null
    }
    sockets.push(...opened)
  }
  return sockets
}

async function fanout(job: Job): Promise<object> {
  const { n = 10, publishers = 2, payload = '', window = 64, warmupMs = 500, measureMs = 3000 } = job
  const sockets = await openMany(job, n, () => job.topic ?? 'bench')
  const frame = textFrame(payload)
  const pubs = sockets.slice(0, publishers)
  const watcher = sockets[n - 1]
  // A batch of frames per publisher, so one top-up is one write per publisher.
  const burst = Math.max(1, Math.floor(window / 2 / publishers))
  const batch = Buffer.concat(Array.from({ length: burst }, () => frame))
  let sent = 0
  const pump = () => {
    while (sent - watcher.received + burst * publishers <= window) {
      for (const p of pubs) p.write(batch)
      sent += burst * publishers
    }
  }
  watcher.onFrames = pump
  pump()
  const total = () => sockets.reduce((s, ws) => s + ws.received, 0)
  await sleep(warmupMs)
  const d0 = total()
  const p0 = sent
  const t0 = performance.now()
  const cpu0 = process.cpuUsage()
  const server0 = job.serverPid ? cpuSeconds(job.serverPid) : 0
  const sys0 = job.serverPid ? syscalls(job.serverPid) : { reads: 0, writes: 0 }
  await sleep(measureMs)
  const deliveries = total() - d0
  const publishes = sent - p0
  const seconds = (performance.now() - t0) / 1000
  const serverCpuSeconds = job.serverPid ? cpuSeconds(job.serverPid) - server0 : 0
  const sys1 = job.serverPid ? syscalls(job.serverPid) : { reads: 0, writes: 0 }
  const serverWrites = sys1.writes - sys0.writes
  const serverReads = sys1.reads - sys0.reads
  const cpu = process.cpuUsage(cpu0)
  const loadCpuSeconds = (cpu.user + cpu.system) / 1e6
  watcher.onFrames = null
  for (const ws of sockets) ws.destroy()
  return { deliveries, publishes, seconds, loadCpuSeconds, serverCpuSeconds, serverReads, serverWrites }
}

let held: RawWs[] = []

async function idle(job: Job): Promise<object> {
  const { count = 1000, rooms = 100, perRoom, offset = 0 } = job
  const room = perRoom ? (i: number) => `room-${Math.floor((offset + i) / perRoom)}` : (i: number) => `room-${i % rooms}`
  held.push(...(await openMany(job, count, room)))
  return { connected: held.length }
}

function release(): object {
  for (const ws of held) ws.destroy()
  const released = held.length
  held = []
  return { released }
}

let queue: Promise<unknown> = Promise.resolve()
createInterface({ input: process.stdin }).on('line', (line) => {
  const job: Job = JSON.parse(line)
  queue = queue.then(async () => out(await (job.mode === 'fanout' ? fanout(job) : job.mode === 'idle' ? idle(job) : release())))
})
process.stdin.on('end', () => void queue.then(() => process.exit(0)))
