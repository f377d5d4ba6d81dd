/**
 * Seeded pseudo-random numbers for the fuzzer. Every frame the fuzzer sends
 * comes from `rngFor(seed, stream, index)`, so frame *n* of a run is the same
 * bytes on every machine and every re-run with the same seed, whatever the
 * timing or concurrency.
 */

/** A small deterministic generator (sfc32) with the helpers the fuzzer needs. */
export interface Rng {
  /** Uniform in [0, 2^32). */
  u32(): number
  /** Uniform in [0, 1). */
  float(): number
  /** Uniform integer in [min, max] (inclusive). */
  int(min: number, max: number): number
  /** True with probability `p`. */
  chance(p: number): boolean
  /** One element of `xs`. */
  pick<T>(xs: readonly T[]): T
  /** A key of `weights`, chosen with probability proportional to its weight. */
  weighted<K extends string>(weights: Readonly<Record<K, number>>): K
  /** `n` random bytes. */
  bytes(n: number): Uint8Array
  /** A length biased towards small values (log-uniform in [0, max]). */
  size(max: number): number
}

/** Mixes numbers into a 32-bit hash (murmur3 finalizer over a running state). */
export function hash32(...parts: number[]): number {
  let h = 0x9e3779b9
  for (const p of parts) {
    let k = Math.floor(p) >>> 0
    k = Math.imul(k ^ (k >>> 16), 0x85ebca6b)
    k = Math.imul(k ^ (k >>> 13), 0xc2b2ae35)
    h = Math.imul(h ^ k ^ (k >>> 16), 0x27d4eb2d) + Math.floor(p / 2 ** 32)
    h = (h ^ (h >>> 15)) >>> 0
  }
  return h >>> 0
}

/** A generator seeded with one 32-bit number. */
export function createRng(seed: number): Rng {
  let a = 0x9e3779b9
  let b = 0x243f6a88
  let c = 0xb7e15162
  let d = seed >>> 0
  const u32 = () => {
    a >>>= 0
    b >>>= 0
    c >>>= 0
    d >>>= 0
    const t = (((a + b) | 0) + d) | 0
    d = (d + 1) | 0
    a = b ^ (b >>> 9)
    b = (c + (c << 3)) | 0
    c = (c << 21) | (c >>> 11)
    c = (c + t) | 0
    return t >>> 0
  }
  for (let i = 0; i < 12; i++) u32()
  const rng: Rng = {
    u32,
    float: () => u32() / 2 ** 32,
    int: (min, max) => min + Math.floor((u32() / 2 ** 32) * (max - min + 1)),
    chance: (p) => u32() / 2 ** 32 < p,
    pick: (xs) => xs[Math.floor((u32() / 2 ** 32) * xs.length)],
    weighted(weights) {
      const entries = Object.entries(weights) as [string, number][]
      let total = 0
      for (const [, w] of entries) total += w
      let r = rng.float() * total
      for (const [k, w] of entries) {
        if ((r -= w) < 0) return k as never
      }
      return entries[entries.length - 1][0] as never
    },
    bytes(n) {
      const out = new Uint8Array(n)
      for (let i = 0; i < n; i++) out[i] = u32() & 0xff
      return out
    },
    size: (max) => Math.min(max, Math.floor(Math.exp(rng.float() * Math.log(max + 1))) - 1 + (rng.chance(0.5) ? 1 : 0)),
  }
  return rng
}

/** The generator for item `index` of `stream` in a run with `seed`. */
export function rngFor(seed: number, stream: number, index: number): Rng {
  return createRng(hash32(seed, stream, index))
}
