/**
 * Markdown for the client benchmark's results, and the rewrite of its marked
 * block in bench/README.md (`<!-- client:begin -->` … `<!-- client:end -->`;
 * the prose around the markers is kept).
 */
import { readFileSync, writeFileSync } from 'node:fs'
import { stats } from '../../test/e2e/harness.ts'
import { docLabel } from './client-docs.ts'
import type { LatencyResult } from './client-latency.ts'
import type { OpenResult, OpenSample } from './client-open.ts'

const fmt = (x: number | undefined): string => (x === undefined || Number.isNaN(x) ? '–' : x >= 100 ? Math.round(x).toLocaleString('en-US') : x >= 10 ? x.toFixed(0) : x.toFixed(1))

function median(xs: number[]): number | undefined {
  if (!xs.length) return undefined
  return stats(xs).median
}

/** Median of milestone `name` over the samples that reached it. */
function step(samples: OpenSample[], name: string): number | undefined {
  return median(samples.map((s) => s.steps[name]).filter((x): x is number => x !== undefined))
}

/** The open-time table: one row per document and source. */
export function openTable(results: OpenResult[]): string {
  const rows = [
    '| document (automerge-paper prefix) | source | shown: median ms | min – max | app started | local copy loaded | backup socket open | text arrives | Yjs apply | editor update | rest until shown | wall clock |',
    '| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |',
  ]
  for (const r of results) {
    for (const [source, samples] of [['server', r.server], ['IndexedDB (offline)', r.idb]] as const) {
      const s = stats(samples.map((x) => x.pageMs))
      const arrives = median(samples.map((x) => x.apply.firstStart).filter((x): x is number => x !== null))
      const rest = median(samples.filter((x) => x.apply.firstStart !== null).map((x) => x.pageMs - x.apply.firstStart! - x.apply.yjsMs - x.apply.editorMs))
      rows.push(
        `| ${docLabel(r.doc)} | ${source} | **${fmt(s.median)}** | ${fmt(s.min)} – ${fmt(s.max)} | ${fmt(step(samples, 'session'))} | ${fmt(step(samples, 'loaded'))} | ${fmt(step(samples, 'socketOpen'))} | ${fmt(arrives)} | ${fmt(median(samples.map((x) => x.apply.yjsMs)))} | ${fmt(median(samples.map((x) => x.apply.editorMs)))} | ${fmt(rest)} | ${fmt(median(samples.map((x) => x.wallMs)))} |`,
      )
    }
  }
  return rows.join('\n')
}

/** The latency table: one row per document and path. */
export function latencyTable(results: LatencyResult[]): string {
  const rows = [
    '| document | path | keystrokes | median ms | p90 | p99 | max | next frame: median | next frame: p99 | delivered by |',
    '| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | --- |',
  ]
  for (const r of results) {
    for (const [path, k] of [['direct (WebRTC)', r.direct], ['via server (/sync relay)', r.viaServer]] as const) {
      const s = stats(k.ms)
      const f = stats(k.frameMs)
      const via = Object.entries(k.via).map(([p, n]) => `${p} ${n}`).join(', ')
      rows.push(`| ${r.doc.edits ? docLabel(r.doc) : 'empty'} | ${path} | ${s.n} | **${fmt(s.median)}** | ${fmt(s.p90)} | **${fmt(s.p99)}** | ${fmt(s.max)} | ${fmt(f.median)} | ${fmt(f.p99)} | ${via} |`)
    }
  }
  return rows.join('\n')
}

/**
 * Replaces the text between `<!-- <name>:begin -->` and `<!-- <name>:end -->`
 * in the markdown file `path` with `block`. When the markers are missing, a
 * new section (`heading`, then the markers) is inserted before the line
 * `before` (or appended).
 */
export function rewriteMarked(path: string, name: string, block: string, heading: string, before: string): void {
  const text = readFileSync(path, 'utf8')
  const open = `<!-- ${name}:begin -->`
  const close = `<!-- ${name}:end -->`
  const b = text.indexOf(open)
  const e = text.indexOf(close)
  if (b >= 0 && e > b) {
    writeFileSync(path, `${text.slice(0, b)}${open}\n${block}\n${text.slice(e)}`)
    return
  }
  const section = `${heading}\n\n${open}\n${block}\n${close}\n\n`
  const at = text.indexOf(`\n${before}\n`)
  writeFileSync(path, at < 0 ? `${text.trimEnd()}\n\n${section}` : `${text.slice(0, at + 1)}${section}${text.slice(at + 1)}`)
}
