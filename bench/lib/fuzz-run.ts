/**
 * The fuzzing run: starts a real server child process, seeds a victim room,
 * starts the bystander, fuzzes `/sync` and `/signal` for a bounded time from a
 * seed, watches the server (RSS, /metrics, exit, error logs) and checks the
 * victim afterwards — live and after a restart from storage.
 *
 * Phases:
 * 1. rooms  — sessions to fuzz rooms, /signal, raw WebSocket framing and HTTP
 *             paths. Never the victim.
 * 2. victim — sessions to the victim room only, each update-bearing frame
 *             filtered by `fuzz-victim.ts` so that nothing sent could change
 *             it legitimately. The victim must end up exactly as seeded.
 */
import { fork, type ChildProcess } from 'node:child_process'
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join, resolve } from 'node:path'
import * as Y from 'yjs'
import { startServer, type ServerProcess } from '../../test/helpers/server.ts'
import { frameType, rawSync, syncMessage, uintMessage, yClient } from '../../test/helpers/clients.ts'
import { CloseCode, MessageType } from '../../src/protocol/messages.ts'
import { freePort } from './servers.ts'
import * as encoding from 'lib0/encoding'
import { buildCorpus, encodeAwareness } from './fuzz-corpus.ts'
import { makeSession, type FuzzLimits, type Session } from './fuzz-frames.ts'
import { runSession, type FrameOutcome } from './fuzz-client.ts'
import { createVictimFilter, fingerprint } from './fuzz-victim.ts'

export interface FuzzOptions {
  seed: number
  seconds: number
  /** Share of the time spent on the victim phase. */
  victimShare?: number
  /** Concurrent fuzz sockets. */
  concurrency?: number
  /**
   * Sessions per phase: a phase ends after this many sessions (or when its
   * time is up, whichever comes first), so a short run is the same work on a
   * fast and a slow machine.
   */
  phaseSessions?: { rooms: number; victim: number }
  /** Only run these session indexes of the rooms phase (replay). */
  only?: number[]
  /** Progress lines to stderr. */
  verbose?: boolean
  replyTimeoutMs?: number
  /** Skip the slow-reader probe. */
  noProbe?: boolean
}

/**
 * Close codes the server documents (src/protocol/messages.ts, the module docs
 * of server/sync.ts and server/signaling.ts) plus the ones `ws` itself sends
 * for broken WebSocket framing (1002 protocol error, 1007 invalid UTF-8).
 */
export const documentedCloseCodes: ReadonlySet<number> = new Set([...Object.values(CloseCode), 1000, 1002, 1007, 1012, 1013])

/** Server limits the fuzz server runs with (and the generator needs to know). */
export const fuzzLimits: FuzzLimits = { maxFrameBytes: 1024 * 1024, maxSignalFrameBytes: 64 * 1024, maxSignalRate: 200, maxSyncRate: 1000 }

/** Flags of the fuzz server: smaller frames and timeouts so the limits are reached quickly. */
export const fuzzServerArgs = ['--log-level', 'error', '--max-frame-bytes', String(fuzzLimits.maxFrameBytes), '--pending-timeout-ms', '2000', '--idle-unload-ms', '2000']

export interface FuzzReport {
  seed: number
  seconds: number
  /** Concurrent fuzz sockets, and whether the slow-reader probe was skipped (both part of the replay command). */
  concurrency: number
  noProbe: boolean
  phaseSessions?: { rooms: number; victim: number }
  sessions: { rooms: number; victim: number }
  /** endpoint → kind → result → count */
  table: Record<string, Record<string, Record<string, number>>>
  framesPerEndpoint: Record<string, number>
  closeCodes: Record<string, number>
  undocumentedCloseCodes: number[]
  serverCloses: Record<string, number>
  crashes: { at: number; code: number | null; signal: string | null; inFlight: number[]; output: string }[]
  violations: string[]
  serverErrors: string[]
  rss: { startMiB: number; maxMiB: number; endMiB: number; samples: number; /** RSS at each tenth of the run */ timeline: number[] }
  heapUsedMaxMiB: number
  eventLoopLagP99MaxMs: number
  /** Once a second: ms since the start, server RSS and heap (MiB), event-loop lag p99 (ms), fuzz inputs sent so far. */
  timeline: { ms: number; rssMiB: number; heapMiB: number; lagP99Ms: number; inputs: number }[]
  /** ms since the start at which each phase began. */
  phaseStarts: { name: string; ms: number }[]
  bystander: { sent: number; received: number; lost: number; p50: number; p99: number; max: number; disconnects: number; converged: boolean } | null
  victim: { filtered: number; checked: number; unchangedLive: boolean; unchangedStored: boolean }
  healthz: number
  /** The slow-reader probe, run after the phases (null when skipped). */
  slowReader: SlowReaderProbe | null
  /** Why the slow-reader probe could not finish (null when it did or was skipped). */
  slowReaderError: string | null
  exitCode: number | null
  durationMs: number
}

function rssMiB(pid: number): number {
  try {
    const m = /^VmRSS:\s+(\d+) kB/m.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))
    return m ? Number(m[1]) / 1024 : NaN
  } catch {
    return NaN
  }
}

function metricValue(text: string, name: string, labels?: string): number {
  for (const line of text.split('\n')) {
    if (!line.startsWith(name)) continue
    const rest = line.slice(name.length)
    if (labels === undefined ? /^\s/.test(rest) : rest.startsWith('{') && rest.includes(labels)) return Number(rest.trim().split(/\s+/).pop())
  }
  return NaN
}

function serverCloses(text: string): Record<string, number> {
  const out: Record<string, number> = {}
  for (const m of text.matchAll(/^murmur_closed_by_server_total\{([^}]*)\} (\d+)/gm)) {
    const endpoint = /endpoint="([^"]+)"/.exec(m[1])?.[1]
    const code = /code="([^"]+)"/.exec(m[1])?.[1]
    out[`${endpoint}:${code}`] = Number(m[2])
  }
  return out
}

/** Writes the victim's content (text with a deletion and a map) and waits until it is durable. */
async function seedVictim(server: ServerProcess, docId: string): Promise<Uint8Array> {
  const doc = new Y.Doc()
  doc.clientID = 424242
  doc.getText('text').insert(0, 'The victim document: nothing the fuzzer sends may change it.')
  doc.getText('text').delete(4, 7)
  doc.getMap('meta').set('title', 'victim')
  const update = Y.encodeStateAsUpdate(doc)
  const raw = await rawSync(server.wsUrl, `/sync/${docId}`)
  raw.send(syncMessage(2, update))
  raw.send(uintMessage(MessageType.durableQuery, 1))
  await raw.waitFor((f) => frameType(f) === MessageType.durableAck)
  raw.ws.close()
  await raw.closed
  return update
}

async function victimFingerprint(wsUrl: string, docId: string): Promise<string> {
  const c = yClient(wsUrl, docId)
  const timeout = new Promise<never>((_, rej) => setTimeout(() => rej(new Error('victim snapshot timed out')), 15_000).unref())
  await Promise.race([c.synced, timeout])
  const fp = fingerprint(c.doc)
  c.destroy()
  return fp
}

function startBystander(wsUrl: string, room: string): Promise<{ child: ChildProcess; stop(): Promise<FuzzReport['bystander']> }> {
  const child = fork(resolve(import.meta.dirname, 'fuzz-bystander.ts'), [wsUrl, room, '100'], { execArgv: ['--import', 'tsx'], stdio: ['ignore', 'inherit', 'inherit', 'ipc'] })
  return new Promise((res, rej) => {
    const timer = setTimeout(() => rej(new Error('bystander did not sync')), 20_000)
    child.once('exit', (code) => rej(new Error(`bystander exited with ${code}`)))
    child.on('message', (m: { type: string }) => {
      if (m.type !== 'ready') return
      clearTimeout(timer)
      res({
        child,
        stop: () =>
          new Promise((done) => {
            const t = setTimeout(() => {
              child.kill('SIGKILL')
              done(null)
            }, 15_000)
            child.on('message', (r: { type: string } & NonNullable<FuzzReport['bystander']>) => {
              if (r.type !== 'result') return
              clearTimeout(t)
              const { type: _, ...rest } = r
              done(rest)
            })
            child.send({ type: 'stop' })
          }),
      })
    })
  })
}

/** Result of the slow-reader probe (see `slowReaderProbe`). */
export interface SlowReaderProbe {
  queries: number
  stateBytes: number
  /** Peak RSS during the probe minus RSS before it (MiB). */
  rssGrowthMiB: number
  /** How long `/healthz` took while the reader was flooding. */
  healthzMs: number
  /** Status of that `/healthz` (0: no answer within 120 s). */
  healthzStatus: number
  /** Close code the reader got within 3 s of resuming (null: still open). */
  readerClose: number | null
  /** `closed <code>` or `open`, for the report. */
  reader: string
  /** Exit code or signal when the server process died during the probe, else null. */
  serverExit: string | null
}

/**
 * A slow consumer asking for a lot: one socket publishes awareness within the
 * per-socket caps (16 ids × 15 KB), another stops reading and sends 1,000
 * one-byte query-awareness frames (within the burst limit). A server that
 * answers every query into an unread socket encodes and buffers ~240 MB
 * (finding F3); one that bounds per-socket buffering closes the reader with
 * 1013. Reports RSS growth, how long and with what status /healthz answered
 * meanwhile, the reader's close code and whether the server survived; nothing
 * is swallowed (a step that fails throws).
 */
export async function slowReaderProbe(server: ServerProcess, room: string): Promise<SlowReaderProbe> {
  const queries = 1000
  const pid = server.child.pid!
  const holder = await rawSync(server.wsUrl, `/sync/${room}`)
  const state = JSON.stringify({ user: { name: 'x'.repeat(15_000), color: '#30bced' } })
  const states = Array.from({ length: 16 }, (_, i) => ({ client: 900_000 + i, clock: 1, json: state }))
  const enc = encoding.createEncoder()
  encoding.writeVarUint(enc, MessageType.awareness)
  encoding.writeVarUint8Array(enc, encodeAwareness(states))
  holder.send(encoding.toUint8Array(enc))
  holder.send(syncMessage(0, Y.encodeStateVector(new Y.Doc())))
  await holder.waitFor((f) => f[0] === 0 && f[1] === 1)
  const reader = await rawSync(server.wsUrl, `/sync/${room}`)
  await reader.waitFor((f) => f[0] === 0 && f[1] === 0)
  const rss0 = rssMiB(pid)
  let peak = rss0
  const sampler = setInterval(() => {
    const r = rssMiB(pid)
    if (Number.isFinite(r)) peak = Math.max(peak, r)
  }, 100)
  reader.ws.pause()
  for (let i = 0; i < queries && reader.ws.readyState === reader.ws.OPEN; i++) reader.send(Uint8Array.of(MessageType.queryAwareness))
  const t = performance.now()
  const healthzStatus = await fetch(`${server.url}/healthz`, { signal: AbortSignal.timeout(120_000) }).then((r) => r.status, () => 0)
  const healthzMs = performance.now() - t
  await new Promise((r) => setTimeout(r, 2000))
  clearInterval(sampler)
  reader.ws.resume()
  const readerClose = await Promise.race([reader.closed.then((c) => c.code), new Promise<null>((r) => setTimeout(() => r(null), 3000))])
  reader.ws.terminate()
  holder.ws.close()
  const { exitCode, signalCode } = server.child
  return {
    queries,
    stateBytes: states.length * state.length,
    rssGrowthMiB: peak - rss0,
    healthzMs,
    healthzStatus,
    readerClose,
    reader: readerClose === null ? 'open' : `closed ${readerClose}`,
    serverExit: exitCode !== null || signalCode !== null ? String(signalCode ?? exitCode) : null,
  }
}

/** Runs the fuzzer and returns its report (also writes a crash file per crash). */
export async function runFuzz(opts: FuzzOptions): Promise<FuzzReport> {
  const t0 = Date.now()
  const seed = opts.seed >>> 0
  const concurrency = opts.concurrency ?? 12
  const replyTimeoutMs = opts.replyTimeoutMs ?? 10_000
  const log = (s: string) => opts.verbose && process.stderr.write(s + '\n')
  const corpus = buildCorpus(seed)
  const dataDir = mkdtempSync(join(tmpdir(), 'murmur-fuzz-'))
  const port = await freePort()
  let server = await startServer({ dataDir, port, args: fuzzServerArgs })
  const victimId = `victim${seed.toString(36)}`
  const original = await seedVictim(server, victimId)
  const filter = createVictimFilter(original)
  const bystander = await startBystander(server.wsUrl, `bystander${seed.toString(36)}`)
  // Never leave a server or bystander behind, whatever happens to this process.
  const killChildren = () => {
    bystander.child.kill('SIGKILL')
    server.child.kill('SIGKILL')
  }
  process.once('exit', killChildren)
  try {
    return await fuzz()
  } finally {
    process.off('exit', killChildren)
    killChildren()
  }

  async function fuzz(): Promise<FuzzReport> {
    const report: FuzzReport = {
      seed,
      seconds: opts.seconds,
      concurrency,
      noProbe: Boolean(opts.noProbe),
      phaseSessions: opts.phaseSessions,
      sessions: { rooms: 0, victim: 0 },
      table: {},
      framesPerEndpoint: {},
      closeCodes: {},
      undocumentedCloseCodes: [],
      serverCloses: {},
      crashes: [],
      violations: [],
      serverErrors: [],
      rss: { startMiB: rssMiB(server.child.pid!), maxMiB: 0, endMiB: 0, samples: 0, timeline: [] },
      heapUsedMaxMiB: 0,
      eventLoopLagP99MaxMs: 0,
      timeline: [],
      phaseStarts: [],
      bystander: null,
      victim: { filtered: 0, checked: 0, unchangedLive: false, unchangedStored: false },
      healthz: 0,
      slowReader: null,
      slowReaderError: null,
      exitCode: null,
      durationMs: 0,
    }

    // Watch the server: RSS every 250 ms, /metrics every second, exits.
    const inFlight = new Set<number>()
    let restarting: Promise<void> | null = null
    const watchExit = (s: ServerProcess) =>
      s.child.once('exit', (code, signal) => {
        if (stopping) return
        const file = join(dataDir, `crash-${seed}-${report.crashes.length}.json`)
        const crash = { at: Date.now() - t0, code, signal, inFlight: [...inFlight], output: s.output().slice(-4000) }
        report.crashes.push(crash)
        writeFileSync(file, JSON.stringify({ seed, ...crash }, null, 2))
        log(`server exited (${code ?? signal}) — in-flight sessions ${crash.inFlight.join(',')}; details in ${file}`)
        restarting = startServer({ dataDir, port, args: fuzzServerArgs }).then((next) => {
          server = next
          watchExit(next)
          restarting = null
        })
      })
    let stopping = false
    watchExit(server)
    const rssSamples: number[] = []
    const sampleRss = setInterval(() => {
      const r = rssMiB(server.child.pid!)
      if (Number.isFinite(r)) {
        report.rss.maxMiB = Math.max(report.rss.maxMiB, r)
        report.rss.samples++
        rssSamples.push(r)
      }
    }, 250)
    let metricsText = ''
    let inputs = 0
    const scrape = async () => {
      try {
        const asked = Date.now() - t0
        metricsText = await (await fetch(`${server.url}/metrics`, { signal: AbortSignal.timeout(5000) })).text()
        const heapMiB = metricValue(metricsText, 'nodejs_heap_size_used_bytes') / 2 ** 20
        const lagP99Ms = metricValue(metricsText, 'nodejs_eventloop_lag_p99_seconds') * 1000
        report.heapUsedMaxMiB = Math.max(report.heapUsedMaxMiB, heapMiB || 0)
        report.eventLoopLagP99MaxMs = Math.max(report.eventLoopLagP99MaxMs, lagP99Ms || 0)
        report.timeline.push({ ms: asked, rssMiB: rssSamples[rssSamples.length - 1] ?? NaN, heapMiB, lagP99Ms, inputs })
      } catch {
        // the server is busy or restarting; the next scrape will tell
      }
    }
    const scrapeTimer = setInterval(() => void scrape(), 1000)

    const record = (o: FrameOutcome) => {
      const byKind = (report.table[o.endpoint] ??= {})
      const byResult = (byKind[o.kind] ??= {})
      byResult[o.result] = (byResult[o.result] ?? 0) + 1
      for (const m of o.result.matchAll(/close:(\d+)/g)) report.closeCodes[m[1]] = (report.closeCodes[m[1]] ?? 0) + 1
    }

    const victimShare = opts.victimShare ?? 0.3
    const phases: { name: 'rooms' | 'victim'; ms: number }[] = [
      { name: 'rooms', ms: opts.seconds * 1000 * (1 - victimShare) },
      { name: 'victim', ms: opts.seconds * 1000 * victimShare },
    ]
      for (const phase of phases) {
      if (opts.only && phase.name === 'victim') break
      const end = Date.now() + phase.ms
      let next = 0
      const queue = opts.only ? [...opts.only] : null
      const take = (): Session | null => {
        if (Date.now() >= end && !queue) return null
        if (opts.phaseSessions && next >= opts.phaseSessions[phase.name]) return null
        const index = queue ? queue.shift() : next++
        if (index === undefined) return null
          const s = makeSession(seed, phase.name, index, corpus, fuzzLimits, victimId)
        if (phase.name === 'victim') filter.filter(s)
        return s
      }
      const worker = async () => {
        for (let s = take(); s; s = take()) {
          if (restarting) await restarting
          inFlight.add(s.index)
          const r = await runSession(s, { host: '127.0.0.1', port, replyTimeoutMs })
          inFlight.delete(s.index)
          report.sessions[phase.name]++
          inputs += r.outcomes.length
          for (const o of r.outcomes) record(o)
          report.framesPerEndpoint[s.endpoint] = (report.framesPerEndpoint[s.endpoint] ?? 0) + r.framesSent
          for (const v of r.violations) if (report.violations.length < 50) report.violations.push(`[${phase.name} #${s.index}] ${v}`)
        }
      }
      log(`phase ${phase.name}: ${Math.round(phase.ms / 1000)} s`)
      report.phaseStarts.push({ name: phase.name, ms: Date.now() - t0 })
      await Promise.all(Array.from({ length: concurrency }, worker))
    }
    if (restarting) await restarting

    // Verdicts.
    report.bystander = await bystander.stop()
    await scrape()
    report.serverCloses = serverCloses(metricsText)
    report.rss.endMiB = rssMiB(server.child.pid!)
    clearInterval(sampleRss)
    for (let k = 1; k <= 10; k++) if (rssSamples.length) report.rss.timeline.push(rssSamples[Math.min(rssSamples.length - 1, Math.floor((k / 10) * rssSamples.length) - 1)] ?? rssSamples[0])
    clearInterval(scrapeTimer)
    // The probe runs last, so its effect stays out of the RSS and bystander figures above.
    if (!opts.noProbe && !opts.only) {
      log('probe: slow reader')
      report.slowReader = await slowReaderProbe(server, `probe${seed.toString(36)}`).catch((err: Error) => ((report.slowReaderError = err.message), null))
    }
    report.healthz = await fetch(`${server.url}/healthz`, { signal: AbortSignal.timeout(10_000) }).then((r) => r.status, () => 0)
    const expected = (() => {
      const d = new Y.Doc()
      Y.applyUpdate(d, original)
      return fingerprint(d)
    })()
    report.victim = { ...filter.stats, unchangedLive: false, unchangedStored: false }
    delete (report.victim as { pending?: number }).pending
    report.victim.unchangedLive = (await victimFingerprint(server.wsUrl, victimId).catch(() => '')) === expected
    for (const code of Object.keys(report.closeCodes).map(Number)) if (!documentedCloseCodes.has(code)) report.undocumentedCloseCodes.push(code)
    for (const line of server.output().split('\n')) {
      if (/"level":(50|60)/.test(line) && report.serverErrors.length < 20) report.serverErrors.push(line.slice(0, 400))
    }
    stopping = true
    report.exitCode = await server.stop()
    // Stored content: a fresh server on the same storage.
    const again = await startServer({ dataDir, args: fuzzServerArgs })
    report.victim.unchangedStored = (await victimFingerprint(again.wsUrl, victimId).catch(() => '')) === expected
    await again.stop()
    report.durationMs = Date.now() - t0
    // Keep the data (and crash files) only when something crashed.
    if (report.crashes.length === 0) rmSync(dataDir, { recursive: true, force: true })
    else log(`server data and crash files kept in ${dataDir}`)
    return report
  }
}
