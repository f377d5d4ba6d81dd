/**
 * Line charts for the benchmarks as hand-written SVG (no plotting
 * dependency), and writing them as `.svg` plus `.png` (through
 * `rsvg-convert`, when installed).
 *
 * A chart is one or more panels in a grid. Each panel has a title, an x and a
 * y axis (linear or log, automatic or given ticks, axis labels), any number of
 * series (lines with point markers; a non-finite y breaks the line), optional
 * horizontal reference lines and shaded x ranges, and a legend in one corner
 * (or one legend for the whole chart under its title).
 *
 *   const svg = renderChart({ title: '…', panels: [{ title: '…', x: { label: 'peers', log: true }, y: { label: 'msgs/s' }, series }] })
 *   console.log(writeChart('bench/signaling.svg', svg).note)
 */
import { execFileSync } from 'node:child_process'
import { existsSync, writeFileSync } from 'node:fs'

/** One tick on an axis: where, its label, and an optional second (grey) line under it. */
export interface Tick {
  value: number
  label: string
  sub?: string
}

/** An axis: log or linear scale, range, ticks and label (everything but the scale is optional). */
export interface Axis {
  /** Axis title, drawn under the x axis / along the y axis. */
  label?: string
  log?: boolean
  /** Range; by default the data's, widened to round numbers (linear y starts at 0 unless `min` is given). */
  min?: number
  max?: number
  /** Tick positions and labels; by default chosen from the range (1-2-5 steps, or powers of ten on a log axis). */
  ticks?: Tick[]
  /** Label of an automatic tick (default: `formatNumber`). */
  format?: (v: number) => string
}

/** One line of a panel. Points are drawn in order; a point with a non-finite `y` breaks the line there; `lo`/`hi` draw a whisker (e.g. min–max). */
export interface Series {
  name: string
  points: { x: number; y: number; lo?: number; hi?: number }[]
  color: string
  /** SVG stroke-dasharray, e.g. `'6 4'`, for series that measure something weaker (e.g. "applied", not "durable"). */
  dash?: string
  /** Draw a marker on each point (default true). */
  markers?: boolean
  /** Leave the series out of the legend. */
  hideInLegend?: boolean
}

/** A horizontal reference line with a label (e.g. a saturation threshold). */
export interface HLine {
  y: number
  label: string
  color?: string
}

/** A shaded x range behind the data, with an optional label at its top. */
export interface Band {
  from: number
  to: number
  label?: string
  fill?: string
}

/** One plot: axes, series, extras. */
export interface Panel {
  title: string
  x: Axis
  y: Axis
  series: Series[]
  hlines?: HLine[]
  bands?: Band[]
  /** Corner for the legend (default top-left), 'right' for outside the plot (which then gets narrower), 'none' hides it. */
  legend?: 'top-left' | 'top-right' | 'bottom-left' | 'bottom-right' | 'right' | 'none'
  /** Plot-area height in px (default 240). */
  height?: number
}

/** A legend entry: what a series looks like. */
export type LegendEntry = Pick<Series, 'name' | 'color' | 'dash' | 'markers'>

/** A whole chart: panels laid out in `columns` columns, an optional title and shared legend above, and a footer below. */
export interface Chart {
  title?: string
  /** One legend for every panel (when the panels show the same series), in rows under the title. */
  legend?: LegendEntry[]
  footer?: string
  panels: Panel[]
  /** Total width in px (default 900). */
  width?: number
  /** Panels per row (default 1). */
  columns?: number
}

/** A short label for a number: 1,500 → "1.5k", 2,000,000 → "2M", 0.25 → "0.25". */
export function formatNumber(v: number): string {
  const a = Math.abs(v)
  const trim = (x: number) => String(Number(x.toPrecision(3)))
  if (a >= 1e6) return `${trim(v / 1e6)}M`
  if (a >= 1e3) return `${trim(v / 1e3)}k`
  return trim(v)
}

/** A categorical palette that stays apart in print and for common color blindness (Tableau 10). */
export const COLORS = ['#1f77b4', '#d62728', '#2ca02c', '#ff7f0e', '#9467bd', '#8c564b', '#e377c2', '#7f7f7f', '#17becf', '#bcbd22']

const esc = (s: string) => s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;').replace(/"/g, '&quot;')
/** Rough text width at font size 12 (sans-serif averages ~0.56 em per character). */
const textWidth = (s: string, size = 12) => s.length * size * 0.56
const n1 = (v: number) => v.toFixed(1)

/** Range of an axis over the values it shows. */
function range(axis: Axis, values: number[], zeroBased: boolean): [number, number] {
  const vs = values.filter((v) => Number.isFinite(v) && (!axis.log || v > 0))
  let lo = axis.min ?? (vs.length ? Math.min(...vs) : 1)
  let hi = axis.max ?? (vs.length ? Math.max(...vs) : 10)
  if (axis.log) {
    // A little headroom, then widen to the nearest 1, 2 or 5 × a power of ten.
    if (axis.min === undefined) lo /= 1.08
    if (axis.max === undefined) hi *= 1.08
    const steps = (e: number) => [1, 2, 5].map((m) => m * 10 ** e)
    if (axis.min === undefined) lo = steps(Math.floor(Math.log10(lo) + 1e-9)).filter((v) => v <= lo * 1.0001).at(-1)!
    if (axis.max === undefined) hi = [...steps(Math.floor(Math.log10(hi) - 1e-9)), 10 ** Math.ceil(Math.log10(hi) - 1e-9)].find((v) => v >= hi * 0.9999)!
    if (hi <= lo) hi = lo * 10
    return [lo, hi]
  }
  if (zeroBased && axis.min === undefined) lo = Math.min(0, lo)
  if (hi <= lo) hi = lo + 1
  if (axis.max === undefined) {
    const step = niceStep((hi - lo) / 5)
    hi = Math.ceil(hi / step - 1e-9) * step
    if (axis.min === undefined) lo = Math.floor(lo / step + 1e-9) * step
  }
  return [lo, hi]
}

/** A 1-2-5 step near `raw`. */
function niceStep(raw: number): number {
  const p = 10 ** Math.floor(Math.log10(raw))
  const f = raw / p
  return (f <= 1 ? 1 : f <= 2 ? 2 : f <= 2.5 ? 2.5 : f <= 5 ? 5 : 10) * p
}

/** Automatic ticks over [lo, hi]. */
function autoTicks(axis: Axis, lo: number, hi: number): Tick[] {
  const format = axis.format ?? formatNumber
  const out: number[] = []
  if (axis.log) {
    const decades = Math.log10(hi / lo)
    const mult = decades <= 2.6 ? [1, 2, 5] : decades <= 3.6 ? [1, 3] : [1]
    for (let e = Math.floor(Math.log10(lo)); e <= Math.ceil(Math.log10(hi)); e++) {
      for (const m of mult) {
        const v = m * 10 ** e
        if (v >= lo * 0.999 && v <= hi * 1.001) out.push(v)
      }
    }
  } else {
    const step = niceStep((hi - lo) / 5)
    for (let v = Math.ceil(lo / step - 1e-9) * step; v <= hi + step * 1e-6; v += step) out.push(Number(v.toPrecision(12)))
  }
  return out.map((value) => ({ value, label: format(value) }))
}

/** Draws one legend entry's sample line (and marker) ending at (x + 20, y) and its name after it. */
function legendEntry(out: string[], e: LegendEntry, x: number, y: number): void {
  out.push(`<line x1="${n1(x)}" x2="${n1(x + 20)}" y1="${n1(y)}" y2="${n1(y)}" stroke="${e.color}" stroke-width="2"${e.dash ? ` stroke-dasharray="${e.dash}"` : ''}/>`)
  if (e.markers ?? true) out.push(`<circle cx="${n1(x + 10)}" cy="${n1(y)}" r="3" fill="${e.color}"/>`)
  out.push(`<text x="${n1(x + 24)}" y="${n1(y + 4)}">${esc(e.name)}</text>`)
}

/** Draws one panel into `out` with its plot area at (x, y, w, h). */
function drawPanel(out: string[], p: Panel, x: number, y: number, w: number, h: number, clipId: string): void {
  const entries = p.series.filter((s) => !s.hideInLegend)
  const lw = entries.length ? 34 + Math.max(...entries.map((s) => textWidth(s.name))) : 0
  if (p.legend === 'right' && entries.length) w -= lw + 12
  const xs = p.series.flatMap((s) => s.points.map((pt) => pt.x)).concat(p.bands?.flatMap((b) => [b.from, b.to]) ?? [])
  const ys = p.series.flatMap((s) => s.points.flatMap((pt) => [pt.y, pt.lo ?? pt.y, pt.hi ?? pt.y])).concat(p.hlines?.map((l) => l.y) ?? [])
  const [x0, x1] = range(p.x, xs, false)
  const [y0, y1] = range(p.y, ys, true)
  const scale = (axis: Axis, lo: number, hi: number, from: number, len: number) => (v: number) =>
    axis.log ? from + ((Math.log10(v) - Math.log10(lo)) / (Math.log10(hi) - Math.log10(lo))) * len : from + ((v - lo) / (hi - lo)) * len
  const sx = scale(p.x, x0, x1, x, w)
  const syUp = scale(p.y, y0, y1, 0, h)
  const sy = (v: number) => y + h - syUp(v)

  out.push(`<text x="${x}" y="${y - 12}" font-size="14" font-weight="bold">${esc(p.title)}</text>`)
  out.push(`<clipPath id="${clipId}"><rect x="${x}" y="${y}" width="${w}" height="${h}"/></clipPath>`)
  for (const b of p.bands ?? []) {
    const bx = sx(Math.max(b.from, x0))
    const bw = Math.max(1, sx(Math.min(b.to, x1)) - bx)
    out.push(`<rect x="${n1(bx)}" y="${y}" width="${n1(bw)}" height="${h}" fill="${b.fill ?? '#f3f3f3'}"/>`)
    if (b.label) out.push(`<text x="${n1(bx + bw / 2)}" y="${y + 14}" text-anchor="middle" fill="#555">${esc(b.label)}</text>`)
  }
  // Grid and tick labels.
  for (const t of p.y.ticks ?? autoTicks(p.y, y0, y1)) {
    if (t.value < y0 || t.value > y1) continue
    const ty = n1(sy(t.value))
    out.push(`<line x1="${x}" x2="${x + w}" y1="${ty}" y2="${ty}" stroke="#ddd"/>`)
    out.push(`<text x="${x - 8}" y="${Number(ty) + 4}" text-anchor="end">${esc(t.label)}</text>`)
  }
  for (const t of p.x.ticks ?? autoTicks(p.x, x0, x1)) {
    if (t.value < x0 || t.value > x1) continue
    const tx = n1(sx(t.value))
    if (!p.x.ticks) out.push(`<line x1="${tx}" x2="${tx}" y1="${y}" y2="${y + h}" stroke="#eee"/>`)
    out.push(`<line x1="${tx}" x2="${tx}" y1="${y + h}" y2="${y + h + 4}" stroke="#888"/>`)
    out.push(`<text x="${tx}" y="${y + h + 17}" text-anchor="middle">${esc(t.label)}</text>`)
    if (t.sub) out.push(`<text x="${tx}" y="${y + h + 31}" text-anchor="middle" fill="#666">${esc(t.sub)}</text>`)
  }
  const hasSub = (p.x.ticks ?? []).some((t) => t.sub)
  if (p.x.label) out.push(`<text x="${x + w / 2}" y="${y + h + (hasSub ? 48 : 36)}" text-anchor="middle" fill="#333">${esc(p.x.label)}</text>`)
  if (p.y.label) {
    const cx = x - 64
    const cy = y + h / 2
    out.push(`<text x="${cx}" y="${cy}" text-anchor="middle" fill="#333" transform="rotate(-90 ${cx} ${cy})">${esc(p.y.label)}</text>`)
  }
  for (const l of p.hlines ?? []) {
    if (l.y < y0 || l.y > y1) continue
    const ly = n1(sy(l.y))
    const color = l.color ?? '#c00'
    out.push(`<line x1="${x}" x2="${x + w}" y1="${ly}" y2="${ly}" stroke="${color}" stroke-dasharray="6 4"/>`)
    out.push(`<text x="${x + w - 4}" y="${Number(ly) - 5}" text-anchor="end" fill="${color}">${esc(l.label)}</text>`)
  }
  out.push(`<rect x="${x}" y="${y}" width="${w}" height="${h}" fill="none" stroke="#888"/>`)
  // Series, clipped to the plot area.
  out.push(`<g clip-path="url(#${clipId})">`)
  const shown = (pt: { x: number; y: number }) => Number.isFinite(pt.y) && Number.isFinite(pt.x) && (!p.y.log || pt.y > 0) && (!p.x.log || pt.x > 0)
  for (const s of p.series) {
    let d = ''
    let pen = false
    for (const pt of s.points) {
      if (!shown(pt)) {
        pen = false
        continue
      }
      d += `${pen ? 'L' : 'M'}${n1(sx(pt.x))},${n1(sy(pt.y))} `
      pen = true
    }
    if (d) out.push(`<path d="${d.trim()}" fill="none" stroke="${s.color}" stroke-width="2"${s.dash ? ` stroke-dasharray="${s.dash}"` : ''}/>`)
    for (const pt of s.points.filter(shown)) {
      if (pt.lo === undefined || pt.hi === undefined || (p.y.log && pt.lo <= 0)) continue
      const wx = n1(sx(pt.x))
      out.push(`<line x1="${wx}" x2="${wx}" y1="${n1(sy(pt.lo))}" y2="${n1(sy(pt.hi))}" stroke="${s.color}" stroke-width="1.2"/>`)
      for (const v of [pt.lo, pt.hi]) out.push(`<line x1="${n1(sx(pt.x) - 4)}" x2="${n1(sx(pt.x) + 4)}" y1="${n1(sy(v))}" y2="${n1(sy(v))}" stroke="${s.color}" stroke-width="1.2"/>`)
    }
    if (s.markers ?? true) for (const pt of s.points.filter(shown)) out.push(`<circle cx="${n1(sx(pt.x))}" cy="${n1(sy(pt.y))}" r="3.5" fill="${s.color}"/>`)
  }
  out.push('</g>')
  // Legend: one entry a line, on a white box in a corner (or right of the plot).
  if (p.legend === 'none' || entries.length === 0) return
  const lh = 8 + entries.length * 17
  const corner = p.legend ?? 'top-left'
  const lx = corner === 'right' ? x + w + 12 : corner.endsWith('left') ? x + 8 : x + w - lw - 8
  const ly = corner === 'right' || corner.startsWith('top') ? y + 8 : y + h - lh - 8
  out.push(`<rect x="${n1(lx)}" y="${n1(ly)}" width="${n1(lw)}" height="${lh}" fill="white" fill-opacity="0.85" stroke="#ccc"/>`)
  entries.forEach((s, i) => legendEntry(out, s, lx + 6, ly + 4 + 17 * i + 9))
}

/** Renders `chart` as an SVG document (white background, 12 px sans-serif). */
export function renderChart(chart: Chart): string {
  const W = chart.width ?? 900
  const cols = Math.max(1, chart.columns ?? 1)
  const M = { l: 84, r: 20 } // per column: room for y tick labels and the y axis label; right margin
  // Shared legend: entries in rows that fit the width.
  const legendRows: LegendEntry[][] = []
  const entryW = (e: LegendEntry) => 24 + textWidth(e.name) + 22
  for (const e of chart.legend ?? []) {
    const last = legendRows.at(-1)
    if (last && last.reduce((w, x) => w + entryW(x), 0) + entryW(e) <= W - 40) last.push(e)
    else legendRows.push([e])
  }
  const legendTop = chart.title ? 40 : 14
  let top = legendTop + legendRows.length * 18 + 36 // then room for the first panel's title
  if (!chart.title && legendRows.length === 0) top = 36
  const below = (p: Panel) => ((p.x.ticks ?? []).some((t) => t.sub) ? 36 : 22) + (p.x.label ? 22 : 0) // tick labels + axis label
  const cell = W / cols
  const panelW = cell - M.l - M.r
  const rows: Panel[][] = []
  for (let i = 0; i < chart.panels.length; i += cols) rows.push(chart.panels.slice(i, i + cols))
  const out: string[] = []
  let y = top
  const body: string[] = []
  legendRows.forEach((row, r) => {
    let lx = (W - row.reduce((w, e) => w + entryW(e), 0) + 22) / 2
    for (const e of row) {
      legendEntry(body, e, lx, legendTop + r * 18 + 4)
      lx += entryW(e)
    }
  })
  rows.forEach((row, r) => {
    const h = Math.max(...row.map((p) => p.height ?? 240))
    row.forEach((p, c) => drawPanel(body, p, c * cell + M.l, y, panelW, h, `clip-${r}-${c}`))
    y += h + Math.max(...row.map(below)) + 44 // below the axis, then the next panel's title
  })
  const H = Math.ceil(y - 44 + 10 + (chart.footer ? 20 : 0))
  out.push(`<svg xmlns="http://www.w3.org/2000/svg" width="${W}" height="${H}" viewBox="0 0 ${W} ${H}" font-family="sans-serif" font-size="12">`)
  out.push(`<rect width="${W}" height="${H}" fill="white"/>`)
  if (chart.title) out.push(`<text x="${W / 2}" y="22" text-anchor="middle" font-size="16" font-weight="bold">${esc(chart.title)}</text>`)
  out.push(...body)
  if (chart.footer) out.push(`<text x="${W / 2}" y="${H - 8}" text-anchor="middle" fill="#666">${esc(chart.footer)}</text>`)
  out.push('</svg>')
  return out.join('\n')
}

/** Where `rsvg-convert` is, if installed. */
function rsvgConvert(): string | null {
  for (const p of ['/usr/bin/rsvg-convert', '/usr/local/bin/rsvg-convert']) if (existsSync(p)) return p
  return null
}

/**
 * Writes `svg` to `svgPath` (ending in `.svg`) and converts it to a PNG next
 * to it with `rsvg-convert` when installed. Returns both paths (`png` null
 * when there is no converter or it failed) and a one-line note to print.
 */
export function writeChart(svgPath: string, svg: string): { svg: string; png: string | null; note: string } {
  writeFileSync(svgPath, svg)
  const bin = rsvgConvert()
  const png = svgPath.replace(/\.svg$/, '') + '.png'
  if (!bin) return { svg: svgPath, png: null, note: `chart: ${svgPath} (no rsvg-convert installed, so no PNG)` }
  try {
    execFileSync(bin, ['-o', png, svgPath], { stdio: ['ignore', 'ignore', 'pipe'] })
    return { svg: svgPath, png, note: `chart: ${svgPath} and ${png}` }
  } catch (err) {
    return { svg: svgPath, png: null, note: `chart: ${svgPath} (rsvg-convert failed: ${(err as Error).message.split('\n')[0]})` }
  }
}
