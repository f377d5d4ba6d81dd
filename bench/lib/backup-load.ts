/**
 * Load generator of the backup benchmark, run as its own long-lived process
 * (pinned to its own core when possible) so it never shares a core with the
 * server it measures, and so process start-up is paid once per benchmark.
 * Reads one JSON job per stdin line and prints one JSON result per stdout
 * line, in order (`{"error": …}` when a job failed).
 *
 * - `durable`: for each of `runs`, `clients` sockets, each on its own
 *   document or (`shared`) all on one, each appending single-character Yjs
 *   updates as fast as the server keeps up (at most `window` unconfirmed per
 *   socket; on a shared document `window / clients` each), for `measureMs`
 *   after `warmupMs`. Counts updates confirmed in
 *   that window, then stops and times the drain (until all sent are confirmed):
 *     murmur — `[100, n]` sent after every update, confirmed when `[101, n]`
 *              (committed with synchronous=FULL) comes back;
 *     hocus  — no durability signal exists on the wire: the window is bounded
 *              by SyncStatus answers (= applied in memory); durable = updates
 *              covered by a finished SQLite store, read from the series file
 *              the server wrapper appends to (see backup-hocus-server.ts);
 *     yws    — in memory only, no reply to an update: an awareness probe
 *              after every 8 updates, echoed by the server once applied,
 *              confirms "applied".
 * - `seed`: uploads the state in `updateFile` to each of `docs` (one socket
 *   each, `parallel` at a time) and waits until the server has it — murmur:
 *   durable ack; hocus: its store of that document finished (`/stats?doc=`);
 *   yws: a sync step 1 answered after it (applied). With `hold`, keeps the
 *   sockets open (documents stay loaded) until a `release` job.
 * - `hold`: opens and syncs one socket per doc (loading each on the server)
 *   and keeps them until a `release` job with the same `holdId`.
 * - `fetch`: times fresh clients: connect → synced, text length checked —
 *   a pass over `coldDocs` (each loaded for the first time), then with every
 *   one of `docs` held loaded by another socket (warm), `repeat` times per
 *   client kind. `'stock'` is y-websocket's
 *   `WebsocketProvider` (murmur, yws); `'raw'` a minimal client doing what it
 *   does (send step 1, apply the step 2 answer), needed for Hocuspocus whose
 *   protocol the stock provider does not speak.
 */
import { readFileSync } from 'node:fs'
import { get as httpGet } from 'node:http'
import { createInterface } from 'node:readline'
import WebSocket from 'ws'
import * as Y from 'yjs'
import { WebsocketProvider } from 'y-websocket'
import { openBin, type BinWs } from './backup-rawws.ts'
import { ackNonce, awarenessEcho, awarenessProbe, charUpdate, docUrl, durableQuery, hocusAuth, parse, providerBase, step1Msg, updateMsg, type Proto } from './backup-proto.ts'

interface Job {
  mode: 'durable' | 'seed' | 'fetch' | 'hold' | 'release'
  /** Names a set of held sockets (`hold`, `seed` with `hold`, `release`). */
  holdId?: string
  proto: Proto
  host: string
  port: number
  // durable
  runs?: DurableRun[]
  window?: number
  drainMs?: number
  /** murmur: send a durable query after every this many updates (default 1). */
  queryEvery?: number
  /** Hocuspocus: the series file its wrapper writes (see backup-hocus-server.ts). */
  series?: string
  /** Server process id, to read its CPU time during the measurement. */
  serverPid?: number
  warmupMs?: number
  measureMs?: number
  docPrefix?: string
  // seed / fetch / hold
  docs?: string[]
  updateFile?: string
  files?: string[]
  hold?: boolean
  parallel?: number
  textLength?: number[]
  clients?: ('stock' | 'raw')[]
  repeat?: number
  coldDocs?: string[]
  coldLengths?: number[]
  warmupDocs?: string[]
}

/** The job being run (jobs run one at a time). */
let job: Job = { mode: 'durable', proto: 'murmur', host: '127.0.0.1', port: 0 }

/** CPU nanoseconds the main thread of process `pid` has run so far (from /proc/<pid>/schedstat: exact, not tick-sampled). */
function mainThreadNs(pid: number): number {
  return Number(readFileSync(`/proc/${pid}/schedstat`, 'utf8').split(' ')[0])
}

/** User + system CPU seconds of process `pid` so far (from /proc). */
function cpuSeconds(pid: number): number {
  const fields = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1]!.split(' ')
  return (Number(fields[11]) + Number(fields[12])) / 100
}
const out = (o: object) => process.stdout.write(JSON.stringify(o) + '\n')
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms))
const statsUrl = (doc?: string) => `http://${job.host}:${job.port}/stats${doc ? `?doc=${encodeURIComponent(doc)}` : ''}`
/** The Hocuspocus wrapper's counters, over a fresh connection each time (no keep-alive race with a server whose loop is blocked by stores). */
const stats = (doc?: string): Promise<{ applied: number; durable: number; stores?: number }> =>
  new Promise((resolve, reject) => {
    const req = httpGet(statsUrl(doc), { agent: false }, (res) => {
      let body = ''
      res.setEncoding('utf8')
      res.on('data', (d) => (body += d))
      res.on('end', () => resolve(JSON.parse(body)))
    })
    req.on('error', reject)
  })

/** One socket on one document, parsing just what the benchmark needs. */
function open(doc: string, onFrame: (data: Uint8Array, ws: WebSocket) => void): Promise<WebSocket> {
  return new Promise((resolve, reject) => {
    const ws = new WebSocket(docUrl(job.proto, job.host, job.port, doc), { perMessageDeflate: false })
    ws.binaryType = 'nodebuffer'
    ws.on('message', (d: Buffer) => onFrame(new Uint8Array(d.buffer, d.byteOffset, d.byteLength), ws))
    ws.once('open', () => {
      if (job.proto === 'hocus') ws.send(hocusAuth(doc))
      resolve(ws)
    })
    ws.once('error', reject)
    ws.on('close', (code: number, reason: Buffer) => {
      if (closing.has(ws)) return
      // A server closing a socket mid-benchmark invalidates the run: fail loudly.
      process.stderr.write(`server closed the socket of ${doc}: ${code} ${reason.toString()}\n`)
      process.exit(1)
    })
  })
}

/** Sockets we close on purpose (any other close is a failure of the run). */
const closing = new WeakSet<WebSocket>()
function closeSocket(ws: WebSocket, hard = false): void {
  closing.add(ws)
  if (hard) ws.terminate()
  else ws.close()
}

/** A one-shot signal that may fire before anyone waits for it. */
function waiter() {
  let fired = false
  let hit: (() => void) | null = null
  return {
    wait: (ms = 30_000) =>
      new Promise<void>((res, rej) => {
        if (fired) return res()
        const t = setTimeout(() => rej(new Error('timed out waiting for the server')), ms)
        hit = () => (clearTimeout(t), res())
      }),
    fire: () => {
      fired = true
      hit?.()
    },
  }
}

/**
 * Hocuspocus totals at wall-clock time `t` (ms since epoch), from the series
 * file its wrapper appends to (`job.series`): the last line at or before `t`.
 * This run's documents are new, so totals only grow from the run's own updates.
 */
function seriesAt(t: number): { applied: number; durable: number } {
  let text = ''
  try {
    text = readFileSync(job.series!, 'utf8')
  } catch {
    return { applied: 0, durable: 0 }
  }
  let best = { applied: 0, durable: 0 }
  for (const line of text.split('\n')) {
    const [time, applied, durable] = line.split(' ').map(Number)
    if (!line || time! > t) continue
    best = { applied: applied!, durable: durable! }
  }
  return best
}

/** One configuration of the `durable` mode. */
interface DurableRun {
  clients: number
  shared: boolean
}

/** Runs one `durable` configuration; returns its counts. */
async function durableRun({ clients, shared }: DurableRun, tag: string): Promise<object> {
  const { warmupMs = 500, measureMs = 3000, docPrefix = 'd', drainMs = 5000 } = job
  // On one shared document every update is relayed to the K-1 others: the document's `window` is split
  // among its sockets, so one round trip stays short next to the measurement (and alike for every server).
  const window = shared ? Math.max(1, Math.floor((job.window ?? 64) / clients)) : (job.window ?? 64)
  const proto = job.proto
  // murmur: a durable query after every `queryEvery` updates (1 = after each, as murmur's client does per keystroke);
  // yws: an awareness probe after every 8 (it has nothing cheaper that answers). Never sparser than the window.
  const probeEvery = Math.min(window, proto === 'murmur' ? (job.queryEvery ?? 1) : 8)
  interface Client {
    ws: BinWs
    doc: string
    id: number
    sent: number
    confirmed: number
    /** yws: `sent` at each awareness probe (probe k has awareness clock k + 1). */
    probes: number[]
    pump: () => void
    /** Sends a final query/probe covering everything sent (so the drain can complete). */
    finish: () => void
  }
  const all: Client[] = []
  let running = true
  let stopping = false
  const ready: Promise<void>[] = []
  const url = (doc: string) => new URL(docUrl(proto, job.host, job.port, doc)).pathname
  for (let i = 0; i < clients; i++) {
    const doc = shared ? `${docPrefix}-${tag}-shared` : `${docPrefix}-${tag}-${i}`
    const c = { doc, id: 1000 + i + Math.floor(Math.random() * 1e6) * 64, sent: 0, confirmed: 0, probes: [] } as unknown as Client
    const w = waiter()
    let greeted = false
    const onFrame = (data: Uint8Array) => {
      if (proto === 'murmur') {
        const n = ackNonce(data)
        if (n >= 0) {
          c.confirmed = n
          return c.pump()
        }
      } else if (proto === 'hocus') {
        if (parse(proto, data).kind === 'status') {
          c.confirmed++
          return c.pump()
        }
      } else {
        const echo = awarenessEcho(data)
        if (echo) {
          if (echo[0] === c.id) {
            c.confirmed = c.probes[echo[1] - 1]!
            c.pump()
          }
          return
        }
      }
      if (!greeted) {
        // murmur / yws: the server's step 1 means the room is loaded; Hocuspocus: the auth answer.
        greeted = true
        w.fire()
      }
    }
    const onClose = (code: number | null, reason: string) => {
      if (stopping) return
      process.stderr.write(`server closed the socket of ${doc}: ${code} ${reason}\n`)
      process.exit(1)
    }
    c.ws = await openBin(job.host, job.port, url(doc), { onFrame, onClose })
    if (proto === 'hocus') c.ws.send(hocusAuth(doc))
    const out: Uint8Array[] = []
    const probe = () => {
      if (proto === 'murmur') out.push(durableQuery(c.sent))
      else if (proto === 'yws') {
        c.probes.push(c.sent)
        out.push(awarenessProbe(c.id, c.probes.length))
      }
    }
    c.pump = () => {
      while (running && c.sent - c.confirmed < window) {
        out.push(updateMsg(proto, doc, charUpdate(c.id, c.sent++)))
        if (c.sent % probeEvery === 0) probe()
      }
      if (out.length) c.ws.send(...out.splice(0))
    }
    c.finish = () => {
      if (c.sent % probeEvery !== 0) probe()
      if (out.length) c.ws.send(...out.splice(0))
    }
    ready.push(w.wait())
    all.push(c)
  }
  await Promise.all(ready)
  let before = { applied: 0, durable: 0 }
  if (proto === 'hocus') {
    // Let stores left over from an earlier run finish, so they are not counted in this one.
    for (const deadline = performance.now() + 5000; performance.now() < deadline; await sleep(20)) {
      before = seriesAt(Infinity)
      if (before.durable >= before.applied) break
    }
  }
  for (const c of all) c.pump()
  await sleep(warmupMs)
  const confirmed = () => all.reduce((s, c) => s + c.confirmed, 0)
  const sent = () => all.reduce((s, c) => s + c.sent, 0)
  const cpu0 = job.serverPid ? cpuSeconds(job.serverPid) : 0
  const c0 = confirmed()
  const n0 = sent()
  const w0 = Date.now()
  const t0 = performance.now()
  await sleep(measureMs)
  const w1 = Date.now()
  const serverCpuSeconds = job.serverPid ? cpuSeconds(job.serverPid) - cpu0 : null
  const seconds = (performance.now() - t0) / 1000
  const c1 = confirmed()
  const n1 = sent()
  // Stop sending; time until everything sent is confirmed (durable for murmur/hocus, applied for yws).
  running = false
  for (const c of all) c.finish()
  const tStop = performance.now()
  let drain: number | null = null
  const total = sent()
  for (const deadline = tStop + drainMs; performance.now() < deadline; ) {
    let done: boolean
    if (proto === 'hocus') {
      const s = seriesAt(Infinity)
      done = s.durable - before.durable >= total && s.applied - before.applied >= total
    } else done = confirmed() >= total
    if (done) {
      drain = performance.now() - tStop
      break
    }
    await sleep(proto === 'hocus' ? 20 : 2)
  }
  stopping = true
  for (const c of all) c.ws.destroy()
  const base = { clients, shared, sent: n1 - n0, seconds, serverCpuSeconds, drainMs: drain }
  if (proto === 'murmur') return { ...base, durable: c1 - c0, applied: null }
  if (proto === 'hocus') {
    const s0 = seriesAt(w0)
    const s1 = seriesAt(w1)
    return { ...base, durable: s1.durable - s0.durable, applied: s1.applied - s0.applied }
  }
  return { ...base, durable: null, applied: c1 - c0 }
}

async function durable(): Promise<object> {
  const results = []
  for (const [i, run] of job.runs!.entries()) {
    results.push(await durableRun(run, `${i}`))
    await sleep(200)
  }
  return { results }
}

/** Uploads `update` to `doc` and resolves once the server has it (see the header); returns the open socket. */
async function seedOne(doc: string, update: Uint8Array, hold: boolean): Promise<WebSocket> {
  const proto = job.proto
  const greet = waiter()
  const done = waiter()
  let greeted = false
  const ws = await open(doc, (data) => {
    const m = parse(proto, data)
    if (!greeted) {
      greeted = true
      greet.fire()
    }
    if ((proto === 'murmur' && m.kind === 'ack' && m.nonce === 1) || (proto === 'hocus' && m.kind === 'status') || (proto === 'yws' && m.kind === 'step2')) done.fire()
  })
  const greeting = greet.wait()
  if (proto !== 'hocus') await greeting
  const confirmed = done.wait(120_000)
  ws.send(updateMsg(proto, doc, update))
  if (proto === 'murmur') ws.send(durableQuery(1))
  if (proto === 'yws') ws.send(step1Msg(proto, doc, Y.encodeStateVectorFromUpdate(update)))
  await confirmed
  if (proto === 'hocus') {
    if (!hold) closeSocket(ws)
    // Persisted = a store of this document that started after the update was applied has finished.
    for (const deadline = Date.now() + 60_000; ; ) {
      const s = await stats(doc)
      if (s.applied > 0 && s.durable >= s.applied && (s.stores ?? 0) > 0) break
      if (Date.now() > deadline) throw new Error(`hocuspocus never stored ${doc}`)
      await sleep(20)
    }
  } else if (!hold) closeSocket(ws)
  return ws
}

async function seed(): Promise<object> {
  const docs = job.docs!
  // One state for every doc (`updateFile`) or one per doc (`files`).
  const shared = job.updateFile ? new Uint8Array(readFileSync(job.updateFile)) : null
  const updateOf = (i: number) => shared ?? new Uint8Array(readFileSync(job.files![i]!))
  const parallel = job.parallel ?? 8
  const sockets: WebSocket[] = []
  for (let i = 0; i < docs.length; i += parallel) {
    sockets.push(...(await Promise.all(docs.slice(i, i + parallel).map((d, k) => seedOne(d, updateOf(i + k), Boolean(job.hold))))))
  }
  return holdOrClose(sockets, docs.length)
}

/** Sockets kept open by `hold` jobs (and `seed` with `hold`), by job `holdId`, until a `release` job. */
const held = new Map<string, WebSocket[]>()

async function holdOrClose(sockets: WebSocket[], n: number): Promise<object> {
  if (!job.hold) {
    await sleep(50)
    return { seeded: n }
  }
  held.set(job.holdId ?? 'default', sockets)
  return { ready: n }
}

async function release(): Promise<object> {
  const sockets = held.get(job.holdId ?? 'default') ?? []
  held.delete(job.holdId ?? 'default')
  for (const s of sockets) closeSocket(s)
  await sleep(100)
  return { released: sockets.length }
}

/** Raw fresh-client sync: send step 1 (empty state vector), apply the step 2 answer. Returns ms and the doc. */
async function rawFetch(doc: string): Promise<{ ms: number; recvMs: number; ydoc: Y.Doc; ws: WebSocket }> {
  const proto = job.proto
  const ydoc = new Y.Doc()
  const done = waiter()
  const t0 = performance.now()
  let recvMs = NaN
  const ws = await open(doc, (data) => {
    const m = parse(proto, data)
    if (m.kind === 'step2') {
      // Connect → the whole answer is here: the server's part (plus the network), before the client applies it.
      recvMs = performance.now() - t0
      Y.applyUpdate(ydoc, m.update)
      done.fire()
    }
  })
  const synced = done.wait(120_000)
  ws.send(step1Msg(proto, doc, Y.encodeStateVector(ydoc)))
  await synced
  return { ms: performance.now() - t0, recvMs, ydoc, ws }
}

/** Stock y-websocket provider: constructed → 'sync' event. */
async function stockFetch(doc: string): Promise<{ ms: number; ydoc: Y.Doc; destroy: () => void }> {
  const ydoc = new Y.Doc()
  const t0 = performance.now()
  const provider = new WebsocketProvider(providerBase(job.proto, job.host, job.port), doc, ydoc, {
    WebSocketPolyfill: WebSocket as unknown as typeof globalThis.WebSocket,
    disableBc: true,
  })
  await new Promise<void>((res, rej) => {
    const t = setTimeout(() => rej(new Error(`stock provider never synced ${doc}`)), 120_000)
    provider.on('sync', (s: boolean) => s && (clearTimeout(t), res()))
  })
  const ms = performance.now() - t0
  return { ms, ydoc, destroy: () => (provider.destroy(), ydoc.destroy()) }
}

/** Fetches `doc` once with `client`, checks its text length; returns ms. */
async function fetchOnce(doc: string, client: 'stock' | 'raw', textLength: number | undefined): Promise<{ ms: number; recvMs?: number; serverMs: number; ydoc: Y.Doc }> {
  const ns0 = job.serverPid ? mainThreadNs(job.serverPid) : 0
  let got: { ms: number; recvMs?: number; ydoc: Y.Doc }
  if (client === 'stock') {
    const s = await stockFetch(doc)
    got = s
    const len = got.ydoc.getText('text').length
    s.destroy()
    if (textLength !== undefined && len !== textLength) throw new Error(`${doc}: fresh client got ${len} chars, expected ${textLength}`)
  } else {
    const s = await rawFetch(doc)
    closeSocket(s.ws)
    got = s
    const len = got.ydoc.getText('text').length
    if (textLength !== undefined && len !== textLength) throw new Error(`${doc}: fresh client got ${len} chars, expected ${textLength}`)
  }
  await sleep(10)
  // Server main-thread CPU spent on this fetch (connect, load if cold, answer, close).
  const serverMs = job.serverPid ? (mainThreadNs(job.serverPid) - ns0) / 1e6 : NaN
  return { ...got, serverMs }
}

/**
 * `fetch`: optionally fetches `warmupDocs` untimed (JIT of a just-restarted
 * server); then opens a holder socket per doc of `docs` (so every one stays
 * loaded) and fetches each `repeat` times with each client in `clients`,
 * alternating them (warm); closes the holders; then fetches each of
 * `coldDocs` once (cold: the first load of each since the server started),
 * with `clients[0]`.
 */
async function fetchDocs(): Promise<object> {
  // Warm this process's JIT on Yjs decoding first, so the first timed fetch is not also the slowest.
  if (job.updateFile) {
    const warm = new Uint8Array(readFileSync(job.updateFile))
    for (let i = 0; i < 3; i++) Y.applyUpdate(new Y.Doc(), warm)
  }
  const docs = job.docs!
  const lengths = job.textLength ?? []
  const clients = job.clients ?? ['stock']
  const repeat = job.repeat ?? 1
  for (const d of job.warmupDocs ?? []) await fetchOnce(d, 'raw', undefined)
  // Raw client only: connect → answer received (before applying it); and the server's CPU per fetch.
  const warmRecv: number[][] = docs.map(() => [])
  const warmCpu: number[][] = docs.map(() => [])
  const holders: WebSocket[] = []
  for (const d of docs) holders.push((await rawFetch(d)).ws)
  const warm: Record<string, number[][]> = Object.fromEntries(clients.map((c) => [c, docs.map(() => [])]))
  const applyMs: number[] = []
  for (let i = 0; i < docs.length; i++) {
    for (let r = 0; r < repeat; r++) {
      for (const c of clients) {
        const got = await fetchOnce(docs[i]!, c, lengths[i])
        warm[c]![i]!.push(got.ms)
        if (got.recvMs !== undefined) {
          warmRecv[i]!.push(got.recvMs)
          warmCpu[i]!.push(got.serverMs)
        }
        if (r === 0 && c === clients[0]) {
          // What the client alone spends applying that state (no network, no server).
          const state = Y.encodeStateAsUpdate(got.ydoc)
          const t0 = performance.now()
          Y.applyUpdate(new Y.Doc(), state)
          applyMs.push(performance.now() - t0)
        }
      }
    }
  }
  for (const h of holders) closeSocket(h)
  await sleep(100)
  // Cold pass, after the warm one (so warm numbers are not taken with a heap full of cold-loaded documents):
  // each of `coldDocs` once, its first load since the server started.
  let cold: number[] | null = null
  let coldRecv: number[] | null = null
  let coldCpu: number[] | null = null
  if (job.coldDocs) {
    cold = []
    coldRecv = []
    coldCpu = []
    for (let i = 0; i < job.coldDocs.length; i++) {
      const got = await fetchOnce(job.coldDocs[i]!, clients[0]!, job.coldLengths?.[i])
      cold.push(got.ms)
      coldRecv.push(got.recvMs ?? NaN)
      coldCpu.push(got.serverMs)
    }
  }
  return { cold, coldRecv, coldCpu, warm, warmRecv, warmCpu, applyMs }
}

/** Opens one socket per doc and syncs it (loading the document on the server); keeps them until `release`. */
async function hold(): Promise<object> {
  const sockets: WebSocket[] = []
  for (const d of job.docs!) sockets.push((await rawFetch(d)).ws)
  job.hold = true
  return holdOrClose(sockets, sockets.length)
}

const modes: Record<Job['mode'], () => Promise<object>> = { durable, seed, fetch: fetchDocs, hold, release }

// One job per stdin line, one JSON result per stdout line, in order.
const lines = createInterface({ input: process.stdin })
let queue = Promise.resolve()
lines.on('line', (line) => {
  queue = queue.then(async () => {
    job = JSON.parse(line) as Job
    try {
      out(await modes[job.mode]())
    } catch (err) {
      out({ error: (err as Error).stack ?? String(err) })
    }
  })
})
lines.on('close', () => void queue.then(() => process.exit(0)))
