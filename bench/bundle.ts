/**
 * Bundle analysis (`npm run bench -- bundle`, or `node --import tsx bench/bundle.ts`):
 * builds the client into a temp dir and prints, per chunk, when a document
 * link loads it (with the entry, preloaded with it, or on demand), its size
 * raw / gzip / brotli as served (the build's own `.gz`/`.br` files), and the
 * packages that make it up (their share of the chunk's code after
 * tree-shaking, before minification). The total of the first two groups is
 * what a first visit must download before the text can show.
 */
import { existsSync, mkdtempSync, readFileSync, rmSync, statSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join, resolve } from 'node:path'
import { build, type Plugin } from 'vite'

const root = resolve(import.meta.dirname, '..')

interface ChunkInfo {
  file: string
  isEntry: boolean
  /** Package (or `src`) → rendered bytes. */
  parts: Map<string, number>
}

/** Collects every chunk's modules as rollup/rolldown rendered them. */
function recorder(out: ChunkInfo[]): Plugin {
  return {
    name: 'bench:bundle-recorder',
    generateBundle(_opts, bundle) {
      for (const c of Object.values(bundle)) {
        if (c.type !== 'chunk') continue
        const parts = new Map<string, number>()
        for (const [id, m] of Object.entries(c.modules)) {
          const pkg = /node_modules\/((?:@[^/]+\/)?[^/]+)/.exec(id)?.[1] ?? (id.includes('/src/') ? 'src (murmur)' : 'other')
          parts.set(pkg, (parts.get(pkg) ?? 0) + m.renderedLength)
        }
        out.push({ file: c.fileName, isEntry: c.isEntry, parts })
      }
    },
  }
}

const size = (path: string) => (existsSync(path) ? statSync(path).size : NaN)
const kb = (n: number) => (Number.isNaN(n) ? '–' : (n / 1024).toFixed(1))

async function main(): Promise<void> {
  const outDir = mkdtempSync(join(tmpdir(), 'murmur-bundle-'))
  const chunks: ChunkInfo[] = []
  try {
    await build({ root, configFile: join(root, 'vite.config.ts'), logLevel: 'warn', build: { outDir, emptyOutDir: true }, plugins: [recorder(chunks)] })
    const html = readFileSync(join(outDir, 'index.html'), 'utf8')
    const preloaded = new Set([...html.matchAll(/rel="modulepreload"[^>]*href="\/([^"]+)"/g)].map((m) => m[1]))
    const stage = (c: ChunkInfo) => (c.isEntry ? '1 entry' : preloaded.has(c.file) ? '2 preloaded on a document link' : '3 on demand / after the text')
    const rows = chunks
      .map((c) => ({ c, stage: stage(c), raw: size(join(outDir, c.file)), gz: size(join(outDir, c.file + '.gz')), br: size(join(outDir, c.file + '.br')) }))
      .sort((a, b) => a.stage.localeCompare(b.stage) || b.raw - a.raw)
    const lines = ['| chunk | loaded | raw KiB | gzip KiB | brotli KiB | made of (share of the chunk before minification) |', '| --- | --- | ---: | ---: | ---: | --- |']
    for (const r of rows) {
      const total = [...r.c.parts.values()].reduce((a, b) => a + b, 0)
      const top = [...r.c.parts].sort((a, b) => b[1] - a[1]).filter(([, n]) => n / total >= 0.03).map(([p, n]) => `${p} ${Math.round((100 * n) / total)}%`)
      lines.push(`| ${r.c.file.replace(/^assets\//, '')} | ${r.stage.slice(2)} | ${kb(r.raw)} | ${kb(r.gz)} | ${kb(r.br)} | ${top.join(', ')} |`)
    }
    const css = [...html.matchAll(/href="\/(assets\/[^"]+\.css)"/g)].map((m) => m[1]!)
    const before = rows.filter((r) => !r.stage.startsWith('3'))
    const sum = (f: (r: (typeof rows)[number]) => number, extra: (p: string) => number) => before.reduce((n, r) => n + f(r), 0) + css.reduce((n, p) => n + extra(join(outDir, p)), 0)
    const brOrRaw = (p: string) => (Number.isNaN(size(p + '.br')) ? size(p) : size(p + '.br'))
    console.log(lines.join('\n'))
    console.log(
      `\nBefore the text on a document link (entry + preloaded chunks + ${css.length} stylesheets; index.html ${kb(size(join(outDir, 'index.html')))} KiB on top): raw ${kb(sum((r) => r.raw, size))} KiB, brotli ${kb(sum((r) => (Number.isNaN(r.br) ? r.raw : r.br), brOrRaw))} KiB. Everything: raw ${kb(rows.reduce((n, r) => n + r.raw, 0))} KiB, brotli ${kb(rows.reduce((n, r) => n + (Number.isNaN(r.br) ? r.raw : r.br), 0))} KiB of JavaScript.`,
    )
  } finally {
    rmSync(outDir, { recursive: true, force: true })
  }
}

main().then(
  () => process.exit(0),
  (err) => {
    console.error(err)
    process.exit(1)
  },
)
