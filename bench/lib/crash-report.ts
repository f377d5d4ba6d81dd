/**
 * Tables and the chart of a crash run (`crash-driver.ts`): a progress line per
 * round, a summary table and a per-tampering table in Markdown (printed by
 * `npm run soak -- --crash` and pasted into bench/README.md), and an SVG of
 * the rounds (confirmed vs unconfirmed updates per kill; restart time per
 * kill, coloured by tampering).
 */
import type { CrashRound, CrashRun } from './crash-driver.ts'
import { TAMPERS, type Tamper } from './crash-tamper.ts'

const fmt = (n: number) => Math.round(n).toLocaleString('en-US')

/** Nearest-rank percentile of `xs` (0 for an empty list). */
export function percentile(xs: number[], p: number): number {
  if (xs.length === 0) return 0
  const s = [...xs].sort((a, b) => a - b)
  return s[Math.min(s.length - 1, Math.max(0, Math.ceil((p / 100) * s.length) - 1))]!
}

/** One progress line for a finished round. */
export function roundLine(r: CrashRound): string {
  const tamper = `${r.tamper}${r.how ? `/${r.how}` : ''}${r.early ? ' (early kill)' : ''}`
  return `round ${String(r.round).padStart(3)}  ${tamper.padEnd(26)} kill +${String(r.killAfterMs).padStart(3)} ms  sent ${String(r.sent).padStart(5)}  acked ${String(r.acked).padStart(5)}  checked ${String(r.checked).padStart(6)}  lost ${r.lost}  wal ${String(Math.round(r.walBytes / 1024)).padStart(5)} KiB (${r.committedFrames} committed frames)  tail ${r.tailBytes} B → discarded ${r.discardedBytes} B${r.staleBytes ? ` + ${r.staleBytes} B stale` : ""}  restart ${Math.round(r.restartMs)} ms  rows ${r.rows}${r.failures.length ? `  FAILED: ${r.failures.join('; ')}` : ''}`
}

/** The summary table (Markdown). */
export function summaryTable(run: CrashRun, setup: string): string {
  const rs = run.rounds
  const restarts = rs.filter((r) => r.restartMs > 0).map((r) => r.restartMs)
  const torn = rs.filter((r) => r.torn)
  // The driver fails a round unless the warning's discarded + stale bytes equal the tail exactly.
  const tornReported = torn.filter((r) => r.failures.length === 0 && r.discardedBytes + r.staleBytes === r.tailBytes)
  const asStale = torn.filter((r) => r.tamper === 'garbage' && r.staleBefore > 0)
  const natural = rs.filter((r) => r.discardableBefore > 0)
  const stale = rs.filter((r) => r.staleBytes > 0)
  const count = (k: Tamper) => rs.filter((r) => r.tamper === k).length
  const rows = rs.map((r) => r.rows)
  const lines: [string, string][] = [
    ['setup', setup],
    ['rounds = SIGKILLs', `${rs.length} (${rs.filter((r) => r.early).length} while the rooms were loading, the rest mid-write)`],
    ['updates sent / confirmed (`[101, n]` received) before the kills', `${fmt(rs.reduce((s, r) => s + r.sent, 0))} / ${fmt(rs.reduce((s, r) => s + r.acked, 0))}`],
    ['confirmed updates checked after the restarts (each restart checks all so far)', fmt(rs.reduce((s, r) => s + r.checked, 0))],
    ['**confirmed updates lost**', `**${rs.reduce((s, r) => s + r.lost, 0)}**`],
    ['start-up failures', String(run.failures.filter((f) => f.includes('start-up failed')).length)],
    ['torn tails made (cut inside uncommitted frames / partial frame after the last commit / garbage appended)', `${torn.length} (${torn.filter((r) => r.how === 'cut').length} / ${torn.filter((r) => r.how === 'partial-frame').length} / ${torn.filter((r) => r.tamper === 'garbage').length}), ${fmt(torn.reduce((s, r) => s + r.discardedBytes, 0))} bytes discarded`],
    ['torn tails reported at start-up with the exact byte count', `${tornReported.length} / ${torn.length} (${asStale.length} garbage tails appended after stale frames reported as left from an earlier WAL cycle, the rest as discarded)`],
    ['torn or uncommitted tails the kill itself left (before tampering), reported and discarded', `${natural.length} rounds, ${fmt(natural.reduce((s, r) => s + r.discardableBefore, 0))} bytes`],
    ['rounds whose WAL also held stale frames of an earlier cycle (counted apart, not discarded data)', String(stale.length)],
    ['`-shm` missing / empty / stale from an earlier kill', `${count('shm-missing')} / ${count('shm-empty')} / ${count('shm-stale')}`],
    ['unclean-shutdown warning at start-up', `${rs.filter((r) => r.warned).length} / ${rs.length} rounds`],
    ['restart time (spawn → listening) p50 / p99 / max', `${fmt(percentile(restarts, 50))} / ${fmt(percentile(restarts, 99))} / ${fmt(Math.max(0, ...restarts))} ms`],
    ['WAL left by the kill: committed frames median / max', `${fmt(percentile(rs.map((r) => r.committedFrames), 50))} / ${fmt(Math.max(0, ...rs.map((r) => r.committedFrames)))} (${fmt(Math.max(0, ...rs.map((r) => r.walBytes)) / 1024)} KiB max)`],
    ['rows in the database after a restart min / median / max', `${fmt(Math.min(...rows))} / ${fmt(percentile(rows, 50))} / ${fmt(Math.max(...rows))}`],
    ['CRC failures / rows that do not apply / pending structs', rs.some((r) => r.failures.some((f) => /CRC|apply|pending/.test(f))) ? 'see failures' : '0 / 0 / 0'],
    ['final SIGTERM', `exit ${run.finalExit}`],
    ['duration', `${(run.ms / 1000).toFixed(0)} s`],
  ]
  return ['| measure | result |', '| --- | --- |', ...lines.map(([a, b]) => `| ${a} | ${b} |`)].join('\n')
}

/** Per-tampering table (Markdown). */
export function tamperTable(run: CrashRun): string {
  const out = [
    '| between kill and restart | rounds | confirmed | lost | tail made by tampering: reported as discarded (bytes) | … reported as leftover of an earlier WAL cycle | restart p50 ms |',
    '| --- | ---: | ---: | ---: | ---: | ---: | ---: |',
  ]
  for (const k of TAMPERS) {
    const rs = run.rounds.filter((r) => r.tamper === k)
    if (!rs.length) continue
    const torn = rs.filter((r) => r.torn)
    const discarded = torn.filter((r) => r.discardedBytes > 0)
    const leftover = torn.filter((r) => r.discardedBytes === 0 && r.staleBytes > r.staleBefore)
    const cell = (xs: CrashRound[], bytes: (r: CrashRound) => number) => (torn.length ? `${xs.length} (${fmt(xs.reduce((s, r) => s + bytes(r), 0))})` : '–')
    out.push(
      `| ${k} | ${rs.length} | ${fmt(rs.reduce((s, r) => s + r.acked, 0))} | ${rs.reduce((s, r) => s + r.lost, 0)} | ${cell(discarded, (r) => r.discardedBytes)} | ${cell(leftover, (r) => r.staleBytes - r.staleBefore)} | ${fmt(percentile(rs.map((r) => r.restartMs), 50))} |`,
    )
  }
  return out.join('\n')
}

const COLORS: Record<Tamper, string> = { none: '#888888', tear: '#d62728', garbage: '#ff7f0e', 'shm-missing': '#1f77b4', 'shm-empty': '#17becf', 'shm-stale': '#9467bd' }
const esc = (s: string) => s.replace(/&/g, '&amp;').replace(/</g, '&lt;')

/** The chart (SVG text): per round, confirmed vs unconfirmed updates at the kill; restart time coloured by tampering. */
export function crashSvg(run: CrashRun, title: string): string {
  const rs = run.rounds
  const W = 960
  const left = 64
  const right = 20
  const plotW = W - left - right
  const bw = plotW / Math.max(1, rs.length)
  const top1 = 56
  const h1 = 170
  const top2 = top1 + h1 + 56
  const h2 = 150
  const H = top2 + h2 + 70
  const maxSent = Math.max(1, ...rs.map((r) => r.sent))
  const maxMs = Math.max(1, ...rs.map((r) => r.restartMs))
  const nice = (m: number) => {
    const p = 10 ** Math.floor(Math.log10(m))
    return [1, 2, 2.5, 5, 10].map((k) => k * p).find((v) => v >= m)!
  }
  const yMax1 = nice(maxSent)
  const yMax2 = nice(maxMs)
  const o: string[] = []
  o.push(`<svg xmlns="http://www.w3.org/2000/svg" width="${W}" height="${H}" viewBox="0 0 ${W} ${H}" font-family="DejaVu Sans, Arial, sans-serif" font-size="12">`)
  o.push(`<rect width="${W}" height="${H}" fill="white"/>`)
  o.push(`<text x="${W / 2}" y="22" text-anchor="middle" font-size="15" font-weight="bold">${esc(title)}</text>`)
  const axis = (top: number, h: number, yMax: number, label: string) => {
    for (let i = 0; i <= 4; i++) {
      const y = top + h - (h * i) / 4
      o.push(`<line x1="${left}" x2="${W - right}" y1="${y}" y2="${y}" stroke="#e5e5e5"/>`)
      o.push(`<text x="${left - 6}" y="${y + 4}" text-anchor="end">${fmt((yMax * i) / 4)}</text>`)
    }
    o.push(`<text transform="translate(16 ${top + h / 2}) rotate(-90)" text-anchor="middle">${esc(label)}</text>`)
    o.push(`<line x1="${left}" x2="${left}" y1="${top}" y2="${top + h}" stroke="#333"/><line x1="${left}" x2="${W - right}" y1="${top + h}" y2="${top + h}" stroke="#333"/>`)
  }
  axis(top1, h1, yMax1, 'updates per round')
  o.push(`<text x="${left}" y="${top1 - 10}" font-weight="bold">Updates sent before each kill: confirmed (all found after the restart) and unconfirmed — lost: ${rs.reduce((s, r) => s + r.lost, 0)}</text>`)
  rs.forEach((r, i) => {
    const x = left + i * bw + bw * 0.12
    const w = bw * 0.76
    const ha = (h1 * r.acked) / yMax1
    const hs = (h1 * (r.sent - r.acked)) / yMax1
    o.push(`<rect x="${x.toFixed(1)}" y="${(top1 + h1 - ha).toFixed(1)}" width="${w.toFixed(1)}" height="${ha.toFixed(1)}" fill="#2ca02c"/>`)
    o.push(`<rect x="${x.toFixed(1)}" y="${(top1 + h1 - ha - hs).toFixed(1)}" width="${w.toFixed(1)}" height="${hs.toFixed(1)}" fill="#c7e9c0"/>`)
    if (r.lost) o.push(`<text x="${(x + w / 2).toFixed(1)}" y="${top1 + 12}" text-anchor="middle" fill="red">✗</text>`)
  })
  axis(top2, h2, yMax2, 'restart ms')
  o.push(`<text x="${left}" y="${top2 - 10}" font-weight="bold">Restart after each kill (spawn → listening, WAL recovery included), by what was done to the files</text>`)
  rs.forEach((r, i) => {
    const x = left + i * bw + bw * 0.12
    const w = bw * 0.76
    const h = (h2 * r.restartMs) / yMax2
    o.push(`<rect x="${x.toFixed(1)}" y="${(top2 + h2 - h).toFixed(1)}" width="${w.toFixed(1)}" height="${h.toFixed(1)}" fill="${COLORS[r.tamper]}"/>`)
    if (rs.length <= 60 && (i % 5 === 0 || i === rs.length - 1)) o.push(`<text x="${(x + w / 2).toFixed(1)}" y="${top2 + h2 + 14}" text-anchor="middle">${i}</text>`)
  })
  o.push(`<text x="${left + plotW / 2}" y="${top2 + h2 + 30}" text-anchor="middle">round</text>`)
  const legend: [string, string][] = [['confirmed', '#2ca02c'], ['sent, unconfirmed', '#c7e9c0'], ...TAMPERS.map((k) => [k === 'none' ? 'no tampering' : k, COLORS[k]] as [string, string])]
  let lx = left
  for (const [name, color] of legend) {
    o.push(`<rect x="${lx}" y="${H - 22}" width="12" height="12" fill="${color}"/><text x="${lx + 16}" y="${H - 12}">${esc(name)}</text>`)
    lx += 30 + name.length * 7
  }
  o.push('</svg>')
  return o.join('\n')
}
