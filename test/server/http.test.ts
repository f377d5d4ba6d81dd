import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { createHmac } from 'node:crypto'
import { execFileSync } from 'node:child_process'
import { mkdirSync, writeFileSync, mkdtempSync, readFileSync, existsSync, symlinkSync } from 'node:fs'
import { request } from 'node:http'
import { join } from 'node:path'
import { tmpdir } from 'node:os'
import { brotliDecompressSync, gunzipSync } from 'node:zlib'
import { precompressDir } from '../../build/precompress.ts'
import { startServer, type ServerProcess } from '../helpers/server.ts'

describe('HTTP surface', () => {
  let server: ServerProcess
  const client = mkdtempSync(join(tmpdir(), 'murmur-client-'))
  beforeAll(async () => {
    mkdirSync(join(client, 'assets'))
    writeFileSync(join(client, 'index.html'), '<!doctype html><title>murmur</title>')
    writeFileSync(join(client, 'assets', 'app-abc123.js'), 'console.log(1)')
    writeFileSync(join(client, 'sw.js'), 'self.addEventListener("fetch", () => {})')
    server = await startServer({
      args: ['--client', client, '--ice-servers', 'stun:stun.example.test:3478', '--turn-url', 'turn:turn.example.test:3478', '--turn-secret', 's3cret', '--turn-ttl', '600'],
    })
  })
  afterAll(async () => {
    expect(await server?.stop('SIGTERM')).toBe(0)
  })

  it('serves the client with SPA fallback and cache headers', async () => {
    for (const path of ['/', '/d/abc', '/d/abc-DEF_123']) {
      const res = await fetch(server.url + path)
      expect(res.status).toBe(200)
      expect(await res.text()).toContain('<title>murmur</title>')
      expect(res.headers.get('cache-control')).toBe('no-cache')
    }
    const asset = await fetch(server.url + '/assets/app-abc123.js')
    expect(asset.headers.get('cache-control')).toContain('immutable')
    expect(asset.headers.get('content-type')).toContain('javascript')
    const sw = await fetch(server.url + '/sw.js')
    expect(sw.headers.get('cache-control')).toBe('no-cache')
    const again = await fetch(server.url + '/', { headers: { 'if-none-match': (await fetch(server.url + '/')).headers.get('etag')! } })
    expect(again.status).toBe(304)
    expect((await fetch(server.url + '/nope.js')).status).toBe(404)
    // Unknown pages get the app (its not-found view) with status 404; unknown files stay a plain 404.
    for (const path of ['/settings/foo', '/settings', '/x/y/z/']) {
      const page = await fetch(server.url + path)
      expect(page.status).toBe(404)
      expect(page.headers.get('content-type')).toContain('text/html')
      expect(await page.text()).toContain('<title>murmur</title>')
    }
    for (const path of ['/assets/missing-abc.js', '/nope.css', '/settings/foo.png']) {
      const file = await fetch(server.url + path)
      expect(file.status).toBe(404)
      expect(file.headers.get('content-type')).toContain('text/plain')
    }
    expect((await fetch(server.url + '/../../etc/passwd')).status).toBe(404)
    expect((await fetch(server.url + '/%2e%2e/%2e%2e/etc/passwd')).status).toBe(404)
  })

  it('answers /healthz, /metrics and /config.json', async () => {
    const health = await fetch(server.url + '/healthz')
    expect(health.status).toBe(200)
    expect(await health.json()).toMatchObject({ ok: true })
    const metrics = await (await fetch(server.url + '/metrics')).text()
    for (const name of ['murmur_connections', 'murmur_rooms_loaded', 'murmur_messages_total', 'murmur_persisted_updates_total', 'murmur_storage_errors_total', 'nodejs_eventloop_lag_seconds']) {
      expect(metrics).toContain(name)
    }
    const config = await (await fetch(server.url + '/config.json')).json()
    expect(config).toMatchObject({ signaling: ['/signal'], backup: true, syncUrl: '/sync', auth: false })
    expect(config.iceServers[0]).toEqual({ urls: 'stun:stun.example.test:3478' })
    const turn = config.iceServers[1]
    expect(turn.urls).toEqual(['turn:turn.example.test:3478'])
    const [expiry] = turn.username.split(':')
    expect(Number(expiry) - Date.now() / 1000).toBeGreaterThan(590)
    expect(Number(expiry) - Date.now() / 1000).toBeLessThanOrEqual(600)
    expect(turn.credential).toBe(createHmac('sha1', 's3cret').update(turn.username).digest('base64'))
  })

  it('answers unparseable request targets with 400 instead of hanging', async () => {
    const { connect } = await import('node:net')
    const reply = await new Promise<string>((res, rej) => {
      const s = connect(server.port, '127.0.0.1', () => s.write('GET // HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n'))
      let out = ''
      s.on('data', (d) => (out += d))
      s.on('end', () => res(out))
      s.on('error', rej)
    })
    expect(reply).toMatch(/^HTTP\/1.1 400/)
  })

  it('hands out no ICE servers unless configured', async () => {
    const bare = await startServer()
    expect((await (await fetch(bare.url + '/config.json')).json()).iceServers).toEqual([])
    expect(await bare.stop()).toBe(0)
  })

  it('documents every option in --help and rejects unknown ones', () => {
    const help = execFileSync(process.execPath, ['--import', 'tsx', 'server/main.ts', '--help']).toString()
    for (const flag of ['--port', '--host', '--data', '--ice-servers', '--turn-secret', '--auth-secret', '--max-frame-bytes', '--max-topics', '--idle-unload-ms', '--compact-after-updates', '--max-connections-per-ip', '--log-level']) {
      expect(help).toContain(flag)
    }
    expect(() => execFileSync(process.execPath, ['--import', 'tsx', 'server/main.ts', '--bogus'], { stdio: 'pipe' })).toThrow(/unknown option --bogus/)
  })

  it('limits connections per address with HTTP 429', async () => {
    const limited = await startServer({ args: ['--max-connections-per-ip', '2'] })
    const { default: WebSocket } = await import('ws')
    const open = (path: string) =>
      new Promise<{ ws: InstanceType<typeof WebSocket>; status: number }>((res) => {
        const ws = new WebSocket(limited.wsUrl + path)
        ws.once('open', () => res({ ws, status: 101 }))
        ws.once('unexpected-response', (_req, r) => res({ ws, status: r.statusCode ?? 0 }))
      })
    const a = await open('/sync/one')
    const b = await open('/signal')
    const c = await open('/sync/two')
    expect([a.status, b.status, c.status]).toEqual([101, 101, 429])
    a.ws.close()
    await new Promise((r) => a.ws.once('close', r))
    // The slot frees up once a socket closes (server side may lag a moment).
    await expect.poll(async () => (await open('/sync/three')).status, { timeout: 5000 }).toBe(101)
    b.ws.close()
    expect(await limited.stop()).toBe(0)
  })

  it('with --trust-proxy, counts connections per X-Forwarded-For address, not per proxy', async () => {
    const proxied = await startServer({ args: ['--max-connections-per-ip', '2', '--trust-proxy'] })
    const { default: WebSocket } = await import('ws')
    const sockets: InstanceType<typeof WebSocket>[] = []
    // Every socket comes from 127.0.0.1 (the "proxy"); the entry the proxy appended (the last) names the client.
    const open = (client: string) =>
      new Promise<number>((res) => {
        const ws = new WebSocket(`${proxied.wsUrl}/sync/proxied`, { headers: { 'X-Forwarded-For': `10.0.0.1, ${client}` } })
        sockets.push(ws)
        ws.on('error', () => {}) // a refused upgrade also reports an error; its status is what counts
        ws.once('open', () => res(101))
        ws.once('unexpected-response', (_req, r) => res(r.statusCode ?? 0))
      })
    try {
      expect([await open('203.0.113.7'), await open('203.0.113.7'), await open('203.0.113.7')]).toEqual([101, 101, 429])
      // Another client behind the same proxy has its own allowance.
      expect([await open('198.51.100.9'), await open('198.51.100.9'), await open('198.51.100.9')]).toEqual([101, 101, 429])
    } finally {
      for (const ws of sockets) ws.terminate()
    }
    expect(await proxied.stop()).toBe(0)
  })
})

/** One raw HTTP exchange (no automatic decompression, unlike fetch). */
function rawGet(url: string, headers: Record<string, string> = {}, method = 'GET'): Promise<{ status: number; headers: Record<string, string | string[] | undefined>; body: Buffer }> {
  return new Promise((resolve, reject) => {
    const req = request(url, { method, headers }, (res) => {
      const parts: Buffer[] = []
      res.on('data', (d: Buffer) => parts.push(d))
      res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body: Buffer.concat(parts) }))
      res.on('error', reject)
    })
    req.on('error', reject)
    req.end()
  })
}

describe('precompressed client files', () => {
  let server: ServerProcess
  const client = mkdtempSync(join(tmpdir(), 'murmur-client-'))
  const asset = '/assets/editor-abc123.js'
  // A stand-in for a built chunk: compressible text well above the 1 KiB threshold.
  const js = Array.from({ length: 4000 }, (_, i) => `export const v${i} = ${i} * ${(i * 7919) % 1000}\n`).join('')
  beforeAll(async () => {
    mkdirSync(join(client, 'assets'))
    writeFileSync(join(client, 'index.html'), '<!doctype html><title>murmur</title>')
    writeFileSync(join(client, asset), js)
    expect(await precompressDir(client)).toBe(2) // the asset's .br and .gz; index.html is too small to bother
    expect(existsSync(join(client, 'index.html.br'))).toBe(false)
    // A planted symlinked "variant" pointing outside the client directory.
    const outside = mkdtempSync(join(tmpdir(), 'murmur-outside-'))
    writeFileSync(join(outside, 'secret.txt'), 'not for clients')
    writeFileSync(join(client, 'assets', 'plain-abc123.js'), 'console.log(2)')
    symlinkSync(join(outside, 'secret.txt'), join(client, 'assets', 'plain-abc123.js.br'))
    server = await startServer({ args: ['--client', client] })
  })
  afterAll(async () => {
    expect(await server?.stop('SIGTERM')).toBe(0)
  })

  it.each([
    ['br', 'br', brotliDecompressSync],
    ['gzip, deflate, br', 'br', brotliDecompressSync],
    ['gzip', 'gzip', gunzipSync],
    ['br;q=0, gzip;q=0.5', 'gzip', gunzipSync],
    ['*', 'br', brotliDecompressSync],
  ] as const)('answers Accept-Encoding: %s with %s bytes that decompress to the built file', async (accept, encoding, decompress) => {
    const res = await rawGet(server.url + asset, { 'accept-encoding': accept })
    expect(res.status).toBe(200)
    expect(res.headers['content-encoding']).toBe(encoding)
    expect(res.headers['vary']).toBe('Accept-Encoding')
    expect(res.headers['content-type']).toContain('javascript')
    expect(res.headers['cache-control']).toBe('public, max-age=31536000, immutable')
    expect(Number(res.headers['content-length'])).toBe(res.body.length)
    expect(res.body.length).toBeLessThan(js.length / 3)
    expect(decompress(res.body).toString()).toBe(js)
    const head = await rawGet(server.url + asset, { 'accept-encoding': accept }, 'HEAD')
    expect(head.headers['content-encoding']).toBe(encoding)
    expect(head.headers['content-length']).toBe(res.headers['content-length'])
    expect(head.body.length).toBe(0)
    const again = await rawGet(server.url + asset, { 'accept-encoding': accept, 'if-none-match': String(res.headers.etag) })
    expect(again.status).toBe(304)
  })

  it('sends identity to clients that do not ask, or refuse both codings', async () => {
    for (const headers of [{} as Record<string, string>, { 'accept-encoding': 'identity' }, { 'accept-encoding': 'br;q=0, gzip;q=0' }, { 'accept-encoding': 'deflate' }]) {
      const res = await rawGet(server.url + asset, headers)
      expect(res.headers['content-encoding']).toBeUndefined()
      expect(res.headers['vary']).toBe('Accept-Encoding')
      expect(res.body.toString()).toBe(js)
      expect(Number(res.headers['content-length'])).toBe(js.length)
    }
    const gz = await rawGet(server.url + asset, { 'accept-encoding': 'gzip' })
    const plain = await rawGet(server.url + asset)
    expect(gz.headers.etag).not.toBe(plain.headers.etag)
  })

  it('never sends a symlinked variant (it could lead outside the client directory)', async () => {
    const res = await rawGet(server.url + '/assets/plain-abc123.js', { 'accept-encoding': 'br' })
    expect(res.status).toBe(200)
    expect(res.headers['content-encoding']).toBeUndefined()
    expect(res.body.toString()).toBe('console.log(2)')
  })

  it('keeps the HTML, /config.json and /healthz small and uncached as before', async () => {
    const html = await rawGet(server.url + '/d/some-doc', { 'accept-encoding': 'br, gzip' })
    expect(html.headers['content-encoding']).toBeUndefined()
    expect(html.headers['cache-control']).toBe('no-cache')
    expect(html.body.toString()).toContain('<title>murmur</title>')
    for (const path of ['/config.json', '/healthz']) {
      const res = await rawGet(server.url + path, { 'accept-encoding': 'br, gzip' })
      expect(res.headers['content-encoding']).toBeUndefined()
      expect(res.headers['cache-control']).toBe('no-store')
      expect(JSON.parse(res.body.toString())).toBeTypeOf('object')
    }
    expect(readFileSync(join(client, 'index.html'), 'utf8')).toContain('murmur')
  })
})
