/**
 * Replays a sequential editing trace (josephg/editing-traces format, see
 * shared/traces/README.md beside the checkout) into a Y.Doc with a Y.Text 'text'.
 */
import { readFileSync } from 'node:fs'
import { gunzipSync } from 'node:zlib'
import { resolve } from 'node:path'
import * as Y from 'yjs'

/** `{ startContent, endContent, txns: [{ patches: [[pos, del, ins], …] }] }` */
export interface SequentialTrace {
  startContent: string
  endContent: string
  txns: { time?: string; patches: [number, number, string][] }[]
}

/** Where the shared traces live: `shared/traces` beside the checkout (override with `MURMUR_TRACES_DIR`). */
export const TRACES_DIR = process.env.MURMUR_TRACES_DIR ?? resolve(import.meta.dirname, '../../../shared/traces')

/** Loads and parses `<name>.json.gz`. */
export function loadTrace(name: string): SequentialTrace {
  return JSON.parse(gunzipSync(readFileSync(`${TRACES_DIR}/${name}.json.gz`)).toString('utf8')) as SequentialTrace
}

/**
 * Replays `trace` into a new Y.Doc, `batch` trace transactions per Yjs
 * transaction (1 = one Yjs transaction per trace transaction, the most
 * faithful history). Returns the doc and its edit count.
 */
export function replayTrace(trace: SequentialTrace, batch = 1): { doc: Y.Doc; edits: number } {
  const doc = new Y.Doc()
  const text = doc.getText('text')
  if (trace.startContent) text.insert(0, trace.startContent)
  let edits = 0
  const { txns } = trace
  for (let i = 0; i < txns.length; i += batch) {
    doc.transact(() => {
      for (let j = i; j < Math.min(i + batch, txns.length); j++) {
        for (const [pos, del, ins] of txns[j].patches) {
          if (del > 0) {
            text.delete(pos, del)
            edits++
          }
          if (ins) {
            text.insert(pos, ins)
            edits++
          }
        }
      }
    })
  }
  return { doc, edits }
}
