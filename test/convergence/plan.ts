/**
 * The seeded schedule of a convergence run: which peer edits what, which
 * links go down and come back, when the server is killed. A plan depends only
 * on its seed and options, so a failing seed replays the same operations
 * (network timing, and so the exact interleaving, still varies).
 */
import type { SubEdit } from './protocol.ts'

/** mulberry32: a tiny, fast, seeded PRNG returning floats in [0, 1). */
export function prng(seed: number): () => number {
  let s = seed | 0
  return () => {
    s = (s + 0x6d2b79f5) | 0
    let t = Math.imul(s ^ (s >>> 15), 1 | s)
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296
  }
}

/** One step of a plan; `gap` is how long (ms) to wait before the next step. */
export type Op = { gap: number } & (
  /** A transaction on `peer`: an insert carrying `marker`, plus maybe more inserts/deletes. */
  | { t: 'edit'; peer: number; edits: SubEdit[]; marker: string }
  /** Fast typing on `peer`: one transaction (and one sync message) per insert, back to back. */
  | { t: 'burst'; peer: number; edits: SubEdit[]; markers: string[] }
  /** WebRTC provider of `peer` on/off (`provider.connect()/disconnect()`). */
  | { t: 'rtc'; peer: number; on: boolean }
  /** Backup connection of `peer` on/off (`wsProvider.connect()/disconnect()`). */
  | { t: 'srv'; peer: number; on: boolean }
  /** Cut (or restore) the WebRTC link between peers `a` and `b` in both directions. */
  | { t: 'block'; a: number; b: number; on: boolean }
  /** Split the peers in two groups: cross-group WebRTC links cut; `srv[i]` says who keeps the server. */
  | { t: 'partition'; group: number[]; srv: boolean[] }
  /** Everything back: links restored, every provider on. */
  | { t: 'heal' }
  /** `kill -9` the server; restart it on the same port and data after `downMs`. */
  | { t: 'kill'; downMs: number }
  /** `kill -9` a peer (a crashed tab); restart it from its local log after `downMs`. */
  | { t: 'crash'; peer: number; downMs: number }
)

export interface PlanOptions {
  /** Peers, 3–8; default: drawn from the seed. */
  peers?: number
  /** Number of operations; default: drawn from the seed (200–800). */
  steps?: number
  /** At least this many server kills (default 1). */
  minKills?: number
  /** At most this many server kills (default: no limit); each costs a server start. */
  maxKills?: number
  /** At most this many peer crashes (default: no limit); each costs a process start. */
  maxCrashes?: number
}

export interface Plan {
  seed: number
  peers: number
  /**
   * Server flags for this seed: sometimes tiny compaction thresholds and idle
   * unload times, so kills land mid-compaction and rooms reload from storage
   * while peers come and go.
   */
  serverArgs: string[]
  ops: Op[]
}

const FILLER = 'abcdefghijklmnopqrstuvwxyz     '

/** Builds the schedule for `seed`. */
export function makePlan(seed: number, opts: PlanOptions = {}): Plan {
  const rand = prng(seed)
  const int = (lo: number, hi: number) => lo + Math.floor(rand() * (hi - lo + 1))
  const filler = (n: number) => Array.from({ length: n }, () => FILLER[Math.floor(rand() * FILLER.length)]).join('')
  const peers = opts.peers ?? int(3, 8)
  const steps = opts.steps ?? int(200, 800)
  const minKills = opts.minKills ?? 1
  // Model of the link state, so toggles alternate and a partition is well formed.
  const rtcOn = Array<boolean>(peers).fill(true)
  const srvOn = Array<boolean>(peers).fill(true)
  const cut = new Set<string>()
  const pair = (a: number, b: number) => (a < b ? `${a}-${b}` : `${b}-${a}`)
  const gap = () => {
    const r = rand()
    // Mostly back-to-back (concurrent edits), sometimes a pause long enough for sync to happen.
    return r < 0.6 ? int(0, 5) : r < 0.9 ? int(5, 40) : int(100, 600)
  }
  const ops: Op[] = []
  let kills = 0
  let crashes = 0
  for (let i = 0; i < steps; i++) {
    const r = rand()
    if (r < 0.7) {
      const peer = int(0, peers - 1)
      const marker = `⟨${peer}.${i}⟩`
      const big = rand() < 0.02
      const edits: SubEdit[] = [{ kind: 'insert', at: rand(), text: filler(big ? int(100, 1500) : int(0, 8)) + marker + filler(int(0, 8)) }]
      const extra = rand() < 0.3 ? int(1, 3) : 0
      for (let k = 0; k < extra; k++) {
        if (rand() < 0.6) edits.push({ kind: 'delete', at: rand(), len: rand() < 0.05 ? int(20, 200) : int(1, 10) })
        else edits.push({ kind: 'insert', at: rand(), text: filler(int(1, 12)) })
      }
      // Shuffle so deletes come before or after the marker insert.
      for (let k = edits.length - 1; k > 0; k--) {
        const j = int(0, k)
        ;[edits[k], edits[j]] = [edits[j], edits[k]]
      }
      ops.push({ t: 'edit', peer, edits, marker, gap: gap() })
    } else if (r < 0.72) {
      const peer = int(0, peers - 1)
      const markers = Array.from({ length: int(20, 120) }, (_, k) => `⟨${peer}.${i}.${k}⟩`)
      const at = rand()
      // Keystroke-sized inserts, all near one spot of the text.
      const edits: SubEdit[] = markers.map((m) => ({ kind: 'insert', at: Math.min(0.999, at + (rand() - 0.5) * 0.02), text: filler(int(0, 2)) + m }))
      ops.push({ t: 'burst', peer, edits, markers, gap: gap() })
    } else if (r < 0.77) {
      const peer = int(0, peers - 1)
      rtcOn[peer] = !rtcOn[peer]
      ops.push({ t: 'rtc', peer, on: rtcOn[peer], gap: gap() })
    } else if (r < 0.83) {
      const peer = int(0, peers - 1)
      srvOn[peer] = !srvOn[peer]
      ops.push({ t: 'srv', peer, on: srvOn[peer], gap: gap() })
    } else if (r < 0.87) {
      const a = int(0, peers - 1)
      const b = (a + int(1, peers - 1)) % peers
      const on = !cut.has(pair(a, b))
      if (on) cut.add(pair(a, b))
      else cut.delete(pair(a, b))
      ops.push({ t: 'block', a, b, on, gap: gap() })
    } else if (r < 0.9) {
      const group = Array.from({ length: peers }, () => int(0, 1))
      const serverSide = int(0, 2) // 0, 1: only that group keeps the server; 2: both (the server bridges)
      const srv = group.map((g) => serverSide === 2 || g === serverSide)
      cut.clear()
      for (let a = 0; a < peers; a++) for (let b = a + 1; b < peers; b++) if (group[a] !== group[b]) cut.add(pair(a, b))
      for (let p = 0; p < peers; p++) srvOn[p] = srv[p]
      ops.push({ t: 'partition', group, srv, gap: gap() })
    } else if (r < 0.95) {
      cut.clear()
      rtcOn.fill(true)
      srvOn.fill(true)
      ops.push({ t: 'heal', gap: gap() })
    } else if (r < 0.97) {
      const op: Op = { t: 'crash', peer: int(0, peers - 1), downMs: int(0, 1000), gap: gap() }
      if (crashes++ < (opts.maxCrashes ?? Infinity)) ops.push(op)
    } else {
      const op: Op = { t: 'kill', downMs: rand() < 0.3 ? 0 : int(100, 2500), gap: gap() }
      if (kills < (opts.maxKills ?? Infinity)) {
        ops.push(op)
        kills++
      }
    }
  }
  // Guarantee the faults the harness is about, at deterministic places.
  for (let k = kills; k < minKills; k++) {
    const at = Math.floor(((k + 1) * ops.length) / (minKills + 1))
    ops.splice(at, 0, { t: 'kill', downMs: int(100, 1500), gap: int(0, 40) })
  }
  const serverArgs: string[] = []
  const compact = rand()
  if (compact < 0.4) serverArgs.push('--compact-after-updates', String(int(2, 30)))
  if (rand() < 0.4) serverArgs.push('--idle-unload-ms', String(int(0, 300)))
  return { seed, peers, serverArgs, ops }
}

/** Counts of each kind of operation in a plan. */
export function countOps(ops: Op[]): Record<Op['t'], number> {
  const counts = { edit: 0, burst: 0, rtc: 0, srv: 0, block: 0, partition: 0, heal: 0, kill: 0, crash: 0 }
  for (const op of ops) counts[op.t]++
  return counts
}
