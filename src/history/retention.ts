/**
 * Retention, so history cannot grow without bound. The policy, applied by
 * every device to its IndexedDB copy (and so to the server's, which merges
 * the deletions like any edit):
 *
 * - named versions are kept (up to `maxNamed`);
 * - every version of the last day is kept;
 * - from one day to one week old, the newest version of each hour;
 * - older than a week, the newest version of each day;
 * - at most `maxVersions` unnamed and `maxNamed` named versions in all, and
 *   unnamed versions only while the kept versions' text stays under
 *   `maxChars` (the oldest go first), so a history fits the server's
 *   per-document limit even for a very long text.
 *
 * The newest version is always kept.
 */
import type { Version } from './versions.ts'

/** The retention policy's knobs. */
export interface RetentionPolicy {
  /** Keep every version younger than this (ms). */
  keepAllMs: number
  /** Keep one per hour for versions younger than this (ms); older ones: one per day. */
  hourlyMs: number
  /** Unnamed versions kept at most. */
  maxVersions: number
  /** Named versions kept at most. */
  maxNamed: number
  /** Characters of text in all kept versions beyond which older unnamed versions go. */
  maxChars: number
}

const HOUR = 3600_000
const DAY = 24 * HOUR

/**
 * The documented default: all of the last day, hourly for a week, then daily;
 * at most 500 unnamed and 200 named versions, and 16 M characters of text
 * (half the server's default 64 MiB per document, even for non-ASCII text).
 */
export const DEFAULT_RETENTION: RetentionPolicy = { keepAllMs: DAY, hourlyMs: 7 * DAY, maxVersions: 500, maxNamed: 200, maxChars: 16_000_000 }

/** The ids of the versions the policy drops at time `now`. */
export function prunable(versions: readonly Version[], now: number, policy: RetentionPolicy = DEFAULT_RETENTION): string[] {
  const sorted = [...versions].sort((a, b) => b.at - a.at)
  const drop: string[] = []
  const seenBuckets = new Set<string>()
  let unnamed = 0
  let named = 0
  let chars = 0
  sorted.forEach((v, i) => {
    if (v.name) {
      if (++named > policy.maxNamed) drop.push(v.id)
      else chars += v.text.length
      return
    }
    if (i === 0) {
      unnamed++
      chars += v.text.length
      return
    }
    const age = now - v.at
    let keep = age < policy.keepAllMs
    if (!keep) {
      const bucket = age < policy.hourlyMs ? `h${Math.floor(v.at / HOUR)}` : `d${Math.floor(v.at / DAY)}`
      keep = !seenBuckets.has(bucket)
      seenBuckets.add(bucket)
    }
    if (keep && ++unnamed > policy.maxVersions) keep = false
    if (keep && (chars += v.text.length) > policy.maxChars) keep = false
    if (!keep) drop.push(v.id)
  })
  return drop
}
