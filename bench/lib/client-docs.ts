/**
 * The documents the client benchmark opens: prefixes of the automerge-paper
 * trace (snapshots from `test/helpers/trace.ts`, cached on disk), and how one
 * gets into a server: a stock y-websocket client in Node pushes it, a second
 * one checks the server holds all of it (as `test/e2e/large-doc.test.ts`).
 */
import * as Y from 'yjs'
import { traceSnapshots } from '../../test/helpers/trace.ts'
import { untilDoc, yClient } from '../../test/helpers/clients.ts'

/** One benchmark document. */
export interface BenchDoc {
  /** Trace patches applied. */
  edits: number
  /** The text a client must end up showing. */
  text: string
  /** Its first line (what the editor DOM must show at the top). */
  firstLine: string
  /** `Y.encodeStateAsUpdate` of the document: what the server stores and sends. */
  update: Uint8Array
}

/** Snapshots of the trace after each of `points` edits (one replay, cached). */
export function benchDocs(points: number[]): BenchDoc[] {
  return traceSnapshots(points).map((s) => {
    const doc = new Y.Doc()
    Y.applyUpdate(doc, s.update)
    const text = doc.getText('text').toString()
    doc.destroy()
    if (text.length !== s.textLength) throw new Error(`snapshot of ${s.edits} edits: ${text.length} chars, expected ${s.textLength}`)
    const nl = text.indexOf('\n')
    return { edits: s.edits, text, firstLine: (nl < 0 ? text : text.slice(0, nl)).slice(0, 60), update: s.update }
  })
}

/** A short label: "100,000 edits (55,576 chars, 103 KiB)". */
export function docLabel(d: BenchDoc): string {
  return `${d.edits.toLocaleString('en-US')} edits (${d.text.length.toLocaleString('en-US')} chars, ${Math.max(1, Math.round(d.update.length / 1024)).toLocaleString('en-US')} KiB)`
}

/** Pushes `d` to the server at `wsUrl` as `docId` and waits until a second client sees all of it. */
export async function pushDoc(wsUrl: string, docId: string, d: BenchDoc): Promise<void> {
  const doc = new Y.Doc()
  Y.applyUpdate(doc, d.update)
  const pusher = yClient(wsUrl, docId, { doc })
  try {
    await pusher.synced
    const check = yClient(wsUrl, docId)
    try {
      await check.synced
      await untilDoc(check.doc, () => check.text.length === d.text.length, `the server to hold ${d.edits} edits`, 60_000)
      if (check.text.toString() !== d.text) throw new Error(`server copy of ${docId} differs from the pushed document`)
    } finally {
      check.destroy()
    }
  } finally {
    pusher.destroy()
  }
}
