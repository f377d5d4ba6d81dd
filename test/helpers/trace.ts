/**
 * Editing traces from `shared/traces` beside the checkout (josephg/editing-traces, CC BY 4.0):
 * load, gunzip, and replay into a `Y.Doc` whose `Y.Text` named `'text'` ends
 * up holding the document — the same shape murmur's editor uses.
 *
 *   const t = loadTrace()                      // automerge-paper (sequential)
 *   const r = replayTrace(t, { edits: 10_000 }) // first 10k patches
 *   r.text.length, r.update                    // Y.encodeStateAsUpdate(r.doc)
 *
 * Only the sequential format (`{ startContent, endContent, txns: [{ patches }] }`)
 * is supported; an "edit" is one patch `[pos, deleteCount, insertText]`.
 * Positions count code points; the traces here are ASCII/BMP, so they equal
 * Y.Text's UTF-16 offsets (`replayTrace` throws if a patch contains an
 * astral character rather than replaying it wrongly).
 */
import { existsSync, mkdirSync, readFileSync, renameSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join, resolve } from 'node:path'
import { gunzipSync } from 'node:zlib'
import * as Y from 'yjs'

/** Where the shared traces live: `shared/traces` beside the checkout (override with `MURMUR_TRACES_DIR`). */
export const TRACES_DIR = process.env.MURMUR_TRACES_DIR ?? resolve(import.meta.dirname, '../../../shared/traces')

/** One patch: delete `deleteCount` characters at `pos`, then insert `insertText` there. */
export type Patch = [pos: number, deleteCount: number, insertText: string]

/** A sequential editing trace. */
export interface Trace {
  name: string
  startContent: string
  endContent: string
  /** Every patch of every transaction, in order. */
  patches: Patch[]
}

const cache = new Map<string, Trace>()

/** Loads (and caches) `<TRACES_DIR>/<name>.json.gz`. */
export function loadTrace(name = 'automerge-paper'): Trace {
  const hit = cache.get(name)
  if (hit) return hit
  const raw = JSON.parse(gunzipSync(readFileSync(join(TRACES_DIR, `${name}.json.gz`))).toString('utf8')) as {
    startContent: string
    endContent: string
    txns: { patches: Patch[]; parents?: unknown }[]
  }
  if (raw.txns.some((t) => t.parents !== undefined)) throw new Error(`${name} is a concurrent trace; only sequential traces can be replayed here`)
  const patches: Patch[] = []
  for (const t of raw.txns) for (const p of t.patches) patches.push(p)
  const trace = { name, startContent: raw.startContent, endContent: raw.endContent, patches }
  cache.set(name, trace)
  return trace
}

/** Options of `replayTrace`. */
export interface ReplayOptions {
  /** Stop after this many patches (default: all). */
  edits?: number
  /**
   * Patches per Yjs transaction (default 1: one transaction per keystroke,
   * as an editor produces them). Larger batches replay faster; the resulting
   * document state is the same.
   */
  batch?: number
  /** Client id of the replaying doc, for reproducible encodings (default 1). */
  clientID?: number
  /** Called with every update the doc emits (e.g. to collect per-edit updates). */
  onUpdate?: (update: Uint8Array) => void
}

/** What `replayTrace` returns. */
export interface Replay {
  doc: Y.Doc
  text: Y.Text
  /** Patches applied. */
  edits: number
  /** `Y.encodeStateAsUpdate(doc)`: what a server stores and sends to a fresh client. */
  update: Uint8Array
  /** Expected text after `edits` patches, replayed on a plain string (for verification). */
  expected: string
  /** Milliseconds the Yjs replay took. */
  ms: number
}

/** Applies the first `n` patches to a plain string: the reference the Y.Text must equal. */
export function replayString(trace: Trace, n = trace.patches.length): string {
  // Chunked rope-free replay: plain string slicing is fast enough for 260k edits (~1 s).
  let s = trace.startContent
  for (let i = 0; i < n; i++) {
    const [pos, del, ins] = trace.patches[i]!
    s = s.slice(0, pos) + ins + s.slice(pos + del)
  }
  return s
}

/** Replays the first `edits` patches of `trace` into a fresh `Y.Doc`. */
export function replayTrace(trace: Trace, opts: ReplayOptions = {}): Replay {
  const n = Math.min(opts.edits ?? trace.patches.length, trace.patches.length)
  const batch = Math.max(1, opts.batch ?? 1)
  const doc = new Y.Doc()
  doc.clientID = opts.clientID ?? 1
  const text = doc.getText('text')
  if (opts.onUpdate) doc.on('update', opts.onUpdate)
  const t0 = performance.now()
  if (trace.startContent) text.insert(0, trace.startContent)
  for (let i = 0; i < n; i += batch) {
    const end = Math.min(n, i + batch)
    doc.transact(() => {
      for (let k = i; k < end; k++) {
        const [pos, del, ins] = trace.patches[k]!
        if (del > 0) text.delete(pos, del)
        if (ins) {
          if (/[\uD800-\uDFFF]/.test(ins)) throw new Error(`patch ${k} inserts an astral character; code-point positions would need mapping`)
          text.insert(pos, ins)
        }
      }
    })
  }
  const ms = performance.now() - t0
  const expected = n === trace.patches.length ? trace.endContent : replayString(trace, n)
  return { doc, text, edits: n, update: Y.encodeStateAsUpdate(doc), expected, ms }
}

/**
 * Replays the whole trace and throws unless the Y.Text equals `endContent`
 * (and the plain-string replay agrees). Returns the full replay.
 */
export function verifyFullReplay(trace: Trace = loadTrace()): Replay {
  const r = replayTrace(trace, { batch: 1000 })
  const got = r.text.toString()
  if (got !== trace.endContent) throw new Error(`${trace.name}: Y.Text replay differs from endContent (${got.length} vs ${trace.endContent.length} chars)`)
  if (replayString(trace) !== trace.endContent) throw new Error(`${trace.name}: plain-string replay differs from endContent`)
  return r
}

/** One point of `traceSnapshots`. */
export interface TraceSnapshot {
  /** Patches applied (the requested point, capped at the trace length). */
  edits: number
  /** `Y.encodeStateAsUpdate` of the doc after `edits` patches. */
  update: Uint8Array
  /** Length of the Y.Text at that point: what a client that received `update` must see. */
  textLength: number
}

/**
 * Encoded states of the trace's doc after each of `points` patches, from ONE
 * replay (one transaction per patch, client id 1), verifying that the full
 * replay equals `endContent` when the last point covers the whole trace.
 * Results are cached in `<tmpdir>/murmur-bench-traces/` (replaying 260k
 * edits takes seconds to tens of seconds on a busy machine); delete it to
 * force a replay.
 */
export function traceSnapshots(points: number[], name = 'automerge-paper'): TraceSnapshot[] {
  const dir = join(tmpdir(), 'murmur-bench-traces')
  const file = (n: number) => join(dir, `${name}-${n}.bin`)
  const meta = join(dir, `${name}.json`)
  const known: Record<string, number> = existsSync(meta) ? JSON.parse(readFileSync(meta, 'utf8')) : {}
  const want = [...new Set(points)].sort((a, b) => a - b)
  if (want.every((n) => known[n] !== undefined && existsSync(file(n)))) {
    return points.map((n) => ({ edits: Math.min(n, known.__total ?? n), update: new Uint8Array(readFileSync(file(n))), textLength: known[n]! }))
  }
  const trace = loadTrace(name)
  const total = trace.patches.length
  const doc = new Y.Doc()
  doc.clientID = 1
  const text = doc.getText('text')
  const out = new Map<number, TraceSnapshot>()
  if (trace.startContent) text.insert(0, trace.startContent)
  let i = 0
  for (const n of want) {
    const end = Math.min(n, total)
    for (; i < end; i++) {
      const [pos, del, ins] = trace.patches[i]!
      doc.transact(() => {
        if (del > 0) text.delete(pos, del)
        if (ins) text.insert(pos, ins)
      })
    }
    out.set(n, { edits: end, update: Y.encodeStateAsUpdate(doc), textLength: text.length })
  }
  if (i === total && text.toString() !== trace.endContent) {
    throw new Error(`${name}: Y.Text replay differs from endContent (${text.length} vs ${trace.endContent.length} chars)`)
  }
  mkdirSync(dir, { recursive: true })
  for (const [n, s] of out) {
    writeFileSync(file(n) + '.tmp', s.update)
    renameSync(file(n) + '.tmp', file(n))
    known[n] = s.textLength
  }
  known.__total = total
  writeFileSync(meta, JSON.stringify(known))
  return points.map((n) => out.get(n)!)
}
