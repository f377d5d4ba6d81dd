/**
 * Seeded randomized convergence harness: 3–8 peers, each a real process with
 * stock y-webrtc (over `@roamhq/wrtc`) and stock y-websocket, plus the real
 * murmur server. A seeded plan (`plan.ts`) edits concurrently while cutting
 * WebRTC links, partitioning peers, disconnecting them from the server,
 * `kill -9`-ing the server (restarted on the same port and data directory)
 * and `kill -9`-ing peers (restarted from their local update log, as a
 * crashed tab reloads from IndexedDB).
 *
 * At the end everything is healed and the run must be quiescent within a
 * bound: every replica and the server hold identical text and state vectors,
 * no replica has pending structs or deletes, every marker inserted appears
 * exactly once, no backup connection was closed for good, and after a
 * graceful restart the server's stored copy is the same document.
 *
 * `runSeed` never throws for a convergence failure: it returns a result whose
 * `error` starts with `seed=<n>` and describes every replica.
 */
import { fork, type ChildProcess } from 'node:child_process'
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { createServer, type AddressInfo } from 'node:net'
import { join, resolve } from 'node:path'
import WebSocket from 'ws'
import * as Y from 'yjs'
import { WebsocketProvider } from 'y-websocket'
import { startServer, type ServerProcess } from '../helpers/server.ts'
import { Instances, signalInstanceOf, syncInstanceOf, victimOf } from './instances.ts'
import { countOps, makePlan, type Op, type Plan, type PlanOptions } from './plan.ts'
import type { PeerCommand, PeerConfig, PeerReply, PeerState } from './protocol.ts'

export interface RunOptions extends PlanOptions {
  seed: number
  /** Bound on reaching agreement after healing (default 30 s). */
  quiesceMs?: number
  /** Progress lines (default: none). */
  log?: (line: string) => void
  /** Extra server flags (after the ones the seed chose). */
  serverArgs?: string[]
  /**
   * Run this many instances on a fresh PostgreSQL database and Redis prefix
   * instead of one server on SQLite (`instances.ts`): peers spread over them,
   * each server kill hits one instance. Default 1 (SQLite).
   */
  instances?: number
}

export interface RunResult {
  seed: number
  peers: number
  steps: number
  /** Edit transactions applied. */
  edits: number
  /** Operations of each kind in the plan (besides single edits). */
  faults: { burst: number; rtc: number; srv: number; block: number; partition: number; heal: number; kill: number; crash: number }
  /** Peers that died on their own (native WebRTC crashes), restarted from their log. */
  peerCrashes: string[]
  /** Time from first op to agreement after healing (ms). */
  quiesceMs: number
  /** Time from starting to heal everything (links, WebRTC, backup) to agreement of every replica and the server (ms, polled every 100 ms; about the bound when they never agreed). */
  agreeMs: number
  /** Whole run (ms). */
  ms: number
  /** Final text length. */
  length: number
  /** Backup close codes seen by peers, summed ('local' = the peer closed it). */
  closeCodes: Record<string, number>
  /** Exceptions client libraries threw in WebSocket handlers (caught as a browser would), and samples. */
  clientErrors: number
  clientErrorSamples: string[]
  /** Server flags the seed chose (compaction threshold, idle unload). */
  serverArgs: string[]
  /** Things worth a look that are not convergence failures. */
  notes: string[]
  /** Whether every peer had a direct (WebRTC) connection to every other before the first edit. */
  meshFormed: boolean
  /** Document updates the replicas received over WebRTC (summed over the final processes of each peer). */
  rtcUpdates: number
  /** Update messages that arrived over WebRTC, counted whether or not the server's relay was first. */
  rtcUpdateMessages: number
  /** The /sync link of each peer (`linkOf`), and peer changes the hybrid links uploaded because the server lacked them. */
  links: string[]
  linkUploads: number
  /** Instances (1: one server on SQLite), and which ones were killed, in order. */
  instances: number
  killedInstances: number[]
  /** Live updates that brought the server nothing new, by the sender's link mode, summed over server generations. */
  redundantUploads: Record<string, number>
  /** Set when the run failed; starts with `seed=<n>`. */
  error?: string
}

const PEER_SCRIPT = resolve(import.meta.dirname, 'peer.ts')
const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms))
/** Signals of native crashes (libwebrtc inside @roamhq/wrtc), which a peer survives by restarting. */
const NATIVE_CRASH = new Set(['SIGSEGV', 'SIGABRT', 'SIGBUS', 'SIGILL', 'SIGFPE'])

/** Every child process a run started and has not seen exit: killed if this process exits first. */
const live = new Set<ChildProcess>()
process.on('exit', () => {
  for (const child of live) child.kill('SIGKILL')
})
function track(child: ChildProcess): void {
  live.add(child)
  child.once('exit', () => live.delete(child))
}

/** A convergence failure (as opposed to a harness/infrastructure failure). */
class Divergence extends Error {}

type Command = PeerCommand extends infer C ? (C extends { id: number } ? Omit<C, 'id'> : never) : never

/** A peer child process driven over IPC. */
class PeerProcess {
  peerId = ''
  private nextId = 1
  private waiting = new Map<number, { resolve: (r: PeerReply) => void; reject: (e: Error) => void }>()
  private out = ''
  readonly ready: Promise<void>
  /** Set once the process is gone: exit code or signal name. */
  exit: { code: number | null; signal: string | null } | null = null
  /** We killed it on purpose. */
  killed = false
  /** Resolves when the process has exited. */
  readonly gone: Promise<void>

  constructor(
    readonly index: number,
    readonly child: ChildProcess,
  ) {
    this.gone = new Promise((r) => child.once('exit', () => r()))
    // A dying child reports a closed IPC channel as an 'error' event; its exit is handled below.
    child.on('error', (err) => (this.out = (this.out + `\n[harness] child process error: ${err.message}\n`).slice(-8000)))
    child.stdout?.on('data', (d) => (this.out = (this.out + d).slice(-8000)))
    child.stderr?.on('data', (d) => (this.out = (this.out + d).slice(-8000)))
    this.ready = new Promise((res, rej) => {
      child.on('message', (m: PeerReply) => {
        if (m.id === 0 && m.ready) {
          this.peerId = m.peerId!
          return res()
        }
        const w = this.waiting.get(m.id)
        if (!w) return
        this.waiting.delete(m.id)
        if (m.ok) w.resolve(m)
        else w.reject(new Error(`peer ${this.index}: ${m.error}`))
      })
      child.once('exit', (code, signal) => {
        this.exit = { code, signal }
        const err = new Error(`peer ${this.index} ${this.describeExit()}:\n${this.output()}`)
        rej(err)
        for (const w of this.waiting.values()) w.reject(err)
        this.waiting.clear()
      })
    })
    this.ready.catch(() => {})
  }

  static start(index: number, config: PeerConfig): PeerProcess {
    const child = fork(PEER_SCRIPT, [], {
      execArgv: ['--import', 'tsx'],
      env: { ...process.env, MURMUR_PEER: JSON.stringify(config) },
      stdio: ['ignore', 'pipe', 'pipe', 'ipc'],
    })
    track(child)
    return new PeerProcess(index, child)
  }

  describeExit(): string {
    return this.exit ? `exited with ${this.exit.signal ?? this.exit.code}` : 'running'
  }

  output(): string {
    return this.out
  }

  send(cmd: Command, timeoutMs = 20_000): Promise<PeerReply> {
    if (this.exit) return Promise.reject(new Error(`peer ${this.index} ${this.describeExit()}`))
    const id = this.nextId++
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        this.waiting.delete(id)
        reject(new Error(`peer ${this.index} did not answer ${cmd.type} within ${timeoutMs} ms`))
      }, timeoutMs)
      this.waiting.set(id, {
        resolve: (r) => (clearTimeout(timer), resolve(r)),
        reject: (e) => (clearTimeout(timer), reject(e)),
      })
      this.child.send({ ...cmd, id }, (err) => {
        if (!err) return
        this.waiting.delete(id)
        clearTimeout(timer)
        reject(new Error(`peer ${this.index}: IPC send failed: ${err.message}`))
      })
    })
  }

  /** SIGKILL, resolved once the process is gone. */
  async kill(): Promise<void> {
    this.killed = true
    if (this.exit) return
    this.child.kill('SIGKILL')
    await this.gone
  }
}

/** Canonical form of a state vector (encoding order differs between replicas). */
function canonicalSv(sv: string | Uint8Array): string {
  const bytes = typeof sv === 'string' ? new Uint8Array(Buffer.from(sv, 'base64')) : sv
  return [...Y.decodeStateVector(bytes).entries()]
    .sort((a, b) => a[0] - b[0])
    .map(([c, n]) => `${c}:${n}`)
    .join(',')
}

/** A distinct, non-zero 32-bit Yjs client id for generation `gen` of peer `peer` of `seed`. */
/**
 * The /sync link of peer `i` for `seed`: a mix of murmur backup-only links (most
 * peers), relaying links and stock y-websocket clients, outside the plan's random
 * stream so the same seed keeps its operations.
 */
export function linkOf(seed: number, peer: number): 'stock' | 'backup' | 'relay' | 'nortc' {
  return (['backup', 'backup', 'relay', 'stock', 'backup', 'nortc'] as const)[(seed + peer) % 6]
}

/** Counts the server's redundant live uploads by link mode (`murmur_sync_redundant_uploads_total`), added to `into`; a server that does not answer adds nothing. */
async function addRedundantUploads(port: number, into: Record<string, number>): Promise<void> {
  try {
    const text = await (await fetch(`http://127.0.0.1:${port}/metrics`, { signal: AbortSignal.timeout(2000) })).text()
    for (const m of text.matchAll(/^murmur_sync_redundant_uploads_total\{mode="(\w+)"\} (\d+)/gm)) into[m[1]] = (into[m[1]] ?? 0) + Number(m[2])
  } catch {
    // counted as nothing: the check below is an upper bound on backup links' redundant uploads
  }
}

function clientId(seed: number, peer: number, gen: number): number {
  let x = (Math.imul(seed ^ 0x9e3779b9, 0x85ebca6b) ^ Math.imul(peer + 1, 0xc2b2ae35) ^ Math.imul(gen + 1, 0x27d4eb2f)) >>> 0
  x = Math.imul(x ^ (x >>> 16), 0x45d9f3b) >>> 0
  x = Math.imul(x ^ (x >>> 16), 0x45d9f3b) >>> 0
  x = (x ^ (x >>> 16)) >>> 0
  // Keep peer in the low bits so ids of different peers can never collide.
  return ((x & ~0xff) | (peer << 4) | (gen & 0xf)) >>> 0 || 1
}

/** What the server holds for `room`, as a fresh stock y-websocket client sees it. */
async function serverCopy(port: number, room: string, timeoutMs = 5000): Promise<{ text: string; sv: string; pending: boolean }> {
  const doc = new Y.Doc()
  const provider = new WebsocketProvider(`ws://127.0.0.1:${port}/sync`, room, doc, {
    WebSocketPolyfill: WebSocket as unknown as typeof globalThis.WebSocket,
    disableBc: true,
    maxBackoffTime: 200,
  })
  try {
    await new Promise<void>((res, rej) => {
      if (provider.synced) return res()
      const t = setTimeout(() => rej(new Error(`server copy not synced within ${timeoutMs} ms`)), timeoutMs)
      provider.once('sync', () => (clearTimeout(t), res()))
    })
    return {
      text: doc.getText('text').toString(),
      sv: canonicalSv(Y.encodeStateVector(doc)),
      pending: doc.store.pendingStructs !== null || doc.store.pendingDs !== null,
    }
  } finally {
    provider.destroy()
    doc.destroy()
  }
}

/** A TCP port that was free a moment ago on 127.0.0.1. */
function freePort(): Promise<number> {
  return new Promise((res, rej) => {
    const srv = createServer()
    srv.once('error', rej)
    srv.listen(0, '127.0.0.1', () => {
      const { port } = srv.address() as AddressInfo
      srv.close(() => res(port))
    })
  })
}

/** Where two strings first differ, with a little context. */
function firstDifference(a: string, b: string): string {
  let i = 0
  while (i < a.length && i < b.length && a[i] === b[i]) i++
  const ctx = (s: string) => JSON.stringify(s.slice(Math.max(0, i - 20), i + 40))
  return `at ${i}: ${ctx(a)} vs ${ctx(b)}`
}

/** The command that replays `opts` (same seed, same plan options). */
export function reproduce(opts: RunOptions): string {
  const has = (v: number | undefined) => v !== undefined && Number.isFinite(v)
  const parts: [number | undefined, string, string][] = [
    [opts.peers, '--peers', 'PEERS'],
    [opts.steps, '--steps', 'STEPS'],
    [opts.minKills, '--min-kills', 'MIN_KILLS'],
    [opts.maxKills, '--max-kills', 'MAX_KILLS'],
    [opts.maxCrashes, '--max-crashes', 'MAX_CRASHES'],
    [opts.instances, '--instances', 'INSTANCES'],
  ]
  const given = parts.filter(([v]) => has(v))
  const flags = [`--seed ${opts.seed} --runs 1`, ...given.map(([v, flag]) => `${flag} ${v}`)].join(' ')
  const env = [`MURMUR_CONVERGENCE_SEED=${opts.seed}`, ...given.map(([v, , name]) => `${name}=${v}`)].join(' ')
  return `npm run soak -- ${flags}   |   ${env} npx vitest run test/convergence`
}

/** Runs one seed end to end. Resolves with the outcome; `error` is set on failure. */
export async function runSeed(opts: RunOptions): Promise<RunResult> {
  const started = Date.now()
  const plan: Plan = makePlan(opts.seed, opts)
  const { seed, peers: n, ops } = plan
  const counts = countOps(ops)
  const serverArgs = [...plan.serverArgs, ...(opts.serverArgs ?? [])]
  const log = opts.log ?? (() => {})
  const tag = `seed=${seed} peers=${n} steps=${ops.length}`
  const room = `conv-${seed}-${process.pid}-${Date.now().toString(36)}`
  const { edit: _edits, ...faults } = counts
  void _edits
  const result: RunResult = {
    seed,
    peers: n,
    steps: ops.length,
    edits: 0,
    faults,
    peerCrashes: [],
    quiesceMs: 0,
    agreeMs: 0,
    ms: 0,
    length: 0,
    closeCodes: {},
    clientErrors: 0,
    clientErrorSamples: [],
    serverArgs,
    notes: [],
    meshFormed: false,
    rtcUpdates: 0,
    rtcUpdateMessages: 0,
    links: Array.from({ length: n }, (_, i) => linkOf(seed, i)),
    linkUploads: 0,
    instances: opts.instances ?? 1,
    killedInstances: [],
    redundantUploads: {},
  }
  let server: ServerProcess | null = null
  let serverRestart: Promise<void> | null = null
  const serverLog: string[] = []
  let dataDir = ''
  const peerDir = mkdtempSync(join(tmpdir(), 'murmur-peers-'))
  let keepFiles = false
  let port = 0
  /** With `opts.instances`: the instances, which replace `server` (null then). */
  let cluster: Instances | null = null

  // The link model: what each peer's providers should be doing.
  const rtcOn = Array<boolean>(n).fill(true)
  const srvOn = Array<boolean>(n).fill(true)
  const cut = new Set<string>()
  const key = (a: number, b: number) => (a < b ? `${a}-${b}` : `${b}-${a}`)
  const cutPairs = () => [...cut].map((k) => k.split('-').map(Number) as [number, number])
  const cutWith = (i: number) => cutPairs().flatMap(([a, b]) => (a === i ? [b] : b === i ? [a] : []))

  const peers: PeerProcess[] = []
  const generation = Array<number>(n).fill(0)
  const restarting: (Promise<void> | null)[] = Array(n).fill(null)
  /** Markers confirmed inserted, and markers whose edit was cut short by a peer crash (0 or 1 copies allowed). */
  const markers: string[] = []
  const maybeMarkers = new Set<string>()
  /** Peer processes that died, for the failure report. */
  const deadOutput: string[] = []

  const startOn = async (p: number) => {
    // The port was ours a moment ago; another process may grab it in between, so retry briefly.
    for (let attempt = 0; ; attempt++) {
      try {
        const s = await startServer({ dataDir, port: p, args: serverArgs })
        track(s.child)
        return s
      } catch (err) {
        if (attempt >= 20) throw new Error(`could not restart the server on port ${p}: ${(err as Error).message}`)
        await sleep(250)
      }
    }
  }

  /** Starts generation `generation[i]` of peer `i` in the link state of the model. */
  const spawnPeer = async (i: number) => {
    const p = PeerProcess.start(i, {
      port: cluster ? cluster.ports[syncInstanceOf(seed, i, cluster.ports.length)]! : port,
      signalPort: cluster?.ports[signalInstanceOf(seed, i, cluster.ports.length)],
      room,
      clientID: clientId(seed, i, generation[i]),
      maxBackoffTime: 1000,
      persistPath: join(peerDir, `peer-${i}.log`),
      rtc: rtcOn[i],
      srv: srvOn[i],
      blocked: cutWith(i).map((j) => peers[j]?.peerId).filter(Boolean),
      link: linkOf(seed, i),
    })
    peers[i] = p
    await p.ready
    // The others refuse the newcomer where the model has their link cut.
    // (A peer restarting at the same time is skipped: waiting for it could deadlock, and it reads our id when it starts.)
    await Promise.all(cutWith(i).map((j) => peers[j] && peers[j] !== p && !restarting[j] && call(j, { type: 'block', peerIds: [p.peerId], on: true })))
  }

  /** Replaces peer `i` (dead, or to be killed) with its next generation after `downMs`. */
  const restartPeer = (i: number, downMs: number) => {
    if (restarting[i]) return restarting[i]!
    const old = peers[i]
    restarting[i] = (async () => {
      await old.kill()
      deadOutput.push(`--- peer ${i} generation ${generation[i]} (${old.describeExit()}${old.killed ? ', killed by the harness' : ''}):\n${old.output().slice(-3000)}`)
      generation[i]++
      await sleep(downMs)
      await spawnPeer(i)
    })().finally(() => (restarting[i] = null))
    return restarting[i]!
  }

  /**
   * Sends `cmd` to peer `i`. When the peer died on its own with a native
   * crash, it is restarted from its log and the command retried (an `edit`
   * is not retried: whether it landed is unknown, so it resolves null).
   * Any other death fails the run.
   */
  async function call(i: number, cmd: Command): Promise<PeerReply | null> {
    for (;;) {
      if (restarting[i]) await restarting[i]
      const p = peers[i]
      try {
        return await p.send(cmd)
      } catch (err) {
        // A failed send may come before the exit event of a dying process: give it a moment.
        if (!p.exit && !p.child.connected) await Promise.race([p.gone, sleep(3000)])
        if (!p.exit) throw err
        if (peers[i] === p && !restarting[i]) {
          if (p.killed || !NATIVE_CRASH.has(p.exit.signal ?? '')) throw err
          result.peerCrashes.push(`peer ${i}: ${p.exit.signal}`)
          log(`${tag} peer ${i} crashed (${p.exit.signal}); restarting it from its log`)
          void restartPeer(i, 0)
        }
        if (cmd.type === 'edit' || cmd.type === 'burst') return null
      }
    }
  }

  const state = async (i: number) => (await call(i, { type: 'state' }))!.state!
  const setRtc = (i: number, on: boolean) => ((rtcOn[i] = on), call(i, { type: 'rtc', on }))
  const setSrv = (i: number, on: boolean) => ((srvOn[i] = on), call(i, { type: 'srv', on }))
  const block = async (a: number, b: number, on: boolean) => {
    if (on) cut.add(key(a, b))
    else cut.delete(key(a, b))
    // A restarting peer takes the model's cut links with it; wait for its new signaling id.
    await Promise.all([restarting[a], restarting[b]])
    // Unblocking: `a` must listen again before `b` announces itself.
    await call(a, { type: 'block', peerIds: [peers[b].peerId], on })
    await call(b, { type: 'block', peerIds: [peers[a].peerId], on, announce: !on })
  }
  const healAll = async () => {
    for (const [a, b] of cutPairs()) await block(a, b, false)
    await Promise.all(peers.map((_, i) => Promise.all([setRtc(i, true), setSrv(i, true)])))
  }

  try {
    if ((opts.instances ?? 1) > 1) {
      cluster = await Instances.start(opts.instances!, serverArgs, freePort, (s) => track(s.child))
      log(`${tag} room=${room} ${cluster.describe()} peers=${peerDir} server args: ${serverArgs.join(' ') || '(defaults)'}`)
      await Promise.all(Array.from({ length: n }, (_, i) => spawnPeer(i)))
    } else {
      // Server and peers start side by side (process starts dominate a short run); peers retry until it listens.
      dataDir = mkdtempSync(join(tmpdir(), 'murmur-test-'))
      port = await freePort()
      log(`${tag} room=${room} port=${port} data=${dataDir} peers=${peerDir} server args: ${serverArgs.join(' ') || '(defaults)'}`)
      const serverUp = startOn(port).then((s) => (server = s))
      await Promise.all([serverUp, ...Array.from({ length: n }, (_, i) => spawnPeer(i))])
    }
    log(`${tag} processes up in ${Date.now() - started} ms`)
    // Let the mesh form so the first edits really travel over WebRTC (bounded; not an assertion).
    const meshBy = Date.now() + 10_000
    while (Date.now() < meshBy) {
      const states = await Promise.all(peers.map((_, i) => state(i)))
      // A peer that cannot use WebRTC is reached through the server only.
      const meshSize = result.links.filter((l) => l !== 'nortc').length
      if (states.every((s, i) => s.rtcConnected === (result.links[i] === 'nortc' ? 0 : meshSize - 1) && s.wsSynced)) {
        result.meshFormed = true
        break
      }
      await sleep(100)
    }
    log(`${tag} ${result.meshFormed ? 'mesh formed' : 'no full mesh after 10 s'} ${Date.now() - started} ms after start`)

    const runStarted = Date.now()
    const opTime: Record<string, number> = {}
    for (let i = 0; i < ops.length; i++) {
      const op: Op = ops[i]
      const opStarted = Date.now()
      switch (op.t) {
        case 'edit': {
          const r = await call(op.peer, { type: 'edit', edits: op.edits })
          if (r === null) maybeMarkers.add(op.marker)
          else if (r.applied! > 0) markers.push(op.marker)
          result.edits++
          break
        }
        case 'burst': {
          const r = await call(op.peer, { type: 'burst', edits: op.edits })
          if (r === null) for (const m of op.markers) maybeMarkers.add(m)
          else markers.push(...op.markers)
          result.edits += op.edits.length
          break
        }
        case 'rtc':
          await setRtc(op.peer, op.on)
          break
        case 'srv':
          await setSrv(op.peer, op.on)
          break
        case 'block':
          await block(op.a, op.b, op.on)
          break
        case 'partition': {
          for (const [a, b] of cutPairs()) await block(a, b, false)
          for (let a = 0; a < n; a++) for (let b = a + 1; b < n; b++) if (op.group[a] !== op.group[b]) await block(a, b, true)
          await Promise.all(peers.map((_, k) => setSrv(k, op.srv[k])))
          break
        }
        case 'heal':
          await healAll()
          break
        case 'crash':
          log(`${tag} op ${i}: kill -9 peer ${op.peer}, down ${op.downMs} ms`)
          await restartPeer(op.peer, op.downMs)
          break
        case 'kill': {
          if (cluster) {
            const victim = victimOf(seed, i, cluster.ports.length)
            await addRedundantUploads(cluster.ports[victim]!, result.redundantUploads)
            await cluster.kill(victim, op.downMs)
            result.killedInstances.push(victim)
            log(`${tag} op ${i}: kill -9 instance ${victim}, down ${op.downMs} ms`)
            break
          }
          if (serverRestart) await serverRestart
          const dead = server!
          server = null
          await addRedundantUploads(port, result.redundantUploads)
          const code = await dead.stop('SIGKILL')
          serverLog.push(dead.output())
          if (code !== null) throw new Error(`server had exited on its own (code ${code}) before kill -9:\n${dead.output()}`)
          log(`${tag} op ${i}: kill -9 server, down ${op.downMs} ms`)
          serverRestart = sleep(op.downMs).then(async () => {
            server = await startOn(port)
          })
          break
        }
      }
      if (op.gap) await sleep(op.gap)
      opTime[op.t] = (opTime[op.t] ?? 0) + (Date.now() - opStarted)
    }
    if (serverRestart) await serverRestart
    await cluster?.settled()
    log(`${tag} ops done in ${Date.now() - runStarted} ms; time by kind (incl. gaps): ${JSON.stringify(opTime)}`)

    // Heal everything and wait for agreement (timed from the start of healing: reconnecting is part of converging).
    const healedAt = Date.now()
    await healAll()
    const bound = opts.quiesceMs ?? 30_000
    let states: PeerState[] = []
    let copy: Awaited<ReturnType<typeof serverCopy>> | null = null
    let copyError = ''
    let agreed = false
    while (Date.now() - healedAt < bound) {
      states = await Promise.all(peers.map((_, i) => state(i)))
      const sv0 = canonicalSv(states[0].sv)
      const peersAgree = states.every((s) => s.text === states[0].text && canonicalSv(s.sv) === sv0 && !s.pendingStructs && !s.pendingDs)
      if (peersAgree) {
        try {
          // With several instances, every instance's copy must agree (the first that does not is the one reported).
          const copies = cluster ? await Promise.all(cluster.ports.map((p) => serverCopy(p, room))) : [await serverCopy(port, room)]
          copy = copies.find((c) => c.text !== states[0].text || c.sv !== sv0) ?? copies[0]!
          copyError = ''
          if (copy.text === states[0].text && copy.sv === sv0) {
            agreed = true
            break
          }
        } catch (err) {
          copyError = (err as Error).message
        }
      }
      await sleep(100)
    }
    result.quiesceMs = Date.now() - runStarted
    result.agreeMs = Date.now() - healedAt
    log(`${tag} ${agreed ? 'agreed' : 'no agreement'} ${Date.now() - healedAt} ms after healing`)
    for (const s of states) {
      for (const [c, k] of Object.entries(s.closeCodes)) result.closeCodes[c] = (result.closeCodes[c] ?? 0) + k
      result.clientErrors += s.clientErrors
      result.rtcUpdates += s.rtcUpdates
      result.rtcUpdateMessages += s.rtcUpdateMessages ?? 0
      result.linkUploads += s.linkUploads
      for (const e of s.clientErrorSamples) if (!result.clientErrorSamples.includes(e)) result.clientErrorSamples.push(e)
    }

    const describe = () => {
      const lines = states.map((s, i) => {
        const diff = i > 0 && s.text !== states[0].text ? ` first difference vs peer 0 ${firstDifference(states[0].text, s.text)}` : ''
        return `  peer ${i} (generation ${generation[i]}): length=${s.text.length} sv=${canonicalSv(s.sv)} pendingStructs=${s.pendingStructs} pendingDs=${s.pendingDs} rtcConnected=${s.rtcConnected} ws=${s.wsConnected ? 'connected' : 'down'}${s.wsSynced ? '/synced' : ''} shouldConnect=${s.wsShouldConnect} closes=${JSON.stringify(s.closeCodes)} clientErrors=${s.clientErrors}${diff}`
      })
      lines.push(copy ? `  server: length=${copy.text.length} sv=${copy.sv} pending=${copy.pending}${copy.text !== states[0]?.text ? ` first difference vs peer 0 ${firstDifference(states[0].text, copy.text)}` : ''}` : `  server: no copy (${copyError || 'peers never agreed'})`)
      return lines.join('\n')
    }
    const fail = (what: string): never => {
      throw new Divergence(`${tag}: ${what}\n${describe()}`)
    }

    const terminal = states.flatMap((s, i) => s.terminalCloses.map((c) => `peer ${i}: ${c.code} ${c.reason}`))
    if (terminal.length) fail(`stock y-websocket stopped reconnecting after the server closed it with a 44xx code:\n  ${terminal.join('\n  ')}`)
    if (!agreed) fail(`no agreement within ${bound} ms of healing`)
    if (copy!.pending) fail('the server copy has pending structs')
    // The server carried what the mesh did not: a backup-only link uploads a peer's change only when
    // the server lacked it, so its live uploads that brought the server nothing are at most its
    // reconcile uploads (one that raced the author's). Its own edits bring something, unless a
    // relaying or stock peer got them over WebRTC and uploaded them first (they upload all they
    // see), so the bound is checked only in rooms without those.
    for (const p of cluster ? cluster.ports : [port]) await addRedundantUploads(p, result.redundantUploads)
    const backupUploads = states.reduce((k, s, i) => k + (result.links[i] === 'backup' ? s.linkUploads : 0), 0)
    const reuploaders = result.links.some((l) => l === 'relay' || l === 'stock')
    if (!reuploaders && (result.redundantUploads.backup ?? 0) > backupUploads) fail(`backup-only links sent ${result.redundantUploads.backup} live updates the server already had, more than their ${backupUploads} reconcile uploads`)

    // Every marker exactly once, and nothing else that looks like one.
    const final = states[0].text
    result.length = final.length
    const found = new Map<string, number>()
    for (const m of final.matchAll(/⟨[^⟩]*⟩/g)) found.set(m[0], (found.get(m[0]) ?? 0) + 1)
    const missing = markers.filter((m) => !found.has(m))
    const duplicated = [...found].filter(([, k]) => k > 1).map(([m, k]) => `${m}×${k}`)
    const issued = new Set(markers)
    const foreign = [...found.keys()].filter((m) => !issued.has(m) && !maybeMarkers.has(m))
    if (missing.length || duplicated.length || foreign.length) {
      fail(`markers wrong: ${missing.length} missing ${JSON.stringify(missing.slice(0, 20))}, duplicated ${JSON.stringify(duplicated.slice(0, 20))}, unexpected ${JSON.stringify(foreign.slice(0, 20))}`)
    }

    // Durability of the agreed state: no peer may re-send it, then a graceful restart.
    await Promise.all(peers.map((_, i) => setSrv(i, false)))
    if (cluster) {
      const { codes, ms } = await cluster.restartAll()
      const term = `SIGTERM of ${codes.length} instances took ${ms} ms and they exited with ${codes.join(', ')}`
      for (const [k, p] of cluster.ports.entries()) {
        const stored = await serverCopy(p, room)
        if (stored.text !== final || stored.sv !== canonicalSv(states[0].sv)) {
          copy = stored
          fail(`after a graceful restart (${term}) instance ${k}'s stored copy differs from the agreed state: ${firstDifference(final, stored.text)}`)
        }
      }
      if (codes.some((c) => c !== 0)) fail(`graceful shutdown broke its promise: ${term}`)
      log(`${tag} every instance's stored copy checked after graceful restart (${term})`)
      return result
    }
    const termStarted = Date.now()
    const stopping = server!
    server = null
    const exitCode = await stopping.stop('SIGTERM')
    const termMs = Date.now() - termStarted
    serverLog.push(stopping.output())
    server = await startOn(port)
    const stored = await serverCopy(port, room)
    const lost = stored.text !== final || stored.sv !== canonicalSv(states[0].sv)
    if (lost) copy = stored
    const term = `SIGTERM took ${termMs} ms and exited with ${exitCode}`
    if (lost) fail(`after a graceful restart (${term}) the server's stored copy differs from the agreed state: ${firstDifference(final, stored.text)}`)
    // SIGTERM promises a flush and exit 0 (README, DESIGN.md): anything else fails the run.
    if (exitCode !== 0) fail(`graceful shutdown broke its promise: ${term} (the stored copy was ${lost ? 'incomplete' : 'complete'})`)
    log(`${tag} stored copy checked after graceful restart (${term})`)
  } catch (err) {
    keepFiles = true
    const message = err instanceof Divergence ? err.message : `${tag}: harness error: ${(err as Error).stack ?? err}`
    const tail = (s: string) => s.slice(-3000)
    const peerOutput = peers
      .map((p) => [p.index, p.output().trim()] as const)
      .filter(([, o]) => o)
      .map(([i, o]) => `--- peer ${i} output (tail):\n${tail(o)}`)
    const srvOut = [...serverLog, server?.output() ?? '', cluster?.output() ?? ''].join('').trim()
    result.error = [
      message,
      result.peerCrashes.length ? `  peer crashes (restarted): ${result.peerCrashes.join(', ')}` : '',
      cluster ? `  kept: ${cluster.describe()}, peer logs ${peerDir}` : `  kept: server data ${dataDir}, peer logs ${peerDir}`,
      `  replay: ${reproduce(opts)}`,
      ...peerOutput,
      ...deadOutput.filter((o) => o.split('\n').length > 2),
      srvOut ? `--- server output (tail):\n${tail(srvOut)}` : '',
    ]
      .filter(Boolean)
      .join('\n')
  } finally {
    await Promise.all(restarting.map((r) => r?.catch(() => {})))
    // Nothing of the peers is needed any more: SIGKILL (a clean y-webrtc/wrtc teardown only costs time).
    await Promise.all(peers.map((p) => p.kill().catch(() => {})))
    if (serverRestart) await (serverRestart as Promise<void>).catch(() => {})
    await server?.stop('SIGKILL').catch(() => {})
    await (cluster as Instances | null)?.close(keepFiles)
    if (!keepFiles) {
      if (dataDir) rmSync(dataDir, { recursive: true, force: true })
      rmSync(peerDir, { recursive: true, force: true })
    }
    result.ms = Date.now() - started
  }
  return result
}
