/**
 * Fuzz sessions: one socket's worth of frames, generated from `(seed, index)`
 * alone, so session *n* is the same bytes on every re-run with the same seed.
 *
 * Endpoints:
 * - `sync`   — `/sync/<room>` binary frames (valid outer framing around mutated
 *              updates, state vectors, awareness; lying lengths; bad varints; random)
 * - `signal` — `/signal` text frames (mutated and hostile JSON, binary, floods)
 * - `wire`   — a raw TCP WebSocket with broken WebSocket framing (to either endpoint)
 * - `path`   — an HTTP upgrade with an odd path or headers
 */
import * as Y from 'yjs'
import * as encoding from 'lib0/encoding'
import * as decoding from 'lib0/decoding'
import type { Corpus } from './fuzz-corpus.ts'
import { encodeAwareness } from './fuzz-corpus.ts'
import { craftUpdate, hostileJsonText, interestingNumbers, mutate, mutateJson, unterminatedVarUint, writeVarUintOverlong } from './fuzz-mutate.ts'
import { rngFor, type Rng } from './fuzz-rng.ts'

/** One frame of a session. */
export interface FuzzFrame {
  /** Mutation kind (table row). */
  kind: string
  /** Binary payload, or a string for a text frame (a Uint8Array with `text: true` for raw text bytes). */
  data: Uint8Array | string
  /** Send `data` as a text frame even though it is bytes (possibly invalid UTF-8). */
  text?: boolean
  /** Send the frame this many times back to back (flood). */
  repeat?: number
  /**
   * Replies the server sends if it accepts this frame: sync step 2 answers on
   * `/sync`, pongs on `/signal`. The client waits for them (plus its own ping's)
   * before the next frame, so each close is attributed to the frame that caused it.
   */
  replies: number
}

export type EndpointName = 'sync' | 'signal' | 'wire' | 'path'

/** One socket's worth of fuzzing. */
export interface Session {
  index: number
  endpoint: EndpointName
  path: string
  frames: FuzzFrame[]
  /** `wire`: bytes written after the handshake; `path`: the whole HTTP request. */
  raw?: Uint8Array[]
  /** `wire`/`path`: the kind (table row). */
  kind?: string
  /** `wire`: whether a normal reply is expected (a valid but unusual framing). */
  expectReply?: boolean
}

/** Limits of the server under test that change what is generated. */
export interface FuzzLimits {
  maxFrameBytes: number
  maxSignalFrameBytes: number
  maxSignalRate: number
  maxSyncRate: number
}

const MSG_SYNC = 0
const MSG_AWARENESS = 1
const MSG_AUTH = 2
const MSG_QUERY_AWARENESS = 3
const MSG_DURABLE_QUERY = 100

/** `[type, ...varuints, varUint8Array(payload)]`. */
export function outer(type: number, subtype: number | null, payload: Uint8Array): Uint8Array {
  const enc = encoding.createEncoder()
  encoding.writeVarUint(enc, type)
  if (subtype !== null) encoding.writeVarUint(enc, subtype)
  encoding.writeVarUint8Array(enc, payload)
  return encoding.toUint8Array(enc)
}

/** The ping the fuzz client sends after every frame: sync step 1 with an empty state vector. */
export const SYNC_PING = outer(MSG_SYNC, 0, Y.encodeStateVector(new Y.Doc()))
/** The signaling ping. */
export const SIGNAL_PING = '{"type":"ping"}'

/**
 * What the server will do with a /sync frame, decoded exactly as `server/sync.ts`
 * decodes it (same lib0/Yjs): the number of step-2 replies it sends if it keeps
 * the socket open, and the update payload if the frame carries one.
 */
export function classifySync(data: Uint8Array | string): { replies: number; update: Uint8Array | null } {
  if (typeof data === 'string') return { replies: 0, update: null }
  try {
    const dec = decoding.createDecoder(data)
    if (decoding.readVarUint(dec) !== MSG_SYNC) return { replies: 0, update: null }
    const sub = decoding.readVarUint(dec)
    const payload = decoding.readVarUint8Array(dec)
    if (sub === 0) {
      try {
        Y.decodeStateVector(payload)
        return { replies: 1, update: null }
      } catch {
        return { replies: 0, update: null }
      }
    }
    return { replies: 0, update: sub === 1 || sub === 2 ? payload : null }
  } catch {
    return { replies: 0, update: null }
  }
}

/** Pongs the server sends for a /signal text frame (1 for a valid ping). */
export function classifySignal(data: Uint8Array | string, text: boolean): number {
  let s: string
  if (typeof data === 'string') s = data
  else {
    if (!text) return 0
    try {
      s = new TextDecoder('utf-8', { fatal: true }).decode(data)
    } catch {
      return 0
    }
  }
  try {
    const m = JSON.parse(s)
    return typeof m === 'object' && m !== null && !Array.isArray(m) && m.type === 'ping' ? 1 : 0
  } catch {
    return 0
  }
}

// ---------------------------------------------------------------------------
// /sync frames

const syncKinds = {
  'update-mutate': 14,
  'update-craft': 8,
  'sv-mutate': 4,
  'awareness-mutate': 5,
  'awareness-json': 4,
  'frame-mutate': 6,
  'length-lie': 5,
  'varint-bad': 3,
  random: 4,
  control: 3,
  text: 1,
  'missing-deps': 3,
  oversize: 0.2,
  flood: 0.2,
} as const

function donorsOf(corpus: Corpus): Uint8Array[] {
  return [...corpus.updates.slice(0, 20), ...corpus.stateVectors.slice(0, 5), ...corpus.awareness.slice(0, 5)]
}

/** One /sync frame of `kind`. */
export function syncFrame(rng: Rng, corpus: Corpus, kind: keyof typeof syncKinds, limits: FuzzLimits): FuzzFrame {
  const donors = donorsOf(corpus)
  const anUpdate = () => (rng.chance(0.5) ? rng.pick(corpus.updates) : rng.pick(corpus.merged))
  let data: Uint8Array | string
  switch (kind) {
    case 'update-mutate':
      data = outer(MSG_SYNC, rng.chance(0.8) ? 2 : 1, mutate(rng, anUpdate(), donors))
      break
    case 'update-craft': {
      let u = craftUpdate(rng, corpus)
      if (rng.chance(0.2)) u = mutate(rng, u, donors)
      data = outer(MSG_SYNC, rng.chance(0.8) ? 2 : 1, u)
      break
    }
    case 'sv-mutate':
      data = outer(MSG_SYNC, 0, mutate(rng, rng.pick(corpus.stateVectors), donors))
      break
    case 'awareness-mutate':
      data = outer(MSG_AWARENESS, null, mutate(rng, rng.pick(corpus.awareness), donors))
      break
    case 'awareness-json': {
      const n = rng.pick([0, 1, 1, 2, 64, 65])
      const states = Array.from({ length: n }, () => ({
        client: rng.chance(0.3) ? rng.pick(interestingNumbers) : rng.chance(0.5) ? rng.pick(corpus.clients) : rng.int(1, 2 ** 31),
        clock: rng.chance(0.5) ? rng.int(0, 10) : rng.pick(interestingNumbers),
        json: rng.chance(0.4) ? hostileJsonText(rng) : rng.pick(['null', '{}', '{"__proto__":{"polluted":true}}', '{"constructor":{"prototype":{"x":1}}}', 'undefined', '', '{"user":{"name":"\\ud800"}}', JSON.stringify({ user: { name: 'x'.repeat(rng.size(20_000)) } })]),
      }))
      data = outer(MSG_AWARENESS, null, encodeAwareness(states))
      break
    }
    case 'frame-mutate': {
      const base = rng.pick([
        () => outer(MSG_SYNC, 2, anUpdate()),
        () => outer(MSG_SYNC, 0, rng.pick(corpus.stateVectors)),
        () => outer(MSG_AWARENESS, null, rng.pick(corpus.awareness)),
        () => Uint8Array.of(MSG_DURABLE_QUERY, rng.int(0, 127)),
        () => Uint8Array.of(MSG_QUERY_AWARENESS),
      ])()
      data = mutate(rng, base, donors)
      break
    }
    case 'length-lie': {
      const payload = rng.pick([anUpdate(), rng.pick(corpus.stateVectors), rng.pick(corpus.awareness), new Uint8Array(0)])
      const enc = encoding.createEncoder()
      const type = rng.pick([MSG_SYNC, MSG_SYNC, MSG_AWARENESS])
      encoding.writeVarUint(enc, type)
      if (type === MSG_SYNC) encoding.writeVarUint(enc, rng.pick([0, 1, 2]))
      const declared = rng.chance(0.5) ? rng.pick(interestingNumbers) : Math.max(0, payload.length + rng.pick([-3, -1, 1, 2, 1000]))
      writeVarUintOverlong(enc, declared, rng.chance(0.2) ? rng.int(1, 3) : 0)
      encoding.writeUint8Array(enc, rng.chance(0.8) ? payload : payload.subarray(0, rng.int(0, payload.length)))
      data = encoding.toUint8Array(enc)
      break
    }
    case 'varint-bad': {
      const enc = encoding.createEncoder()
      const where = rng.int(0, 2)
      if (where === 0) encoding.writeUint8Array(enc, unterminatedVarUint(rng))
      else {
        writeVarUintOverlong(enc, MSG_SYNC, rng.int(0, 9))
        if (where === 1) encoding.writeUint8Array(enc, unterminatedVarUint(rng))
        else {
          writeVarUintOverlong(enc, rng.int(0, 2), rng.int(0, 9))
          encoding.writeUint8Array(enc, unterminatedVarUint(rng))
        }
      }
      data = encoding.toUint8Array(enc)
      break
    }
    case 'random':
      data = rng.bytes(rng.size(2000))
      break
    case 'control': {
      const enc = encoding.createEncoder()
      const type = rng.pick([MSG_DURABLE_QUERY, MSG_DURABLE_QUERY, MSG_QUERY_AWARENESS, MSG_AUTH, 101, 4, 99, 127, 128, 2 ** 31, 2 ** 53 - 1])
      writeVarUintOverlong(enc, type, rng.chance(0.2) ? 1 : 0)
      if (rng.chance(0.7)) writeVarUintOverlong(enc, rng.pick(interestingNumbers), 0)
      if (rng.chance(0.3)) encoding.writeUint8Array(enc, rng.bytes(rng.size(64)))
      data = encoding.toUint8Array(enc)
      break
    }
    case 'text':
      data = rng.pick(['{"type":"subscribe","topics":["x"]}', '', '\u0000', 'hello'])
      break
    case 'missing-deps': {
      // Real updates, out of order: later ones depend on ones never sent.
      const i = rng.int(1, corpus.updates.length - 1)
      data = outer(MSG_SYNC, 2, corpus.updates[i])
      break
    }
    case 'oversize': {
      const payload = new Uint8Array(limits.maxFrameBytes + rng.int(1, 1024))
      data = outer(MSG_SYNC, 2, payload)
      break
    }
    case 'flood': {
      // Query-awareness frames (cheap, answered only when states exist), far above the rate limit.
      const repeat = limits.maxSyncRate * 4 + rng.int(10, 50)
      return { kind, data: Uint8Array.of(MSG_QUERY_AWARENESS), repeat, replies: 0 }
    }
  }
  return { kind, data, replies: classifySync(data).replies }
}

// ---------------------------------------------------------------------------
// /signal frames

const signalKinds = { 'json-mutate': 10, 'json-bytes': 5, 'json-hostile': 6, binary: 1, 'random-text': 2, valid: 3, oversize: 0.2, flood: 0.2 } as const

/** One /signal frame of `kind`. */
export function signalFrame(rng: Rng, corpus: Corpus, kind: keyof typeof signalKinds, limits: FuzzLimits): FuzzFrame {
  const valid = () => rng.pick(corpus.signaling)
  switch (kind) {
    case 'json-mutate': {
      const data = mutateJson(rng, valid())
      return { kind, data, replies: classifySignal(data, true) }
    }
    case 'json-bytes': {
      const data = mutate(rng, new TextEncoder().encode(valid()), [])
      return { kind, data, text: true, replies: classifySignal(data, true) }
    }
    case 'json-hostile': {
      const data = hostileJsonText(rng)
      return { kind, data, replies: classifySignal(data, true) }
    }
    case 'binary':
      return { kind, data: new TextEncoder().encode(rng.chance(0.5) ? SIGNAL_PING : valid()), replies: 0 }
    case 'random-text': {
      const data = rng.bytes(rng.size(500))
      return { kind, data, text: true, replies: classifySignal(data, true) }
    }
    case 'valid': {
      const data = valid()
      return { kind, data, replies: classifySignal(data, true) }
    }
    case 'oversize':
      return { kind, data: `{"type":"publish","topic":"doc-1","data":"${'x'.repeat(limits.maxSignalFrameBytes)}"}`, replies: 0 }
    case 'flood': {
      const repeat = limits.maxSignalRate * 4 + rng.int(10, 50)
      return { kind, data: SIGNAL_PING, repeat, replies: repeat }
    }
  }
}

// ---------------------------------------------------------------------------
// Raw WebSocket framing

/** Builds one WebSocket frame as a client would (masked unless told otherwise), with optional lies. */
export function wsFrame(o: { opcode: number; payload: Uint8Array; fin?: boolean; rsv?: number; mask?: boolean; declaredLength?: number | bigint }): Uint8Array {
  const fin = o.fin ?? true
  const mask = o.mask ?? true
  const len = o.declaredLength ?? o.payload.length
  const head: number[] = [(fin ? 0x80 : 0) | ((o.rsv ?? 0) << 4) | (o.opcode & 0x0f)]
  const m = mask ? 0x80 : 0
  if (typeof len === 'bigint' || len > 65535) {
    head.push(m | 127)
    const big = BigInt(len)
    for (let i = 7; i >= 0; i--) head.push(Number((big >> BigInt(i * 8)) & 0xffn))
  } else if (len > 125) head.push(m | 126, len >> 8, len & 0xff)
  else head.push(m | len)
  // A zero mask key leaves the payload readable and needs no XOR.
  if (mask) head.push(0, 0, 0, 0)
  const out = new Uint8Array(head.length + o.payload.length)
  out.set(head)
  out.set(o.payload, head.length)
  return out
}

const wireKinds = {
  unmasked: 2,
  rsv: 2,
  'reserved-opcode': 2,
  'control-long': 1,
  'control-fragmented': 1,
  'orphan-continuation': 1,
  'length-64bit': 1,
  'length-huge': 1,
  'length-lie': 1,
  'close-bad': 2,
  'text-bad-utf8': 2,
  'wire-random': 2,
  fragmented: 3,
  'ping-inside-fragments': 2,
} as const

function wireSession(rng: Rng, index: number, path: string, isSync: boolean, victim: boolean): Session {
  const kinds = victim ? (({ 'wire-random': _, ...rest }) => rest)(wireKinds) : wireKinds
  const kind = rng.weighted(kinds as Record<keyof typeof wireKinds, number>)
  const opcode = isSync ? 2 : 1
  const ping = isSync ? SYNC_PING : new TextEncoder().encode(SIGNAL_PING)
  const raw: Uint8Array[] = []
  let expectReply = false
  switch (kind) {
    case 'unmasked':
      raw.push(wsFrame({ opcode, payload: ping, mask: false }))
      break
    case 'rsv':
      raw.push(wsFrame({ opcode, payload: ping, rsv: rng.int(1, 7) }))
      break
    case 'reserved-opcode':
      raw.push(wsFrame({ opcode: rng.pick([3, 4, 5, 6, 7, 11, 12, 13, 14, 15]), payload: ping }))
      break
    case 'control-long':
      raw.push(wsFrame({ opcode: rng.pick([8, 9, 10]), payload: new Uint8Array(rng.int(126, 300)) }))
      break
    case 'control-fragmented':
      raw.push(wsFrame({ opcode: 9, payload: new Uint8Array(4), fin: false }))
      break
    case 'orphan-continuation':
      raw.push(wsFrame({ opcode: 0, payload: ping }))
      break
    case 'length-64bit':
      raw.push(wsFrame({ opcode, payload: new Uint8Array(8), declaredLength: rng.pick([1n << 63n, (1n << 64n) - 1n, 1n << 53n]) }))
      break
    case 'length-huge':
      raw.push(wsFrame({ opcode, payload: new Uint8Array(16), declaredLength: rng.pick([2 ** 32, 2 ** 40, 100 * 2 ** 20]) }))
      break
    case 'length-lie':
      // Declares more than it sends: the server must simply wait (and not buffer without bound).
      raw.push(wsFrame({ opcode, payload: ping, declaredLength: ping.length + rng.int(1, 5000) }))
      break
    case 'close-bad': {
      const payload = rng.pick([Uint8Array.of(3), Uint8Array.of(0x03, 0xe7), Uint8Array.of(0x03, 0xee), Uint8Array.of(0x13, 0x88), Uint8Array.of(0x03, 0xe8, 0xff, 0xfe), Uint8Array.of(0xff, 0xff)])
      raw.push(wsFrame({ opcode: 8, payload }))
      break
    }
    case 'text-bad-utf8':
      raw.push(wsFrame({ opcode: 1, payload: rng.pick([Uint8Array.of(0xff), Uint8Array.of(0xc3, 0x28), Uint8Array.of(0xed, 0xa0, 0x80), Uint8Array.of(0xf4, 0x90, 0x80, 0x80)]) }))
      break
    case 'wire-random':
      raw.push(rng.bytes(rng.size(300) + 1))
      break
    case 'fragmented': {
      // A valid message split into several frames: must be answered normally.
      const cuts = [...new Set(Array.from({ length: rng.int(1, 3) }, () => rng.int(1, ping.length - 1)))].sort((a, b) => a - b)
      let prev = 0
      const parts = [...cuts, ping.length].map((c) => {
        const p = ping.subarray(prev, c)
        prev = c
        return p
      })
      parts.forEach((p, i) => raw.push(wsFrame({ opcode: i === 0 ? opcode : 0, payload: p, fin: i === parts.length - 1 })))
      expectReply = true
      break
    }
    case 'ping-inside-fragments': {
      const cut = rng.int(1, ping.length - 1)
      raw.push(wsFrame({ opcode, payload: ping.subarray(0, cut), fin: false }))
      raw.push(wsFrame({ opcode: 9, payload: rng.bytes(rng.int(0, 125)) }))
      raw.push(wsFrame({ opcode: 0, payload: ping.subarray(cut), fin: true }))
      expectReply = true
      break
    }
  }
  if (rng.chance(0.3) && !victim) {
    // Split the bytes at a random point into two TCP writes.
    const all = raw.splice(0)
    const joined = new Uint8Array(all.reduce((n, p) => n + p.length, 0))
    let off = 0
    for (const p of all) joined.set(p, (off += p.length) - p.length)
    const cut = rng.int(0, joined.length)
    raw.push(joined.subarray(0, cut), joined.subarray(cut))
  }
  return { index, endpoint: 'wire', path, frames: [], raw, kind: `wire:${kind}`, expectReply }
}

// ---------------------------------------------------------------------------
// HTTP upgrade paths and headers

function upgradeRequest(path: string, headers: Record<string, string> = {}): string {
  const base: Record<string, string> = { Host: '127.0.0.1', Upgrade: 'websocket', Connection: 'Upgrade', 'Sec-WebSocket-Key': 'dGhlIHNhbXBsZSBub25jZQ==', 'Sec-WebSocket-Version': '13', ...headers }
  return `GET ${path} HTTP/1.1\r\n${Object.entries(base).filter(([, v]) => v !== '').map(([k, v]) => `${k}: ${v}\r\n`).join('')}\r\n`
}

function pathSession(rng: Rng, index: number): Session {
  const paths = ['/sync/', '/sync/' + 'a'.repeat(65), '/sync/' + 'a'.repeat(64), '/sync/a%2Fb', '/sync/..', '/sync/a/b', '/sync/%2e%2e', '/sync/a b', '/signal/', '/signal?x=1&x=2', '/Signal', '/SYNC/a', '/sync//x', '/sync/%00', '/sync/' + '%41'.repeat(20), '/sync/ok?token=', '/sync/ok?' + 'q'.repeat(6000), '/metrics?/sync/x', '/sync/\u00e9', '/sync/%F0%9F%99%82', '/sync/a?b#c', '*', '/../../etc/passwd']
  // Paths that currently make the server throw (see .scratch/fuzz-findings.md F1); kept so a fix is verified.
  const throwing = ['/sync/%ZZ', '/sync/%E0%A4%A', '//']
  const kind = rng.weighted({ path: 6, 'path-throws': 1, headers: 3, plain: 1 })
  let req: string
  if (kind === 'path') req = upgradeRequest(rng.pick(paths))
  else if (kind === 'path-throws') req = upgradeRequest(rng.pick(throwing))
  else if (kind === 'plain') req = `GET ${rng.pick([...paths, ...throwing])} HTTP/1.1\r\nHost: x\r\n\r\n`
  else {
    const target = rng.pick(['/signal', '/sync/hdr' + (index % 7)])
    req = upgradeRequest(
      target,
      rng.pick<Record<string, string>>([
        { 'Sec-WebSocket-Key': '' },
        { 'Sec-WebSocket-Key': 'short' },
        { 'Sec-WebSocket-Version': '8' },
        { 'Sec-WebSocket-Version': '' },
        { Upgrade: 'h2c' },
        { Connection: 'keep-alive' },
        { 'Sec-WebSocket-Extensions': 'permessage-deflate; client_max_window_bits' },
        { 'Sec-WebSocket-Protocol': 'a, b, , ,' },
        { 'X-Forwarded-For': '1.2.3.4, ' + 'x'.repeat(100) },
        { 'X-Big': 'x'.repeat(rng.pick([8000, 20_000])) },
        { Host: '' },
      ]),
    )
  }
  return { index, endpoint: 'path', path: '', frames: [], raw: [new TextEncoder().encode(req)], kind: `http:${kind}` }
}

// ---------------------------------------------------------------------------
// Sessions

/** Which rooms a run uses. The victim is never a target of the rooms phase. */
export function fuzzRoom(seed: number, index: number): string {
  return `fz${seed.toString(36)}-${Math.floor(index / 400)}-${index % 5}`
}

/**
 * Session `index` of phase `phase` for `seed`. In the `victim` phase every
 * session targets `/sync/<victimId>` (no valid prefix; the caller filters
 * anything that could change the document, see `fuzz-victim.ts`).
 */
export function makeSession(seed: number, phase: 'rooms' | 'victim', index: number, corpus: Corpus, limits: FuzzLimits, victimId: string): Session {
  const rng = rngFor(seed, phase === 'rooms' ? 1 : 2, index)
  const endpoint: EndpointName = phase === 'victim' ? rng.weighted({ sync: 90, wire: 10 }) : rng.weighted({ sync: 55, signal: 30, wire: 10, path: 5 })
  const room = phase === 'victim' ? victimId : rng.chance(0.05) ? 'r' + rng.u32().toString(36) : fuzzRoom(seed, index)
  if (endpoint === 'path') return pathSession(rng, index)
  if (endpoint === 'wire') {
    const isSync = phase === 'victim' || rng.chance(0.6)
    return wireSession(rng, index, isSync ? `/sync/${room}` : '/signal', isSync, phase === 'victim')
  }
  const n = rng.weighted({ 1: 5, 2: 3, 3: 2, 6: 1 }) as unknown as number
  const frames: FuzzFrame[] = []
  if (endpoint === 'sync') {
    if (phase === 'rooms' && rng.chance(0.6)) {
      const k = rng.int(0, corpus.merged.length - 1)
      const data = outer(MSG_SYNC, 2, corpus.merged[k])
      frames.push({ kind: 'valid', data, replies: 0 })
    }
    for (let i = 0; i < n; i++) frames.push(syncFrame(rng, corpus, rng.weighted(syncKinds), limits))
    return { index, endpoint, path: `/sync/${room}`, frames }
  }
  if (rng.chance(0.5)) frames.push({ kind: 'valid', data: JSON.stringify({ type: 'subscribe', topics: ['doc-' + (index % 4), '__proto__'] }), replies: 0 })
  for (let i = 0; i < n; i++) frames.push(signalFrame(rng, corpus, rng.weighted(signalKinds), limits))
  return { index, endpoint, path: '/signal', frames }
}
