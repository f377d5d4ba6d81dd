/** Prints a fuzz report as plain-text tables. */
import type { FuzzReport } from './fuzz-run.ts'

function pad(rows: string[][]): string {
  const widths = rows[0].map((_, i) => Math.max(...rows.map((r) => (r[i] ?? '').length)))
  return rows.map((r) => r.map((c, i) => (i === 0 || i === 1 ? c.padEnd(widths[i]) : c.padStart(widths[i]))).join('  ')).join('\n')
}

const fmt = (n: number, digits = 0) => (Number.isFinite(n) ? n.toFixed(digits) : '-')

/** The report as text: per-kind table, close codes, server health, verdicts. */
export function formatReport(r: FuzzReport): string {
  const out: string[] = []
  out.push(`murmur fuzz — seed ${r.seed} (re-run: npm run fuzz -- --seed ${r.seed} --seconds ${r.seconds}${r.phaseSessions ? ` --sessions ${r.phaseSessions.rooms},${r.phaseSessions.victim}` : ''} --concurrency ${r.concurrency}${r.noProbe ? ' --no-probe' : ''}), ${fmt(r.durationMs / 1000, 1)} s wall, sessions: ${r.sessions.rooms} rooms phase + ${r.sessions.victim} victim phase`)
  out.push('')
  const rows: string[][] = [['endpoint', 'kind', 'frames', 'ok', 'closed (code×n)', 'other']]
  for (const [endpoint, kinds] of Object.entries(r.table).sort()) {
    for (const [kind, results] of Object.entries(kinds).sort()) {
      let frames = 0
      let ok = 0
      const closes: [string, number][] = []
      const other: string[] = []
      for (const [res, n] of Object.entries(results)) {
        frames += n
        if (res === 'ok') ok += n
        else if (/^close:\d+$/.test(res)) closes.push([res.slice(6), n])
        else other.push(`${res}×${n}`)
      }
      rows.push([endpoint, kind, String(frames), String(ok), closes.sort().map(([c, n]) => `${c}×${n}`).join(' '), other.sort().join(' ')])
    }
  }
  out.push(pad(rows))
  out.push('')
  out.push(`frames sent per endpoint: ${Object.entries(r.framesPerEndpoint).map(([k, v]) => `${k} ${v}`).join(', ')}`)
  out.push(`close codes seen by clients: ${Object.entries(r.closeCodes).sort().map(([c, n]) => `${c}×${n}`).join(' ')}`)
  out.push(`closes counted by the server (/metrics): ${Object.entries(r.serverCloses).sort().map(([c, n]) => `${c}×${n}`).join(' ')}`)
  out.push(`undocumented close codes: ${r.undocumentedCloseCodes.length ? r.undocumentedCloseCodes.join(', ') : 'none'}`)
  out.push('')
  const b = r.bystander
  const rows2: string[][] = [
    ['check', '', 'result'],
    ['server crashes (exit)', '', String(r.crashes.length)],
    ['server error-level log lines', '', String(r.serverErrors.length)],
    ['/healthz after fuzzing', '', String(r.healthz)],
    ['clean exit on SIGTERM', '', String(r.exitCode)],
    ['server RSS MiB start / max / end', '', `${fmt(r.rss.startMiB)} / ${fmt(r.rss.maxMiB)} / ${fmt(r.rss.endMiB)} (${r.rss.samples} samples)`],
    ['server RSS MiB at each tenth of the run', '', r.rss.timeline.map((v) => fmt(v)).join(' ')],
    ['heap used max MiB', '', fmt(r.heapUsedMaxMiB)],
    ['event-loop lag p99 max (ms)', '', fmt(r.eventLoopLagP99MaxMs, 1)],
    ['bystander edits sent / received / lost', '', b ? `${b.sent} / ${b.received} / ${b.lost}` : 'failed'],
    ['bystander latency p50 / p99 / max (ms)', '', b ? `${fmt(b.p50, 1)} / ${fmt(b.p99, 1)} / ${fmt(b.max, 1)}` : '-'],
    ['bystander disconnects, converged', '', b ? `${b.disconnects}, ${b.converged}` : '-'],
    ['victim updates checked / filtered', '', `${r.victim.checked} / ${r.victim.filtered}`],
    ['victim unchanged (live / after restart)', '', `${r.victim.unchangedLive} / ${r.victim.unchangedStored}`],
    ['protocol violations', '', String(r.violations.length)],
    [
      'slow reader + query flood: RSS growth, /healthz, reader',
      '',
      r.slowReader
        ? `+${fmt(r.slowReader.rssGrowthMiB)} MiB, ${r.slowReader.healthzStatus} in ${fmt(r.slowReader.healthzMs)} ms, ${r.slowReader.reader}${r.slowReader.serverExit ? `, server died (${r.slowReader.serverExit})` : ''} (${r.slowReader.queries} queries × ${fmt(r.slowReader.stateBytes / 1024)} KiB of states)`
        : r.slowReaderError
          ? `failed: ${r.slowReaderError}`
          : 'skipped',
    ],
  ]
  out.push(pad(rows2))
  if (r.violations.length) out.push('', 'violations:', ...r.violations.map((v) => '  ' + v))
  if (r.serverErrors.length) out.push('', 'server errors:', ...r.serverErrors.map((v) => '  ' + v))
  if (r.crashes.length) out.push('', 'crashes:', ...r.crashes.map((c) => `  at ${c.at} ms: exit ${c.code ?? c.signal}, in-flight sessions ${c.inFlight.join(',')}`))
  return out.join('\n')
}
