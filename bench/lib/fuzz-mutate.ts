/**
 * Mutation operators of the fuzzer: byte-level (bit flips, truncation,
 * splices, lying varints), JSON-level (type confusion, prototype keys, deep
 * nesting) and hand-crafted Yjs v1 updates whose structure lies (impossible
 * clocks, self-references, unknown content types).
 */
import * as encoding from 'lib0/encoding'
import type { Rng } from './fuzz-rng.ts'
import type { Corpus } from './fuzz-corpus.ts'

/** Values that often hit edge cases in varint and length decoders. */
export const interestingNumbers = [0, 1, 2, 63, 64, 127, 128, 255, 256, 16383, 16384, 65535, 65536, 2 ** 31 - 1, 2 ** 31, 2 ** 32 - 1, 2 ** 32, 2 ** 40, 2 ** 53 - 1, 2 ** 53] as const

/** Writes `n` as a varuint, possibly overlong (extra 0x80 continuation bytes that add nothing). */
export function writeVarUintOverlong(enc: encoding.Encoder, n: number, extra: number): void {
  let rest = n
  const bytes: number[] = []
  do {
    bytes.push(rest % 128)
    rest = Math.floor(rest / 128)
  } while (rest > 0)
  for (let i = 0; i < extra; i++) bytes.push(0)
  for (let i = 0; i < bytes.length; i++) encoding.writeUint8(enc, bytes[i] | (i < bytes.length - 1 ? 0x80 : 0))
}

/** A varuint that never terminates (every byte has the continuation bit). */
export function unterminatedVarUint(rng: Rng): Uint8Array {
  return Uint8Array.from({ length: rng.int(1, 12) }, () => 0x80 | rng.int(0, 127))
}

function concat(...parts: Uint8Array[]): Uint8Array {
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0))
  let off = 0
  for (const p of parts) {
    out.set(p, off)
    off += p.length
  }
  return out
}

/** One byte-level mutation of `data` (never mutates its argument). */
export function mutateOnce(rng: Rng, data: Uint8Array, donors: readonly Uint8Array[]): Uint8Array {
  const n = data.length
  const at = () => rng.int(0, Math.max(0, n - 1))
  switch (rng.weighted({ flip: 6, byte: 4, truncate: 4, chop: 1, insert: 3, remove: 3, dup: 2, splice: 2, varint: 3, swap: 1 })) {
    case 'flip': {
      if (n === 0) return rng.bytes(1)
      const out = data.slice()
      for (let k = rng.int(1, 4); k > 0; k--) out[at()] ^= 1 << rng.int(0, 7)
      return out
    }
    case 'byte': {
      if (n === 0) return Uint8Array.of(rng.pick([0, 0x7f, 0x80, 0xff]))
      const out = data.slice()
      out[at()] = rng.pick([0x00, 0x01, 0x7f, 0x80, 0xff, 0xfe, 0x3f, 0x40, rng.int(0, 255)])
      return out
    }
    case 'truncate':
      return data.slice(0, rng.int(0, Math.max(0, n - 1)))
    case 'chop':
      return data.slice(rng.int(1, Math.max(1, n)))
    case 'insert': {
      const i = rng.int(0, n)
      return concat(data.subarray(0, i), rng.bytes(rng.size(64) + 1), data.subarray(i))
    }
    case 'remove': {
      const i = at()
      return concat(data.subarray(0, i), data.subarray(Math.min(n, i + rng.size(32) + 1)))
    }
    case 'dup': {
      const i = at()
      const j = Math.min(n, i + rng.size(64) + 1)
      return concat(data.subarray(0, j), data.subarray(i, j), data.subarray(j))
    }
    case 'splice': {
      const donor = donors.length ? rng.pick(donors) : data
      const i = rng.int(0, n)
      const a = rng.int(0, donor.length)
      return concat(data.subarray(0, i), donor.subarray(a, Math.min(donor.length, a + rng.size(256) + 1)), data.subarray(rng.chance(0.5) ? i : Math.min(n, i + rng.size(64))))
    }
    case 'varint': {
      // Replace one byte by a (possibly huge, possibly overlong) varint.
      const i = at()
      const enc = encoding.createEncoder()
      writeVarUintOverlong(enc, rng.pick(interestingNumbers), rng.chance(0.3) ? rng.int(1, 4) : 0)
      return concat(data.subarray(0, i), encoding.toUint8Array(enc), data.subarray(Math.min(n, i + 1)))
    }
    case 'swap': {
      if (n < 2) return data.slice()
      const out = data.slice()
      const i = at()
      const j = at()
      ;[out[i], out[j]] = [out[j], out[i]]
      return out
    }
  }
  return data
}

/** 1–4 stacked byte-level mutations. */
export function mutate(rng: Rng, data: Uint8Array, donors: readonly Uint8Array[]): Uint8Array {
  let out = data
  for (let k = rng.weighted({ 1: 6, 2: 3, 3: 1, 4: 1 }) as unknown as number; k > 0; k--) out = mutateOnce(rng, out, donors)
  return out
}

// ---------------------------------------------------------------------------
// JSON (signaling, awareness states)

const protoKeys = ['__proto__', 'constructor', 'prototype', 'toString', 'valueOf', 'hasOwnProperty', '__defineGetter__']

/** A JSON text that nests `depth` levels (arrays or objects). */
export function deepJson(rng: Rng, depth: number): string {
  if (rng.chance(0.5)) return '['.repeat(depth) + ']'.repeat(depth)
  const key = JSON.stringify(rng.pick(['a', '__proto__', 'type']))
  return `{${key}:`.repeat(depth) + '1' + '}'.repeat(depth)
}

/** A random JSON value, including awkward ones (huge numbers, lone surrogates, proto keys). */
export function oddValue(rng: Rng, depth = 0): unknown {
  switch (rng.int(0, depth > 2 ? 6 : 9)) {
    case 0:
      return rng.pick([0, -0, 1e308, -1e308, 2 ** 53 + 1, 0.1, -1, 4294967296])
    case 1:
      return rng.pick(['', 'x'.repeat(rng.size(5000)), '\ud800', '\u0000', '\u2028', 'ping', 'publish', 'subscribe', '__proto__'])
    case 2:
      return rng.chance(0.5)
    case 3:
      return null
    case 4:
      return rng.pick(protoKeys)
    case 5:
      return []
    case 6:
      return {}
    case 7:
      return Array.from({ length: rng.size(300) }, () => oddValue(rng, depth + 1))
    default: {
      const o: Record<string, unknown> = {}
      for (let i = rng.int(1, 4); i > 0; i--) Object.defineProperty(o, rng.chance(0.5) ? rng.pick(protoKeys) : rng.pick(['type', 'topic', 'topics', 'data', 'clients', 'x']), { value: oddValue(rng, depth + 1), enumerable: true, writable: true, configurable: true })
      return o
    }
  }
}

/**
 * Mutates a JSON message structurally: parse, then replace or add fields with
 * odd values and prototype keys, then serialize (keeping `__proto__` as an own
 * key, as `JSON.parse` on the server would see it).
 */
export function mutateJson(rng: Rng, text: string): string {
  const msg = JSON.parse(text) as Record<string, unknown>
  const entries = Object.entries(msg)
  switch (rng.weighted({ replace: 4, add: 3, remove: 2, type: 2, topics: 3, proto: 2, clients: 1, dupkey: 1 })) {
    case 'replace': {
      const [k] = rng.pick(entries)
      msg[k] = oddValue(rng)
      break
    }
    case 'add':
      Object.defineProperty(msg, rng.chance(0.5) ? rng.pick(protoKeys) : 'k' + rng.int(0, 9), { value: oddValue(rng), enumerable: true, configurable: true, writable: true })
      break
    case 'remove':
      delete msg[rng.pick(entries)[0]]
      break
    case 'type':
      msg.type = rng.chance(0.7) ? rng.pick(['publish', 'subscribe', 'unsubscribe', 'ping', 'pong', 'PUBLISH', '', 'announce', '__proto__']) : oddValue(rng)
      break
    case 'topics': {
      const many = rng.chance(0.3)
      msg.topics = many
        ? Array.from({ length: rng.int(60, 80) }, (_, i) => 't' + i)
        : Array.from({ length: rng.int(0, 4) }, () => (rng.chance(0.7) ? rng.pick([...protoKeys, 'doc-1', 'x'.repeat(rng.pick([1, 255, 256, 257, 5000]))]) : oddValue(rng)))
      if (rng.chance(0.3)) msg.topic = rng.pick([...protoKeys, 'doc-1', 'x'.repeat(rng.pick([256, 257]))])
      break
    }
    case 'proto':
      return text.replace(/^\{/, `{"__proto__":${JSON.stringify(oddValue(rng))},`)
    case 'clients':
      msg.clients = oddValue(rng)
      break
    case 'dupkey':
      return text.replace(/^\{/, `{"type":${JSON.stringify(rng.pick(['ping', 'publish', 'subscribe', 7]))},`)
  }
  let out = JSON.stringify(msg)
  if (rng.chance(0.1)) out = rng.pick([' ', '\n', '\t\r\n ', '\ufeff']) + out + rng.pick(['', ' ', '\n\n', '\t'])
  return out
}

/** Hand-made hostile JSON texts (for signaling frames and awareness states). */
export function hostileJsonText(rng: Rng): string {
  switch (rng.int(0, 11)) {
    case 0:
      return deepJson(rng, rng.pick([100, 1000, 10_000, 30_000]))
    case 1:
      return `{"type":"publish","topic":"doc-1","data":${deepJson(rng, rng.pick([1000, 20_000]))}}`
    case 2:
      return `{"type":"ping","n":1e${rng.pick([308, 309, 999999])}}`
    case 3:
      return '{"type":"publish","topic":"__proto__","__proto__":{"clients":"polluted","isAdmin":true}}'
    case 4:
      return `{"type":"subscribe","topics":${JSON.stringify(rng.pick([protoKeys, ['\ud800'], [''], ['a'.repeat(256)], ['a'.repeat(257)]]))}}`
    case 5:
      return `{"type":"publish","topic":"doc-1","data":"${'\\u0000'.repeat(rng.size(2000))}"}`
    case 6:
      return `{"type":"publish","topic":"doc-1"${' '.repeat(rng.size(1000))}}${' \n\t\r'.repeat(rng.size(100))}`
    case 7:
      return `{"type":"publish","topic":"doc-1","clients":${rng.pick(['"x"', '-1', '1e999', 'null', '{}'])}}`
    case 8:
      return rng.pick(['', ' ', 'null', '[]', '"publish"', '1', 'true', '{}', '{"type":null}', '{"type":1}', '{"type":{}}', '{"type":"publish"}', '{"type":"subscribe"}', '{"type":"unsubscribe","topics":"x"}', '{"type":"publish","topic":7}'])
    case 9:
      return `{"type":"subscribe","topics":[${Array.from({ length: rng.pick([64, 65, 1000]) }, (_, i) => `"t${i}"`).join(',')}]}`
    case 10:
      return '{"type":"publish","topic":"doc-1","a":"\\ud800\\udfff\\udc00","b":"\u2028\u2029"}'
    default:
      return `{"type":"${rng.pick(['ping', 'publish'])}"` + rng.pick([',', ':', '}}', '"', '\\', ',"topic":"doc-1"']) // truncated
  }
}

// ---------------------------------------------------------------------------
// Crafted Yjs v1 updates

/** Content refs of Yjs v1 items. */
const ContentRef = { deleted: 1, json: 2, binary: 3, string: 4, embed: 5, format: 6, type: 7, any: 8, doc: 9 } as const

interface CraftItem {
  origin?: { client: number; clock: number } | null
  rightOrigin?: { client: number; clock: number } | null
  parent?: { name: string } | { client: number; clock: number }
  parentSub?: string
  content: (enc: encoding.Encoder) => void
  ref: number
}

function writeId(enc: encoding.Encoder, id: { client: number; clock: number }): void {
  encoding.writeVarUint(enc, id.client)
  encoding.writeVarUint(enc, id.clock)
}

/**
 * Encodes a v1 update with one client's structs (`items`, or GC/skip structs)
 * and a delete set, without Yjs's consistency checks.
 */
function encodeV1(client: number, clock: number, structs: (CraftItem | { gc: number } | { skip: number })[], ds: { client: number; ranges: [number, number][] }[]): Uint8Array {
  const enc = encoding.createEncoder()
  encoding.writeVarUint(enc, structs.length ? 1 : 0)
  if (structs.length) {
    encoding.writeVarUint(enc, structs.length)
    encoding.writeVarUint(enc, client)
    encoding.writeVarUint(enc, clock)
    for (const s of structs) {
      if ('gc' in s) {
        encoding.writeUint8(enc, 0)
        encoding.writeVarUint(enc, s.gc)
      } else if ('skip' in s) {
        encoding.writeUint8(enc, 10)
        encoding.writeVarUint(enc, s.skip)
      } else {
        const info = (s.ref & 0x1f) | (s.origin ? 0x80 : 0) | (s.rightOrigin ? 0x40 : 0) | (s.parentSub !== undefined ? 0x20 : 0)
        encoding.writeUint8(enc, info)
        if (s.origin) writeId(enc, s.origin)
        if (s.rightOrigin) writeId(enc, s.rightOrigin)
        if (!s.origin && !s.rightOrigin) {
          const parent = s.parent ?? { name: 'text' }
          if ('name' in parent) {
            encoding.writeVarUint(enc, 1)
            encoding.writeVarString(enc, parent.name)
          } else {
            encoding.writeVarUint(enc, 0)
            writeId(enc, parent)
          }
          if (s.parentSub !== undefined) encoding.writeVarString(enc, s.parentSub)
        }
        s.content(enc)
      }
    }
  }
  encoding.writeVarUint(enc, ds.length)
  for (const d of ds) {
    encoding.writeVarUint(enc, d.client)
    encoding.writeVarUint(enc, d.ranges.length)
    for (const [c, l] of d.ranges) {
      encoding.writeVarUint(enc, c)
      encoding.writeVarUint(enc, l)
    }
  }
  return encoding.toUint8Array(enc)
}

/**
 * A structurally well-formed v1 update that lies: clocks and lengths at the
 * edges of the number range, references to itself or to nothing, parents that
 * are not types, unknown content refs and type refs, odd root names.
 */
export function craftUpdate(rng: Rng, corpus: Corpus): Uint8Array {
  const known = () => rng.pick(corpus.ids)
  const client = rng.chance(0.5) ? rng.pick(corpus.clients) : rng.pick([1, 2 ** 31, 2 ** 32 - 1, 2 ** 53 - 1, rng.int(1, 2 ** 31)])
  const clock = rng.chance(0.6) ? rng.pick([0, 0, 1]) : rng.pick(interestingNumbers)
  const anyId = () => (rng.chance(0.6) ? known() : { client: rng.chance(0.5) ? client : rng.int(1, 2 ** 31), clock: rng.pick(interestingNumbers) })
  const str = (s: string) => (enc: encoding.Encoder) => encoding.writeVarString(enc, s)
  const content = (): Pick<CraftItem, 'content' | 'ref'> => {
    switch (rng.int(0, 10)) {
      case 0:
        return { ref: ContentRef.deleted, content: (e) => encoding.writeVarUint(e, rng.pick(interestingNumbers)) }
      case 1:
        return { ref: ContentRef.json, content: (e) => { encoding.writeVarUint(e, 1); encoding.writeVarString(e, rng.chance(0.5) ? 'undefined' : hostileJsonText(rng)) } }
      case 2:
        return { ref: ContentRef.binary, content: (e) => encoding.writeVarUint8Array(e, rng.bytes(rng.size(64))) }
      case 3:
        return { ref: ContentRef.embed, content: str(rng.chance(0.5) ? '{"__proto__":{"x":1}}' : hostileJsonText(rng)) }
      case 4:
        return { ref: ContentRef.format, content: (e) => { encoding.writeVarString(e, rng.pick(['bold', '__proto__', ''])); encoding.writeVarString(e, rng.pick(['true', 'null', '{"__proto__":1}', 'nope'])) } }
      case 5:
        return { ref: ContentRef.type, content: (e) => { encoding.writeVarUint(e, rng.pick([0, 1, 2, 3, 4, 5, 6, 7, 99, 2 ** 31])); encoding.writeVarString(e, rng.pick(['p', '__proto__', ''])) } }
      case 6:
        return { ref: ContentRef.any, content: (e) => { encoding.writeVarUint(e, 1); encoding.writeAny(e, oddValue(rng) as never) } }
      case 7:
        return { ref: ContentRef.doc, content: (e) => { encoding.writeVarString(e, rng.pick(['sub', '__proto__', ''])); encoding.writeAny(e, { gc: rng.chance(0.5), autoLoad: true } as never) } }
      case 8:
        return { ref: rng.pick([0, 10, 11, 12, 31]), content: (e) => encoding.writeVarUint(e, rng.int(0, 5)) }
      default:
        return { ref: ContentRef.string, content: str(rng.pick(['x', '\ud800', '', 'y'.repeat(rng.size(3000)), '🙂'])) }
    }
  }
  const item = (i: number): CraftItem => {
    const self = { client, clock: clock + i }
    const shape = rng.int(0, 7)
    return {
      ...content(),
      origin: shape === 0 ? self : shape === 1 ? { client, clock: clock + i + 1 } : shape < 4 ? anyId() : null,
      rightOrigin: shape === 4 ? self : shape === 5 ? anyId() : null,
      parent: rng.chance(0.6) ? { name: rng.pick(['text', 'meta', 'arr', 'xml', '__proto__', 'constructor', '']) } : anyId(),
      parentSub: rng.chance(0.2) ? rng.pick(['__proto__', 'constructor', 'title', '']) : undefined,
    }
  }
  const structs: Parameters<typeof encodeV1>[2] = []
  for (let i = rng.int(0, 4); i > 0; i--) {
    const r = rng.int(0, 9)
    structs.push(r === 0 ? { gc: rng.pick(interestingNumbers) } : r === 1 ? { skip: rng.pick(interestingNumbers) } : item(structs.length))
  }
  const ds: Parameters<typeof encodeV1>[3] = []
  if (rng.chance(0.5)) {
    const target = rng.chance(0.7) ? known() : anyId()
    ds.push({ client: target.client, ranges: Array.from({ length: rng.int(1, 3) }, () => [rng.chance(0.5) ? target.clock : rng.pick(interestingNumbers), rng.pick([0, 1, 2, 100, ...interestingNumbers])] as [number, number]) })
  }
  return encodeV1(client, clock, structs, ds)
}
