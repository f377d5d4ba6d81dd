/**
 * The client benchmark proper (entered through `bench/client.ts`, which puts
 * it inside isolated-net and builds the client first): open times per
 * document size and source, keystroke latency per path and document size,
 * tables on stdout, the chart, and the Client block of bench/README.md.
 */
import { cpus, loadavg, tmpdir } from 'node:os'
import { join } from 'node:path'
import { launchBrowser, root, startE2EServer, stats } from '../../test/e2e/harness.ts'
import { benchDocs } from './client-docs.ts'
import { measureOpen, type OpenResult } from './client-open.ts'
import { measureLatency, type LatencyResult } from './client-latency.ts'
import { latencyTable, openTable, rewriteMarked } from './client-report.ts'
import { COLORS, formatNumber, renderChart, writeChart, type Panel } from './chart.ts'

/** Settings of one run (see `parseArgs`). */
export interface ClientBenchOptions {
  quick: boolean
  /** Document sizes (trace edits) whose open time is measured. */
  sizes: number[]
  /** Opens per size and source. */
  reps: number
  /** Document sizes in which keystroke latency is measured. */
  latencySizes: number[]
  /** Measured keystrokes per path and size. */
  samples: number
  warmup: number
  /** Write bench/README.md's Client block (never with --quick). */
  readme: boolean
  /** SVG path (the PNG goes beside it). */
  chart: string
}

const TRACE_EDITS = 259_778

function numbers(v: string): number[] {
  return v.split(',').map((x) => Math.min(TRACE_EDITS, Number(x.replace(/_/g, '')))).filter((x) => x > 0)
}

/** Parses `--quick --reps N --sizes a,b --latency-sizes a,b --samples N --warmup N --no-readme --chart FILE.svg`. */
export function parseArgs(argv: string[]): ClientBenchOptions {
  const get = (name: string) => {
    const i = argv.findIndex((a) => a === `--${name}` || a.startsWith(`--${name}=`))
    if (i < 0) return undefined
    return argv[i]!.includes('=') ? argv[i]!.slice(argv[i]!.indexOf('=') + 1) : argv[i + 1]
  }
  const quick = argv.includes('--quick')
  return {
    quick,
    sizes: numbers(get('sizes') ?? (quick ? '1000,10000' : `1000,10000,100000,${TRACE_EDITS}`)),
    reps: Number(get('reps') ?? (quick ? 2 : 7)),
    latencySizes: numbers(get('latency-sizes') ?? (quick ? '1000' : `1000,10000,100000,${TRACE_EDITS}`)),
    samples: Number(get('samples') ?? (quick ? 20 : 200)),
    warmup: Number(get('warmup') ?? 5),
    readme: !quick && !argv.includes('--no-readme'),
    chart: get('chart') ?? (quick ? join(tmpdir(), 'murmur-client-quick.svg') : join(root, 'bench/client.svg')),
  }
}

function chart(open: OpenResult[], latency: LatencyResult[], footer: string): string {
  const edits = { label: 'document size (automerge-paper edits)', log: true, ticks: open.map((r) => ({ value: r.doc.edits, label: formatNumber(r.doc.edits) })) }
  const openPanel: Panel = {
    title: 'Open a document in Chromium',
    x: edits,
    y: { label: 'ms until the editor shows it (median, min–max)' },
    legend: 'top-left',
    series: [
      { name: 'from the server (empty browser)', color: COLORS[0], points: open.map((r) => ({ x: r.doc.edits, ...yLoHi(r.server.map((s) => s.pageMs)) })) },
      { name: 'from IndexedDB (offline reload)', color: COLORS[2], points: open.map((r) => ({ x: r.doc.edits, ...yLoHi(r.idb.map((s) => s.pageMs)) })) },
      { name: 'of which Yjs apply + editor update (server)', color: COLORS[0], dash: '6 4', points: open.map((r) => ({ x: r.doc.edits, y: stats(r.server.map((s) => s.apply.yjsMs + s.apply.editorMs)).median })) },
      { name: 'of which Yjs apply (IndexedDB)', color: COLORS[2], dash: '6 4', points: open.map((r) => ({ x: r.doc.edits, y: stats(r.idb.map((s) => s.apply.yjsMs)).median })) },
    ],
  }
  const lat = (pick: (r: LatencyResult) => number[], q: 'median' | 'p99') => latency.map((r) => ({ x: r.doc.edits, y: stats(pick(r))[q] }))
  const latencyPanel: Panel = {
    title: 'Keystroke → other browser’s Y.Doc (ms)',
    x: { ...edits, ticks: latency.map((r) => ({ value: r.doc.edits, label: formatNumber(r.doc.edits) })) },
    y: { label: 'ms' },
    legend: 'right',
    series: [
      { name: 'direct (WebRTC) median', color: COLORS[2], points: lat((r) => r.direct.ms, 'median') },
      { name: 'direct (WebRTC) p99', color: COLORS[2], dash: '6 4', points: lat((r) => r.direct.ms, 'p99') },
      { name: 'via server median', color: COLORS[1], points: lat((r) => r.viaServer.ms, 'median') },
      { name: 'via server p99', color: COLORS[1], dash: '6 4', points: lat((r) => r.viaServer.ms, 'p99') },
    ],
  }
  return renderChart({ footer, width: 900, panels: latency.length ? [openPanel, latencyPanel] : [openPanel] })
}

function yLoHi(xs: number[]) {
  const s = stats(xs)
  return { y: s.median, lo: s.min, hi: s.max }
}

/** Runs the benchmark with `opts`; prints the tables; writes the chart and (unless quick) the README block. */
export async function runClientBench(opts: ClientBenchOptions): Promise<void> {
  const started = Date.now()
  const load0 = loadavg()[0]!
  console.log(`client benchmark: open ${opts.sizes.join('/')} edits × ${opts.reps} per source; latency in ${opts.latencySizes.join('/')} edits × ${opts.samples} keystrokes per path${opts.quick ? ' (quick)' : ''}`)
  const docs = benchDocs([...new Set([...opts.sizes, ...opts.latencySizes])])
  const docOf = (n: number) => docs.find((d) => d.edits === n)!
  const browser = await launchBrowser()
  const open: OpenResult[] = []
  const latency: LatencyResult[] = []
  try {
    const server = await startE2EServer()
    try {
      for (const n of opts.sizes) {
        const t = Date.now()
        open.push(await measureOpen(browser, server, docOf(n), opts.reps))
        const r = open[open.length - 1]!
        console.log(`  open ${n} edits: server ${stats(r.server.map((s) => s.pageMs)).median} ms, IndexedDB ${stats(r.idb.map((s) => s.pageMs)).median} ms (${((Date.now() - t) / 1000).toFixed(0)} s)`)
      }
    } finally {
      await server.stop()
    }
    for (const n of opts.latencySizes) {
      const t = Date.now()
      latency.push(await measureLatency(browser, docOf(n), { samples: opts.samples, warmup: opts.warmup }))
      const r = latency[latency.length - 1]!
      console.log(`  latency in ${n} edits: direct ${stats(r.direct.ms).median} ms, via server ${stats(r.viaServer.ms).median} ms (${((Date.now() - t) / 1000).toFixed(0)} s)`)
    }
  } finally {
    await browser.close().catch(() => {})
  }
  const version = browser.version()
  const secs = Math.round((Date.now() - started) / 1000)
  const setup = `${cpus()[0]?.model.trim() ?? 'CPU'} × ${cpus().length} (shared with other jobs: load average ${load0.toFixed(1)} at the start, ${loadavg()[0]!.toFixed(1)} at the end), Chromium ${version} headless, Node ${process.version}, inside isolated-net (WebRTC over a veth pair, no STUN/TURN). Open: ${opts.reps} opens per size and source; latency: ${opts.warmup} warm-up + ${opts.samples} keystrokes per path and size. Run took ${secs} s (${new Date().toISOString().slice(0, 10)}).`
  const tables = `**Open time** (ms; "shown" = page clock from navigation start until the session holds the whole text and the editor shows its first line, median and range over the opens. Then medians: when the app had started (its \`DocSession\` exists), had loaded its local copy (empty in a fresh browser; sampled once per frame), had the backup socket open, and when the transaction bringing the text began — all on the page clock; how long that transaction took in Yjs (decode + integrate) and in its observers (y-codemirror computes the delta, CodeMirror updates its state and the visible DOM; 0 when the editor is created only after the text is loaded, as from IndexedDB); rest = from the end of that transaction to shown (creating the editor when it did not exist yet, layout, paint, the next frame); wall clock = Node's view of goto/reload → shown, with Playwright's round trips):\n\n${openTable(open)}\n\n**Keystroke latency** (ms from the keydown in the sender's page to the change in the receiver's Y.Doc — CodeMirror is updated in the same task; "next frame" = to the receiver's next animation frame after it):\n\n${latencyTable(latency)}`
  console.log(`\n${tables}\n\n${setup}`)
  console.log(writeChart(opts.chart, chart(open, latency, `murmur client benchmark, ${new Date().toISOString().slice(0, 10)}; Chromium ${version}; 2 shared cores`)).note)
  if (opts.readme) {
    const block = `\`npm run bench -- client\` (\`bench/client.ts\`), ${secs} s:\n\n${tables}\n\n![open time and keystroke latency vs document size](client.png)\n\n${setup}`
    rewriteMarked(join(root, 'bench/README.md'), 'client', block, '## Client', '## Fuzzing')
    console.log('bench/README.md: Client block rewritten')
  }
}
