/**
 * Valid messages the fuzzer starts from: real Yjs updates of a seeded editing
 * session, real state vectors, awareness updates with JSON states, and real
 * y-webrtc signaling JSON. Mutations of valid input get past the outer
 * decoders and reach the inner ones, which fully random bytes rarely do.
 */
import * as Y from 'yjs'
import * as encoding from 'lib0/encoding'
import { createRng, hash32, type Rng } from './fuzz-rng.ts'

/** Everything the fuzzer mutates, derived from the seed alone. */
export interface Corpus {
  /** Incremental updates of the editing session, in the order they happened. */
  updates: Uint8Array[]
  /** `merged[k]` = updates[0..k] merged into one update (the state after k+1 updates). */
  merged: Uint8Array[]
  /** State vectors taken along the session. */
  stateVectors: Uint8Array[]
  /** Awareness updates (y-protocols encoding) with JSON states. */
  awareness: Uint8Array[]
  /** Valid signaling messages (JSON text). */
  signaling: string[]
  /** Client ids used by the session's documents. */
  clients: number[]
  /** Every Yjs struct id (client, clock) of the session: targets for crafted references. */
  ids: { client: number; clock: number }[]
}

/** Encodes an awareness update for `states` (clientID, clock, JSON text of the state). */
export function encodeAwareness(states: { client: number; clock: number; json: string }[]): Uint8Array {
  const enc = encoding.createEncoder()
  encoding.writeVarUint(enc, states.length)
  for (const s of states) {
    encoding.writeVarUint(enc, s.client)
    encoding.writeVarUint(enc, s.clock)
    encoding.writeVarString(enc, s.json)
  }
  return encoding.toUint8Array(enc)
}

const words = ['local', 'first', 'peer', 'murmur', 'ü', '日本語', '🙂', '\u200b', 'a', ' ', '\n', '__proto__', 'constructor']

function randomText(rng: Rng): string {
  let s = ''
  const n = rng.int(1, 4)
  for (let i = 0; i < n; i++) s += rng.pick(words)
  return s
}

function randomJson(rng: Rng, depth = 0): unknown {
  const r = rng.int(0, depth > 3 ? 3 : 6)
  if (r === 0) return rng.int(-1e6, 1e6)
  if (r === 1) return randomText(rng)
  if (r === 2) return rng.chance(0.5)
  if (r === 3) return null
  if (r === 4) return Array.from({ length: rng.int(0, 3) }, () => randomJson(rng, depth + 1))
  const o: Record<string, unknown> = {}
  // defineProperty: `__proto__` becomes an own key (as JSON.parse makes it), not the prototype.
  // No own `constructor` at the top: Yjs picks the content type by `value.constructor`.
  for (let i = rng.int(0, 3); i > 0; i--) Object.defineProperty(o, rng.pick(depth === 0 ? ['name', 'color', 'x', '__proto__', 'toString'] : ['name', 'cursor', '__proto__', 'constructor', 'toString']), { value: randomJson(rng, depth + 1), enumerable: true, writable: true, configurable: true })
  return o
}

/** One random edit on one of the session's documents. */
function edit(rng: Rng, doc: Y.Doc): void {
  const text = doc.getText('text')
  const op = rng.weighted({ insert: 10, delete: 4, format: 1, embed: 1, map: 2, array: 2, xml: 1, subdoc: 0.2, binary: 0.5 })
  switch (op) {
    case 'insert': {
      const pos = rng.int(0, text.length)
      text.insert(pos, randomText(rng), rng.chance(0.1) ? { bold: true } : undefined)
      break
    }
    case 'delete':
      if (text.length > 0) {
        const pos = rng.int(0, text.length - 1)
        text.delete(pos, rng.int(1, Math.min(8, text.length - pos)))
      }
      break
    case 'format':
      if (text.length > 1) text.format(rng.int(0, text.length - 1), 1, { italic: rng.chance(0.5) ? true : null })
      break
    case 'embed':
      text.insertEmbed(rng.int(0, text.length), { image: 'x.png', n: rng.int(0, 9) })
      break
    case 'map': {
      const map = doc.getMap('meta')
      const key = rng.pick(['title', '__proto__', 'constructor', 'hasOwnProperty', 'k' + rng.int(0, 5)])
      if (rng.chance(0.2)) map.delete(key)
      else map.set(key, randomJson(rng))
      break
    }
    case 'array': {
      const arr = doc.getArray('arr')
      if (arr.length > 0 && rng.chance(0.3)) arr.delete(rng.int(0, arr.length - 1), 1)
      else arr.insert(rng.int(0, arr.length), [randomJson(rng)])
      break
    }
    case 'xml': {
      const frag = doc.getXmlFragment('xml')
      const el = new Y.XmlElement(rng.pick(['p', 'h1', 'span']))
      el.setAttribute('class', randomText(rng))
      el.insert(0, [new Y.XmlText(randomText(rng))])
      frag.insert(rng.int(0, frag.length), [el])
      break
    }
    case 'subdoc':
      doc.getMap('docs').set('d' + rng.int(0, 3), new Y.Doc({ guid: 'sub' + rng.int(0, 99) }))
      break
    case 'binary':
      doc.getArray('arr').push([rng.bytes(rng.int(0, 16))])
      break
  }
}

/**
 * Builds the corpus for `seed`: three documents edit concurrently and sync now
 * and then (so updates carry cross-client origins and delete sets), ~`size`
 * updates in all.
 */
export function buildCorpus(seed: number, size = 120): Corpus {
  const rng = createRng(hash32(seed, 0xc0ffee))
  const docs = [0, 1, 2].map((i) => {
    const d = new Y.Doc({ gc: i !== 2 })
    d.clientID = (hash32(seed, 77, i) % 2 ** 31) + 1
    return d
  })
  const updates: Uint8Array[] = []
  const stateVectors: Uint8Array[] = [Y.encodeStateVector(docs[0])]
  for (const d of docs) {
    d.on('update', (u: Uint8Array, origin: unknown) => {
      if (origin !== 'sync') updates.push(u)
    })
  }
  while (updates.length < size) {
    const d = rng.pick(docs)
    edit(rng, d)
    if (rng.chance(0.15)) {
      const [a, b] = [rng.pick(docs), rng.pick(docs)]
      if (a !== b) Y.applyUpdate(b, Y.encodeStateAsUpdate(a, Y.encodeStateVector(b)), 'sync')
      stateVectors.push(Y.encodeStateVector(b))
    }
  }
  const merged: Uint8Array[] = []
  // Merging every prefix is quadratic; merge incrementally instead.
  let acc: Uint8Array | null = null
  for (const u of updates) {
    acc = acc ? Y.mergeUpdates([acc, u]) : u
    merged.push(acc)
  }
  const ids: Corpus['ids'] = []
  for (const u of updates) {
    for (const s of Y.decodeUpdate(u).structs) for (let k = 0; k < Math.min(s.length, 3); k++) ids.push({ client: s.id.client, clock: s.id.clock + k })
  }
  const awareness: Uint8Array[] = []
  for (let i = 0; i < 24; i++) {
    const n = rng.int(1, 3)
    awareness.push(
      encodeAwareness(
        Array.from({ length: n }, () => ({
          client: rng.chance(0.5) ? rng.pick(docs).clientID : rng.int(1, 2 ** 31),
          clock: rng.int(0, 50),
          json: rng.chance(0.1) ? 'null' : JSON.stringify({ user: { name: randomText(rng), color: '#30bced' }, cursor: rng.chance(0.5) ? null : { anchor: randomJson(rng), head: randomJson(rng) } }),
        })),
      ),
    )
  }
  const topic = (i: number) => ['doc-' + i, 'murmur:room' + i, '__proto__', 'constructor', ''][i % 5]
  const signaling: string[] = []
  for (let i = 0; i < 16; i++) {
    const peer = 'p' + rng.u32().toString(36)
    signaling.push(
      rng.pick([
        JSON.stringify({ type: 'subscribe', topics: [topic(i), topic(i + 1)] }),
        JSON.stringify({ type: 'unsubscribe', topics: [topic(i)] }),
        JSON.stringify({ type: 'ping' }),
        JSON.stringify({ type: 'publish', topic: topic(i), data: { type: 'announce', from: peer } }),
        JSON.stringify({ type: 'publish', topic: topic(i), data: { type: 'signal', from: peer, to: 'q' + i, token: 'abc', signal: { type: 'offer', sdp: 'v=0\r\no=- 46117 2 IN IP4 127.0.0.1\r\ns=-\r\nt=0 0\r\na=group:BUNDLE 0\r\n' } } }),
        JSON.stringify({ type: 'publish', topic: topic(i), data: { type: 'signal', from: peer, to: 'q' + i, signal: { candidate: { candidate: 'candidate:1 1 udp 2122260223 192.168.1.2 54400 typ host', sdpMid: '0' } } } }),
      ]),
    )
  }
  for (const d of docs) d.destroy()
  return { updates, merged, stateVectors, awareness, signaling, clients: docs.map((d) => d.clientID), ids }
}
