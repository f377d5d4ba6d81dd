import { createReadStream, realpathSync, statSync, type Stats } from 'node:fs'
import type { IncomingMessage, ServerResponse } from 'node:http'
import { extname, join, normalize, sep } from 'node:path'

const TYPES: Record<string, string> = {
  '.html': 'text/html; charset=utf-8',
  '.js': 'text/javascript; charset=utf-8',
  '.mjs': 'text/javascript; charset=utf-8',
  '.css': 'text/css; charset=utf-8',
  '.json': 'application/json; charset=utf-8',
  '.webmanifest': 'application/manifest+json; charset=utf-8',
  '.svg': 'image/svg+xml',
  '.png': 'image/png',
  '.ico': 'image/x-icon',
  '.txt': 'text/plain; charset=utf-8',
  '.woff2': 'font/woff2',
  '.map': 'application/json; charset=utf-8',
}

/**
 * Serves the built client from `root`: hashed files under `/assets/` are
 * cached forever; everything else (index.html, sw.js, the manifest) is
 * revalidated on each load so a deploy is picked up. `/` and `/d/<anything>`
 * fall back to index.html (client-side routing). Returns false when the
 * request is not for a client file, so the caller can answer 404.
 */
export function serveClient(root: string, req: IncomingMessage, res: ServerResponse, pathname: string): boolean {
  let rel: string
  try {
    rel = decodeURIComponent(pathname)
  } catch {
    return false
  }
  if (rel.includes('\0')) return false
  const spa = rel === '/' || /^\/d(\/|$)/.test(rel)
  const file = spa ? join(root, 'index.html') : normalize(join(root, rel))
  if (!file.startsWith(root + sep) && file !== root) return false
  let stat: Stats
  try {
    // A symlink inside the client directory must not serve a file outside it.
    const real = realpathSync(file)
    const realRoot = realpathSync(root)
    if (!real.startsWith(realRoot + sep)) return false
    stat = statSync(real)
  } catch {
    return false
  }
  if (!stat.isFile()) return false
  const etag = `W/"${stat.size.toString(16)}-${Math.floor(stat.mtimeMs).toString(16)}"`
  res.setHeader('Content-Type', TYPES[extname(file)] ?? 'application/octet-stream')
  res.setHeader('Cache-Control', rel.startsWith('/assets/') ? 'public, max-age=31536000, immutable' : 'no-cache')
  res.setHeader('ETag', etag)
  res.setHeader('X-Content-Type-Options', 'nosniff')
  if (file.endsWith('sw.js')) res.setHeader('Service-Worker-Allowed', '/')
  if (req.headers['if-none-match'] === etag) {
    res.writeHead(304).end()
    return true
  }
  res.setHeader('Content-Length', stat.size)
  res.writeHead(200)
  if (req.method === 'HEAD') res.end()
  else createReadStream(file).pipe(res)
  return true
}
