/**
 * The fuzz run's chart: server memory and event-loop lag over the run, with
 * the two phases shaded, so "memory stays bounded" can be seen, not only read
 * off three numbers.
 */
import { COLORS, renderChart } from './chart.ts'
import type { FuzzReport } from './fuzz-run.ts'

/** SVG of `report`'s timeline: RSS and heap (MiB) in one panel, event-loop lag p99 (ms) and inputs/s in two more. */
export function fuzzChart(report: FuzzReport): string {
  const s = (ms: number) => ms / 1000
  const t = report.timeline.filter((p) => Number.isFinite(p.rssMiB))
  const ends = report.phaseStarts.map((p, i) => ({ ...p, end: report.phaseStarts[i + 1]?.ms ?? t[t.length - 1]?.ms ?? p.ms }))
  const bands = ends.map((p, i) => ({ from: s(p.ms), to: s(p.end), label: `${p.name} phase`, fill: i % 2 ? '#f3f0ff' : '#f2f7ff' }))
  const rate = t.slice(1).map((p, i) => ({ x: s(p.ms), y: (p.inputs - t[i].inputs) / Math.max(0.001, s(p.ms - t[i].ms)) }))
  const x = { label: 'seconds since start', min: 0 }
  return renderChart({
    title: `murmur fuzz, seed ${report.seed}: ${t[t.length - 1]?.inputs.toLocaleString('en-US') ?? 0} inputs in ${Math.round(report.durationMs / 1000)} s, ${report.crashes.length} crashes`,
    width: 900,
    panels: [
      {
        title: 'server memory (MiB)',
        x,
        y: { label: 'MiB' },
        bands,
        legend: 'bottom-right',
        series: [
          { name: 'RSS', color: COLORS[0], markers: false, points: t.map((p) => ({ x: s(p.ms), y: p.rssMiB })) },
          { name: 'V8 heap used', color: COLORS[2], markers: false, points: t.map((p) => ({ x: s(p.ms), y: p.heapMiB })) },
        ],
      },
      {
        title: 'event-loop lag p99 (ms, per /metrics scrape)',
        x,
        y: { label: 'ms' },
        bands,
        legend: 'none',
        height: 160,
        series: [{ name: 'lag p99', color: COLORS[1], markers: false, points: t.map((p) => ({ x: s(p.ms), y: p.lagP99Ms })) }],
      },
      {
        title: 'fuzz inputs per second',
        x,
        y: { label: 'inputs/s' },
        bands,
        legend: 'none',
        height: 160,
        series: [{ name: 'inputs/s', color: COLORS[4], markers: false, points: rate }],
      },
    ],
  })
}
