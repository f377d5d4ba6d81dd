/**
 * Character diffs between two texts (`@codemirror/merge`'s, bounded in time
 * so a very different pair cannot stall typing): the changes a restore
 * applies, and the size of change a version records.
 */
import { diff } from '@codemirror/merge'

/** One replacement in the first text's coordinates (CodeMirror `ChangeSpec` shape). */
export interface TextChange {
  from: number
  to: number
  insert: string
}

/** Past this many milliseconds the diff settles for a coarser (still correct) answer. */
const DIFF_OPTIONS = { scanLimit: 500, timeout: 50 }

/** The changes (non-overlapping, in order, positions in `current`) that make `current` equal to `target`. */
export function textChanges(current: string, target: string): TextChange[] {
  return diff(current, target, DIFF_OPTIONS).map((c) => ({ from: c.fromA, to: c.toA, insert: target.slice(c.fromB, c.toB) }))
}

/** Characters added and removed between two texts. */
export function changeSize(before: string, after: string): { added: number; removed: number } {
  let added = 0
  let removed = 0
  for (const c of diff(before, after, DIFF_OPTIONS)) {
    added += c.toB - c.fromB
    removed += c.toA - c.fromA
  }
  return { added, removed }
}
