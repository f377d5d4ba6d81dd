/**
 * Build-time compression: after `vite build` (and after vite-plugin-pwa has
 * written sw.js), every compressible file of the output gets a brotli
 * (`.br`, quality 11) and a gzip (`.gz`, level 9) sibling, which the server
 * sends by `Accept-Encoding` negotiation (server/encoding.ts). Compressing
 * once at build time lets the slowest, smallest settings cost nothing per
 * request. node:zlib only, no dependency.
 */
import { readdirSync, readFileSync, statSync, writeFileSync } from 'node:fs'
import { join, resolve } from 'node:path'
import { promisify } from 'node:util'
import { brotliCompress, constants, gzip } from 'node:zlib'
import type { Plugin } from 'vite'

const brotli = promisify(brotliCompress)
const gz = promisify(gzip)

/** Extensions worth compressing (text); images and fonts are compressed already. */
export const COMPRESSIBLE = /\.(?:js|mjs|css|html|svg|json|webmanifest|txt|map)$/

/** Files smaller than this are sent as they are: the saving is less than a packet. */
export const MIN_COMPRESS_BYTES = 1024

function* files(dir: string): Generator<string> {
  for (const name of readdirSync(dir)) {
    const path = join(dir, name)
    if (statSync(path).isDirectory()) yield* files(path)
    else yield path
  }
}

/**
 * Writes `<file>.br` and `<file>.gz` next to every compressible file of at
 * least `MIN_COMPRESS_BYTES` under `dir`, keeping a variant only when it is
 * smaller than the original. Returns how many variants it wrote.
 */
export async function precompressDir(dir: string): Promise<number> {
  let written = 0
  const jobs: Promise<void>[] = []
  for (const path of files(dir)) {
    if (!COMPRESSIBLE.test(path)) continue
    const raw = readFileSync(path)
    if (raw.length < MIN_COMPRESS_BYTES) continue
    const keep = (ext: string) => (out: Buffer) => {
      if (out.length >= raw.length) return
      writeFileSync(path + ext, out)
      written++
    }
    jobs.push(brotli(raw, { params: { [constants.BROTLI_PARAM_QUALITY]: 11, [constants.BROTLI_PARAM_SIZE_HINT]: raw.length } }).then(keep('.br')))
    jobs.push(gz(raw, { level: 9 }).then(keep('.gz')))
  }
  await Promise.all(jobs)
  return written
}

/** Vite plugin: `precompressDir(outDir)` once the build (and the service worker) is written. */
export function precompress(): Plugin {
  let outDir = 'dist'
  return {
    name: 'murmur:precompress',
    apply: 'build',
    configResolved(config) {
      outDir = resolve(config.root, config.build.outDir)
    },
    closeBundle: {
      order: 'post',
      sequential: true,
      async handler() {
        await precompressDir(outDir)
      },
    },
  }
}
