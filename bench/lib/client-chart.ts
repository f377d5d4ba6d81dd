/**
 * The client benchmark's chart: side-by-side panels, each a line chart with a
 * log x axis (document size in edits) and a linear y axis from 0, optional
 * min–max whiskers per point. Written as SVG, converted to PNG with
 * `rsvg-convert` when it is installed.
 */
import { execFileSync } from 'node:child_process'
import { existsSync, writeFileSync } from 'node:fs'

/** One line. */
export interface ChartSeries {
  name: string
  color: string
  dashed?: boolean
  /** Points in x order; `lo`/`hi` draw a whisker. */
  points: { x: number; y: number; lo?: number; hi?: number }[]
}

/** One panel. */
export interface ChartPanel {
  title: string
  xLabel: string
  yLabel: string
  series: ChartSeries[]
}

const W = 540
const H = 380
const M = { l: 64, r: 18, t: 44, b: 54 }

const esc = (s: string) => s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;')

/** "1k", "10k", "260k", "1.5M" for tick labels. */
export function shortNumber(x: number): string {
  if (x >= 1e6) return `${+(x / 1e6).toFixed(1)}M`
  if (x >= 1e3) return `${Math.round(x / 1e3)}k`
  return String(x)
}

function niceMax(v: number): number {
  if (v <= 0) return 1
  const p = 10 ** Math.floor(Math.log10(v))
  for (const m of [1, 1.5, 2, 2.5, 3, 4, 5, 6, 8, 10]) if (m * p >= v) return m * p
  return 10 * p
}

function panelSvg(p: ChartPanel, ox: number): string {
  const xs = [...new Set(p.series.flatMap((s) => s.points.map((q) => q.x)))].sort((a, b) => a - b)
  // headroom above the data for the legend in the top-left corner
  const ymax = niceMax(Math.max(...p.series.flatMap((s) => s.points.map((q) => Math.max(q.y, q.hi ?? 0)))) * 1.4)
  const lx0 = Math.log10(xs[0]!) - 0.25
  const lx1 = Math.log10(xs[xs.length - 1]!) + 0.25
  const pw = W - M.l - M.r
  const ph = H - M.t - M.b
  const X = (x: number) => ox + M.l + ((Math.log10(x) - lx0) / (lx1 - lx0)) * pw
  const Y = (y: number) => M.t + ph - (y / ymax) * ph
  const out: string[] = []
  out.push(`<text x="${ox + W / 2}" y="22" text-anchor="middle" font-size="15" font-weight="bold">${esc(p.title)}</text>`)
  for (let i = 0; i <= 5; i++) {
    const v = (ymax * i) / 5
    out.push(`<line x1="${ox + M.l}" x2="${ox + W - M.r}" y1="${Y(v)}" y2="${Y(v)}" stroke="#ddd"/>`)
    out.push(`<text x="${ox + M.l - 6}" y="${Y(v) + 4}" text-anchor="end" font-size="12">${+v.toFixed(1)}</text>`)
  }
  for (const x of xs) {
    out.push(`<line x1="${X(x)}" x2="${X(x)}" y1="${M.t}" y2="${M.t + ph}" stroke="#eee"/>`)
    out.push(`<text x="${X(x)}" y="${M.t + ph + 17}" text-anchor="middle" font-size="12">${shortNumber(x)}</text>`)
  }
  out.push(`<rect x="${ox + M.l}" y="${M.t}" width="${pw}" height="${ph}" fill="none" stroke="#888"/>`)
  out.push(`<text x="${ox + M.l + pw / 2}" y="${H - 12}" text-anchor="middle" font-size="13">${esc(p.xLabel)}</text>`)
  out.push(`<text transform="translate(${ox + 16},${M.t + ph / 2}) rotate(-90)" text-anchor="middle" font-size="13">${esc(p.yLabel)}</text>`)
  p.series.forEach((s, i) => {
    const dash = s.dashed ? ' stroke-dasharray="6 4"' : ''
    out.push(`<polyline fill="none" stroke="${s.color}" stroke-width="2.2"${dash} points="${s.points.map((q) => `${X(q.x).toFixed(1)},${Y(q.y).toFixed(1)}`).join(' ')}"/>`)
    for (const q of s.points) {
      if (q.lo !== undefined && q.hi !== undefined) {
        out.push(`<line x1="${X(q.x)}" x2="${X(q.x)}" y1="${Y(q.lo)}" y2="${Y(q.hi)}" stroke="${s.color}" stroke-width="1.2"/>`)
        for (const v of [q.lo, q.hi]) out.push(`<line x1="${X(q.x) - 4}" x2="${X(q.x) + 4}" y1="${Y(v)}" y2="${Y(v)}" stroke="${s.color}" stroke-width="1.2"/>`)
      }
      out.push(`<circle cx="${X(q.x)}" cy="${Y(q.y)}" r="3.5" fill="${s.color}"/>`)
    }
    const ly = M.t + 16 + i * 18
    out.push(`<line x1="${ox + M.l + 10}" x2="${ox + M.l + 34}" y1="${ly - 4}" y2="${ly - 4}" stroke="${s.color}" stroke-width="2.2"${dash}/>`)
    out.push(`<text x="${ox + M.l + 40}" y="${ly}" font-size="12">${esc(s.name)}</text>`)
  })
  return out.join('\n')
}

/** Renders `panels` side by side as one SVG document, with `footer` as small text at the bottom. */
export function chartSvg(panels: ChartPanel[], footer = ''): string {
  const width = W * panels.length
  const height = H + (footer ? 18 : 0)
  return [
    `<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}" viewBox="0 0 ${width} ${height}" font-family="DejaVu Sans, Arial, sans-serif">`,
    `<rect width="${width}" height="${height}" fill="#fff"/>`,
    ...panels.map((p, i) => panelSvg(p, i * W)),
    footer ? `<text x="8" y="${height - 6}" font-size="11" fill="#555">${esc(footer)}</text>` : '',
    '</svg>',
  ].join('\n')
}

/** Writes `svg` to `svgPath` and, when `rsvg-convert` is installed, the PNG beside it. Returns a one-line note of what was written. */
export function writeChart(svgPath: string, svg: string): string {
  writeFileSync(svgPath, svg)
  const bin = ['/usr/bin/rsvg-convert', '/usr/local/bin/rsvg-convert'].find((p) => existsSync(p))
  if (!bin) return `chart: ${svgPath} (rsvg-convert not installed: no PNG)`
  const png = svgPath.replace(/\.svg$/, '.png')
  try {
    execFileSync(bin, ['-o', png, svgPath])
  } catch (err) {
    return `chart: ${svgPath} (rsvg-convert failed: ${(err as Error).message.split('\n')[0]})`
  }
  return `chart: ${svgPath}, ${png}`
}
