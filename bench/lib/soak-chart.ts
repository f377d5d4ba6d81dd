/**
 * The convergence soak's chart: how long every replica and the server took to
 * agree once everything was healed, against the number of peers (one dot a
 * seed, the line through the medians), so the cost of more peers shows as a
 * curve, not a single run.
 */
import type { RunResult } from '../../test/convergence/harness.ts'
import { COLORS, renderChart } from './chart.ts'

/** SVG of the soak `results`. */
export function soakChart(results: RunResult[]): string {
  const byPeers = new Map<number, number[]>()
  for (const r of results) byPeers.set(r.peers, [...(byPeers.get(r.peers) ?? []), r.agreeMs / 1000])
  const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor((xs.length - 1) / 2)]
  const peers = [...byPeers.keys()].sort((a, b) => a - b)
  const failed = results.filter((r) => r.error).length
  return renderChart({
    title: `murmur convergence soak: ${results.length} seeds, ${failed ? `${failed} failed` : 'all converged'}`,
    width: 800,
    panels: [
      {
        title: 'seconds from healing every partition to identical replicas and server',
        x: { label: 'peers (separate processes, WebRTC + backup)', ticks: peers.map((p) => ({ value: p, label: String(p) })) },
        y: { label: 'seconds' },
        legend: 'top-left',
        series: [
          { name: 'median over seeds', color: COLORS[0], points: peers.map((p) => ({ x: p, y: median(byPeers.get(p)!) })) },
          ...results.map((r, i) => ({
            name: i === 0 ? 'one seed' : `seed ${r.seed}`,
            hideInLegend: i > 0,
            color: r.error ? COLORS[1] : '#999',
            points: [{ x: r.peers, y: r.agreeMs / 1000 }],
          })),
        ],
      },
    ],
  })
}
