/**
 * The load test's chart as a hand-written SVG (no plotting dependency):
 * relay latency p50/p99 per step on a log scale, and server RSS each second
 * over the run with the steps marked.
 */
import type { StepReport } from '../load.ts'

const W = 900
const H = 620
const M = { l: 70, r: 20, t: 40, b: 50 }
const esc = (s: string) => s.replace(/&/g, '&amp;').replace(/</g, '&lt;')

export function loadChart(steps: StepReport[], rss: { t: number; rss: number; step: number }[], limitMs: number): string {
  const out: string[] = []
  out.push(`<svg xmlns="http://www.w3.org/2000/svg" width="${W}" height="${H}" viewBox="0 0 ${W} ${H}" font-family="sans-serif" font-size="12">`)
  out.push(`<rect width="${W}" height="${H}" fill="white"/>`)

  // Panel 1: latency per step (log scale).
  const p1 = { x: M.l, y: M.t, w: W - M.l - M.r, h: 230 }
  out.push(`<text x="${p1.x}" y="${p1.y - 12}" font-size="14" font-weight="bold">Relay latency per load step (edit sent → received by another client of the room)</text>`)
  const lo = 0
  const hi = 4 // 1 ms … 10 s
  const ly = (ms: number) => p1.y + p1.h - ((Math.log10(Math.max(1, Math.min(10_000, ms))) - lo) / (hi - lo)) * p1.h
  const n = Math.max(1, steps.length)
  const sx = (i: number) => p1.x + (n === 1 ? p1.w / 2 : (i / (n - 1)) * p1.w * 0.94 + p1.w * 0.03)
  for (let e = lo; e <= hi; e++) {
    const y = ly(10 ** e)
    out.push(`<line x1="${p1.x}" x2="${p1.x + p1.w}" y1="${y}" y2="${y}" stroke="#ddd"/>`)
    out.push(`<text x="${p1.x - 8}" y="${y + 4}" text-anchor="end">${10 ** e >= 1000 ? `${10 ** e / 1000} s` : `${10 ** e} ms`}</text>`)
  }
  out.push(`<line x1="${p1.x}" x2="${p1.x + p1.w}" y1="${ly(limitMs)}" y2="${ly(limitMs)}" stroke="#c00" stroke-dasharray="6 4"/>`)
  out.push(`<text x="${p1.x + p1.w - 4}" y="${ly(limitMs) - 5}" text-anchor="end" fill="#c00">saturation: p99 &gt; ${limitMs} ms</text>`)
  out.push(`<rect x="${p1.x}" y="${p1.y}" width="${p1.w}" height="${p1.h}" fill="none" stroke="#888"/>`)
  const series = (key: 'p50' | 'p99', color: string) => {
    const pts = steps.map((s, i) => `${sx(i).toFixed(1)},${ly(s[key]).toFixed(1)}`)
    out.push(`<polyline points="${pts.join(' ')}" fill="none" stroke="${color}" stroke-width="2"/>`)
    steps.forEach((s, i) => out.push(`<circle cx="${sx(i).toFixed(1)}" cy="${ly(s[key]).toFixed(1)}" r="3.5" fill="${color}"/>`))
  }
  series('p50', '#1f77b4')
  series('p99', '#d62728')
  steps.forEach((s, i) => {
    out.push(`<text x="${sx(i)}" y="${p1.y + p1.h + 16}" text-anchor="middle">${s.targetEditsPerSec} e/s</text>`)
    out.push(`<text x="${sx(i)}" y="${p1.y + p1.h + 30}" text-anchor="middle" fill="#666">${s.connections} conns${s.saturated ? ' ✗' : ''}</text>`)
  })
  out.push(`<text x="${p1.x + 10}" y="${p1.y + 16}" fill="#1f77b4">● p50</text><text x="${p1.x + 60}" y="${p1.y + 16}" fill="#d62728">● p99</text>`)

  // Panel 2: RSS over time with step bands.
  const p2 = { x: M.l, y: p1.y + p1.h + 90, w: W - M.l - M.r, h: 200 }
  out.push(`<text x="${p2.x}" y="${p2.y - 12}" font-size="14" font-weight="bold">Server RSS over the run (sampled each second; shaded: load steps)</text>`)
  const tMax = Math.max(1, ...rss.map((r) => r.t))
  const rMax = Math.max(50, ...rss.map((r) => r.rss)) * 1.1
  const tx = (t: number) => p2.x + (t / tMax) * p2.w
  const ry = (v: number) => p2.y + p2.h - (v / rMax) * p2.h
  const byStep = new Map<number, { from: number; to: number }>()
  for (const r of rss) {
    const b = byStep.get(r.step) ?? { from: r.t, to: r.t }
    b.from = Math.min(b.from, r.t)
    b.to = Math.max(b.to, r.t)
    byStep.set(r.step, b)
  }
  for (const [step, b] of byStep) {
    out.push(`<rect x="${tx(b.from).toFixed(1)}" y="${p2.y}" width="${Math.max(1, tx(b.to) - tx(b.from)).toFixed(1)}" height="${p2.h}" fill="${step % 2 ? '#eef3fa' : '#f5f5f5'}"/>`)
    out.push(`<text x="${((tx(b.from) + tx(b.to)) / 2).toFixed(1)}" y="${p2.y + 14}" text-anchor="middle" fill="#555">${step + 1}</text>`)
  }
  const step = rMax > 1000 ? 250 : rMax > 400 ? 100 : 50
  for (let v = 0; v <= rMax; v += step) {
    out.push(`<line x1="${p2.x}" x2="${p2.x + p2.w}" y1="${ry(v)}" y2="${ry(v)}" stroke="#ddd"/>`)
    out.push(`<text x="${p2.x - 8}" y="${ry(v) + 4}" text-anchor="end">${v} MiB</text>`)
  }
  out.push(`<rect x="${p2.x}" y="${p2.y}" width="${p2.w}" height="${p2.h}" fill="none" stroke="#888"/>`)
  // Break the line between steps (the idle gap has no samples).
  let path = ''
  let last = -1
  for (const r of rss) {
    path += `${r.step !== last ? 'M' : 'L'}${tx(r.t).toFixed(1)},${ry(r.rss).toFixed(1)} `
    last = r.step
  }
  out.push(`<path d="${path}" fill="none" stroke="#2ca02c" stroke-width="2"/>`)
  for (let t = 0; t <= tMax; t += tMax > 120 ? 30 : 10) out.push(`<text x="${tx(t)}" y="${p2.y + p2.h + 16}" text-anchor="middle">${t} s</text>`)
  out.push(`<text x="${W / 2}" y="${H - 8}" text-anchor="middle" fill="#666">${esc(`murmur bench/load.ts — ${steps.length} steps; rooms×clients×edits/s: ${steps.map((s) => `${s.rooms}×${s.clients}×${s.rate}`).join(', ')}`)}</text>`)
  out.push('</svg>')
  return out.join('\n')
}
