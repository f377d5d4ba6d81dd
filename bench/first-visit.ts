/**
 * First-visit benchmark (`npm run bench -- first-visit`, or
 * `node --import tsx bench/first-visit.ts [--before <git ref>] [--reps N] [--quick]`):
 * what a person who gets a document link waits for on a slow connection.
 * Chromium with its own network emulation (Fast 3G: 1.6 Mbit/s, 150 ms; 4G:
 * 9 Mbit/s, 60 ms) opens `/d/<id>` of a real server holding a 4 KB Markdown
 * document, first with an empty cache, then again once the service worker
 * and IndexedDB hold it. Prints time to text and bytes before text per
 * profile; with `--before <ref>` it measures that commit the same way in the
 * same run (its server and its client, built from `git archive`). Writes
 * bench/first-visit.svg/.png (not with `--quick`). No WebRTC peer is involved,
 * so it runs on loopback; nothing leaves the machine.
 */
import { readFileSync, rmSync } from 'node:fs'
import { cpus, loadavg } from 'node:os'
import { join, resolve } from 'node:path'
import * as Y from 'yjs'
import { chromium, type Browser } from 'playwright-core'
import { CHROMIUM_ARGS, chromiumPath, stats, testDocId } from '../test/e2e/harness.ts'
import { startServer } from '../test/helpers/server.ts'
import { buildClient } from './lib/client-build.ts'
import { pushDoc, type BenchDoc } from './lib/client-docs.ts'
import { checkoutAndBuild, type Checkout } from './lib/checkout.ts'
import { COLORS, renderChart, writeChart, type Series } from './lib/chart.ts'
import { firstAndRepeat, PROFILES, type VisitPair } from './lib/first-visit-run.ts'

const root = resolve(import.meta.dirname, '..')
const argv = process.argv.slice(2)
const arg = (name: string) => {
  const i = argv.indexOf(name)
  return i >= 0 ? argv[i + 1] : undefined
}
const quick = argv.includes('--quick')
const reps = Number(arg('--reps') ?? (quick ? 1 : 3))
const before = arg('--before')

/** The document: the first 4 KB of this repository's README (real Markdown). */
function benchDoc(): BenchDoc {
  const readme = readFileSync(join(root, 'README.md'), 'utf8')
  const text = readme.slice(0, readme.indexOf('\n', 4000))
  const doc = new Y.Doc()
  doc.getText('text').insert(0, text)
  const update = Y.encodeStateAsUpdate(doc)
  doc.destroy()
  return { edits: 1, text, firstLine: text.slice(0, text.indexOf('\n')), update }
}

/** The results of one build: per profile, one pair per repetition. */
interface BuildResult {
  label: string
  runs: Map<string, VisitPair[]>
}

async function measureBuild(label: string, clientDir: string, checkout: string | undefined, doc: BenchDoc): Promise<BuildResult> {
  const server = await startServer({ root: checkout, args: ['--client', clientDir] })
  let browser: Browser | null = null
  const result: BuildResult = { label, runs: new Map() }
  try {
    browser = await chromium.launch({ executablePath: chromiumPath(), args: CHROMIUM_ARGS })
    const docId = testDocId('first-visit')
    await pushDoc(server.wsUrl, docId, doc)
    for (const p of PROFILES) {
      const pairs: VisitPair[] = []
      for (let r = 0; r < reps; r++) pairs.push(await firstAndRepeat(browser!, `${server.url}/d/${docId}`, doc.firstLine, p))
      result.runs.set(p.name, pairs)
      const m = (f: (v: VisitPair) => number) => stats(pairs.map(f)).median
      console.log(`  ${label}, ${p.name}: first visit ${m((v) => v.first.textMs)} ms / ${kib(m((v) => v.first.bytes))} KiB, repeat ${m((v) => v.repeat.textMs)} ms`)
    }
  } finally {
    await browser?.close().catch(() => {})
    await server.stop()
  }
  return result
}

const kib = (b: number) => (b / 1024).toFixed(0)
const fmt = (xs: number[]) => {
  const s = stats(xs)
  return reps > 1 ? `**${Math.round(s.median)}** (${Math.round(s.min)}–${Math.round(s.max)})` : `**${Math.round(s.median)}**`
}

function table(results: BuildResult[]): string {
  const rows = [
    '| build | network | first visit: text visible, ms | KiB before text | requests before text | repeat visit: text visible, ms | KiB before text |',
    '| --- | --- | ---: | ---: | ---: | ---: | ---: |',
  ]
  for (const r of results) {
    for (const p of PROFILES) {
      const v = r.runs.get(p.name)!
      rows.push(
        `| ${r.label} | ${p.name} (${p.downMbit} Mbit/s, ${p.latencyMs} ms) | ${fmt(v.map((x) => x.first.textMs))} | ${kib(stats(v.map((x) => x.first.bytes)).median)} | ${stats(v.map((x) => x.first.requests)).median} | ${fmt(v.map((x) => x.repeat.textMs))} | ${kib(stats(v.map((x) => x.repeat.bytes)).median)} |`,
      )
    }
  }
  return rows.join('\n')
}

function chart(results: BuildResult[], footer: string): string {
  const cats = ['first', 'repeat'].flatMap((visit) => PROFILES.map((p) => `${p.name} ${visit}`))
  const ticks = cats.map((label, i) => ({ value: i + 1, label }))
  const series = (pick: (v: VisitPair, profile: number, repeat: boolean) => number): Series[] =>
    results.map((r, i) => ({
      name: r.label,
      color: COLORS[i === results.length - 1 ? 2 : 1]!,
      markers: true,
      points: [false, true].flatMap((repeat, ri) =>
        PROFILES.map((p, pi) => {
          const s = stats(r.runs.get(p.name)!.map((v) => pick(v, pi, repeat)))
          return { x: ri * PROFILES.length + pi + 1, y: s.median, lo: s.min, hi: s.max }
        }),
      ),
    }))
  return renderChart({
    title: 'First visit to a document link under Chromium network emulation',
    footer,
    width: 900,
    columns: 2,
    panels: [
      {
        title: 'text visible (ms since navigation start)',
        x: { min: 0.5, max: cats.length + 0.5, ticks },
        y: { label: 'ms' },
        series: series((v, _p, repeat) => (repeat ? v.repeat.textMs : v.first.textMs)),
        hlines: [
          { y: 2000, label: 'target Fast 3G: 2 s' },
          { y: 800, label: 'target 4G: 0.8 s' },
          { y: 300, label: 'target repeat: 0.3 s' },
        ],
        legend: 'top-right',
      },
      {
        title: 'bytes transferred before the text is visible (KiB)',
        x: { min: 0.5, max: cats.length + 0.5, ticks },
        y: { label: 'KiB' },
        series: series((v, _p, repeat) => (repeat ? v.repeat.bytes : v.first.bytes) / 1024),
        hlines: [{ y: 250, label: 'target: 250 KiB' }],
        legend: 'top-right',
      },
    ],
  })
}

async function main(): Promise<void> {
  const started = Date.now()
  const load0 = loadavg()[0]!
  const doc = benchDoc()
  console.log(`first-visit benchmark: ${reps} first + repeat visit(s) per profile and build, document ${doc.text.length} chars${before ? `, against ${before}` : ''}`)
  const results: BuildResult[] = []
  let old: Checkout | null = null
  let built: string | null = null
  try {
    if (before) {
      old = checkoutAndBuild(before)
      results.push(await measureBuild(`before (${old.commit})`, old.clientDir, old.root, doc))
    }
    built = buildClient()
    results.push(await measureBuild('this checkout', built, undefined, doc))
  } finally {
    old?.remove()
    if (built) rmSync(built, { recursive: true, force: true })
  }
  const secs = Math.round((Date.now() - started) / 1000)
  const date = new Date().toISOString().slice(0, 10)
  const setup = `${cpus()[0]?.model.trim() ?? 'CPU'} × ${cpus().length} (shared: load average ${load0.toFixed(1)} at the start, ${loadavg()[0]!.toFixed(1)} at the end), Chromium headless with CDP network emulation (latency per request, throughput caps; no CPU throttling), Node ${process.version}, loopback. ${reps} visit(s) per cell: median (min–max). Run took ${secs} s (${date}).`
  console.log(`\n${table(results)}\n\n${setup}`)
  if (!quick) console.log(writeChart(join(root, 'bench/first-visit.svg'), chart(results, `murmur first-visit benchmark, ${date}; document of ${doc.text.length} chars`)).note)
}

main().then(
  () => process.exit(0),
  (err) => {
    console.error(err)
    process.exit(1)
  },
)
