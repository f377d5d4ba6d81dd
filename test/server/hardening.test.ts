/**
 * Issue 13, items 7-11: each test performs the attack against a real server
 * process and asserts the hardened behaviour.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { connect, type Socket } from 'node:net'
import { request } from 'node:http'
import { mkdirSync, mkdtempSync, readFileSync, statSync, symlinkSync, writeFileSync } from 'node:fs'
import { join, resolve } from 'node:path'
import { tmpdir } from 'node:os'
import Database from 'better-sqlite3'
import WebSocket from 'ws'
import { startServer, type ServerProcess } from '../helpers/server.ts'
import { rawSync, syncMessage } from '../helpers/clients.ts'
import { metric } from '../signaling/helpers.ts'
import { mintToken, verifyToken } from '../../server/auth.ts'
import { clientAddress } from '../../server/client-address.ts'
import { CloseCode } from '../../src/protocol/messages.ts'
import type { IncomingMessage } from 'node:http'

const secret = 'hardening-secret-0123456789'

/** Rejects with `what` if `p` has not settled within `ms` (a deadline for an event, not a timing assertion). */
function within<T>(p: Promise<T>, ms: number, what: string): Promise<T> {
  return Promise.race([p, new Promise<T>((_, rej) => setTimeout(() => rej(new Error(`${what}: nothing after ${ms} ms`)), ms).unref())])
}

/** A plain GET over a fresh TCP connection from `localAddress` (127.0.0.0/8 is all loopback on Linux). */
function get(port: number, path: string, localAddress = '127.0.0.1'): Promise<{ status: number; body: string }> {
  return new Promise((res, rej) => {
    const req = request({ host: '127.0.0.1', port, path, localAddress, agent: false }, (r) => {
      let body = ''
      r.on('data', (d) => (body += d))
      r.on('end', () => res({ status: r.statusCode!, body }))
    })
    req.on('error', rej)
    req.end()
  })
}

/** A socket that sends the start of an upgrade request and never finishes its headers. */
interface SlowSocket {
  socket: Socket
  /** Everything the server sent before it closed the connection. */
  closed: Promise<string>
}

async function slowSockets(port: number, n: number): Promise<SlowSocket[]> {
  const all: SlowSocket[] = []
  const connected: Promise<void>[] = []
  for (let i = 0; i < n; i++) {
    const socket = connect({ host: '127.0.0.1', port })
    let got = ''
    socket.on('data', (d) => (got += d))
    socket.on('error', () => {})
    const closed = new Promise<string>((res) => socket.on('close', () => res(got)))
    connected.push(new Promise((res) => socket.once('connect', () => res()).once('close', () => res())))
    socket.once('connect', () => socket.write('GET /signal HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\n'))
    all.push({ socket, closed })
  }
  await Promise.all(connected)
  return all
}

describe('item 7: a socket is closed with 4401 when its token expires', () => {
  let server: ServerProcess
  beforeAll(async () => {
    server = await startServer({ args: ['--auth-secret', secret] })
  })
  afterAll(async () => {
    await server?.stop()
  })

  /** A token that expires 1-2 s from now. */
  const shortToken = (doc: string) => {
    const token = mintToken(secret, doc, 'rw', 2)
    return { token, exp: verifyToken(secret, token, doc).exp }
  }

  it('on /sync: the socket works until exp, then is closed', async () => {
    const { token, exp } = shortToken('expiring')
    const raw = await rawSync(server.wsUrl, `/sync/expiring?token=${token}`)
    raw.send(syncMessage(0, new Uint8Array([0])))
    await raw.waitFor((f) => f[0] === 0 && f[1] === 1)
    const { code } = await within(raw.closed, 8000, 'close after token expiry')
    expect(code).toBe(CloseCode.unauthorized)
    expect(Date.now()).toBeGreaterThanOrEqual(exp * 1000 - 20)
  })

  it('on /signal: a subscriber is closed at exp', async () => {
    const { token, exp } = shortToken('expiring')
    const ws = new WebSocket(`${server.wsUrl}/signal?token=${encodeURIComponent(token)}`)
    const closed = new Promise<number>((res) => ws.on('close', (code) => res(code)))
    await new Promise((res, rej) => ws.once('open', res).once('error', rej))
    ws.send(JSON.stringify({ type: 'subscribe', topics: ['expiring'] }))
    ws.send(JSON.stringify({ type: 'ping' }))
    await new Promise<void>((res) => ws.once('message', () => res()))
    expect(await within(closed, 8000, 'close after token expiry')).toBe(CloseCode.unauthorized)
    expect(Date.now()).toBeGreaterThanOrEqual(exp * 1000 - 20)
  })
})

describe('item 8: --trust-proxy uses the address the proxy appended', () => {
  let server: ServerProcess
  beforeAll(async () => {
    server = await startServer({ args: ['--trust-proxy', '--max-connections-per-ip', '5'] })
  })
  afterAll(async () => {
    await server?.stop()
  })

  it('a client inventing X-Forwarded-For entries still gets only 5 sockets', async () => {
    // The client sends its own X-Forwarded-For; the proxy appends the real address after it.
    const outcomes = await Promise.all(
      Array.from({ length: 20 }, (_, i) => {
        const ws = new WebSocket(`${server.wsUrl}/signal`, { headers: { 'X-Forwarded-For': `10.9.${i}.1, 198.51.100.7` } })
        return new Promise<{ ws: WebSocket; status: number }>((res) => {
          ws.once('open', () => res({ ws, status: 101 }))
          ws.once('unexpected-response', (_req, r) => res({ ws, status: r.statusCode! }))
          ws.once('error', () => {})
        })
      }),
    )
    expect(outcomes.filter((o) => o.status === 101)).toHaveLength(5)
    expect(outcomes.filter((o) => o.status === 429)).toHaveLength(15)
    for (const o of outcomes) o.ws.terminate()
  })

  it('with N hops, takes the entry N places from the right', () => {
    const req = (xff: string) => ({ headers: { 'x-forwarded-for': xff }, socket: { remoteAddress: '127.0.0.1' } }) as unknown as IncomingMessage
    expect(clientAddress({ trustProxy: true, trustProxyHops: 1 }, req('6.6.6.6, 203.0.113.9'))).toBe('203.0.113.9')
    expect(clientAddress({ trustProxy: true, trustProxyHops: 2 }, req('6.6.6.6, 203.0.113.9, 10.0.0.2'))).toBe('203.0.113.9')
    expect(clientAddress({ trustProxy: true, trustProxyHops: 3 }, req('203.0.113.9'))).toBe('203.0.113.9')
    expect(clientAddress({ trustProxy: false, trustProxyHops: 1 }, req('6.6.6.6'))).toBe('127.0.0.1')
  })
})

describe('item 9: half-sent requests', () => {
  it('one address holding hundreds of half-sent requests is cut at accept and at the headers timeout; others are served', async () => {
    const server = await startServer({ args: ['--max-sockets-per-ip', '20', '--headers-timeout-ms', '3000'] })
    try {
      const slow = await slowSockets(server.port, 300)
      // Another address is served while they hang.
      expect((await get(server.port, '/healthz', '127.0.0.2')).status).toBe(200)
      const replies = await within(Promise.all(slow.map((s) => s.closed)), 20_000, 'slow sockets closed by the server')
      // 280 were refused at accept (nothing sent); the 20 admitted got 408 at the headers timeout.
      expect(replies.filter((r) => r === '')).toHaveLength(280)
      expect(replies.filter((r) => r.startsWith('HTTP/1.1 408'))).toHaveLength(20)
      expect((await get(server.port, '/healthz')).status).toBe(200)
    } finally {
      await server.stop()
    }
  }, 40_000)

  it('connections above --max-connections are closed at accept', async () => {
    const server = await startServer({ args: ['--max-connections', '10', '--headers-timeout-ms', '3000'] })
    try {
      const slow = await slowSockets(server.port, 30)
      const replies = await within(Promise.all(slow.map((s) => s.closed)), 20_000, 'slow sockets closed by the server')
      expect(replies.filter((r) => r === '')).toHaveLength(20)
      expect(replies.filter((r) => r.startsWith('HTTP/1.1 408'))).toHaveLength(10)
      expect((await get(server.port, '/healthz')).status).toBe(200)
    } finally {
      await server.stop()
    }
  }, 40_000)
})

describe('item 10: /healthz under a storm', () => {
  it('runs at most about one storage write per second, however many requests', async () => {
    const server = await startServer()
    try {
      const wal = join(server.dataDir, 'murmur.db-wal')
      const walBefore = statSync(wal).size
      const t0 = performance.now()
      for (let round = 0; round < 10; round++) {
        const replies = await Promise.all(Array.from({ length: 50 }, () => fetch(`${server.url}/healthz`)))
        expect(replies.every((r) => r.status === 200)).toBe(true)
      }
      const seconds = (performance.now() - t0) / 1000
      const checks = (await metric(server, 'murmur_storage_checks_total'))!
      expect(checks).toBeGreaterThanOrEqual(1)
      expect(checks).toBeLessThanOrEqual(Math.ceil(seconds) + 1)
      // Each check is one small fsynced commit (a WAL frame or two of 4 KiB); 500 unthrottled checks would add ~2 MiB.
      expect(statSync(wal).size - walBefore).toBeLessThanOrEqual((checks + 1) * 2 * (4096 + 24))
    } finally {
      await server.stop()
    }
  })
})

describe('item 11: headers and exposure', () => {
  let server: ServerProcess
  const client = mkdtempSync(join(tmpdir(), 'murmur-client-'))
  const outside = mkdtempSync(join(tmpdir(), 'murmur-outside-'))
  beforeAll(async () => {
    mkdirSync(join(client, 'assets'))
    writeFileSync(join(client, 'index.html'), '<!doctype html><title>murmur</title>')
    writeFileSync(join(outside, 'secret.txt'), 'not for the web')
    symlinkSync(join(outside, 'secret.txt'), join(client, 'leak.txt'))
    symlinkSync(outside, join(client, 'assets', 'out'))
    server = await startServer({ args: ['--client', client, '--metrics-token', 'prom-token-123'] })
  })
  afterAll(async () => {
    await server?.stop()
  })

  it('sends CSP (no framing), no-referrer and nosniff on every response', async () => {
    for (const path of ['/', '/d/abc', '/healthz', '/config.json', '/nope']) {
      const res = await fetch(server.url + path)
      const csp = res.headers.get('content-security-policy') ?? ''
      expect(csp).toContain("frame-ancestors 'none'")
      expect(csp).toContain("default-src 'self'")
      expect(res.headers.get('referrer-policy')).toBe('no-referrer')
      expect(res.headers.get('x-content-type-options')).toBe('nosniff')
    }
  })

  it('does not follow symlinks out of the client directory', async () => {
    expect((await fetch(server.url + '/leak.txt')).status).toBe(404)
    expect((await fetch(server.url + '/assets/out/secret.txt')).status).toBe(404)
    expect((await fetch(server.url + '/')).status).toBe(200)
  })

  it('protects /metrics with --metrics-token', async () => {
    expect((await fetch(server.url + '/metrics')).status).toBe(401)
    expect((await fetch(server.url + '/metrics', { headers: { authorization: 'Bearer wrong' } })).status).toBe(401)
    const ok = await fetch(server.url + '/metrics', { headers: { authorization: 'Bearer prom-token-123' } })
    expect(ok.status).toBe(200)
    expect(await ok.text()).toContain('murmur_connections')
  })

  it('a failing /healthz says "unwritable" and not the storage error', async () => {
    // Another process holds the write lock: the server's check fails with SQLITE_BUSY after its busy timeout.
    const db = new Database(join(server.dataDir, 'murmur.db'))
    try {
      db.exec('BEGIN IMMEDIATE')
      // Earlier answers are cached for up to a second; the first check after that fails.
      let res = await fetch(server.url + '/healthz')
      for (const deadline = Date.now() + 10_000; res.status === 200 && Date.now() < deadline; ) res = await fetch(server.url + '/healthz')
      expect(res.status).toBe(503)
      expect(await res.json()).toEqual({ ok: false, storage: 'unwritable' })
      // The error goes to the log instead (the child's stdout may arrive just after the response).
      for (let i = 0; i < 50 && !server.output().includes('storage is not writable'); i++) await new Promise((r) => setTimeout(r, 100))
      expect(server.output()).toContain('database is locked')
    } finally {
      db.exec('ROLLBACK')
      db.close()
    }
  }, 20_000)

  it('refuses token signatures that are not the canonical encoding', async () => {
    const auth = await startServer({ args: ['--auth-secret', secret] })
    try {
      const token = mintToken(secret, 'doc1', 'rw', 600)
      const last = token.at(-1)!
      // The last of 43 base64url characters carries 2 spare bits: flipping them decodes to the same bytes.
      const alphabet = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_'
      const twin = alphabet[alphabet.indexOf(last) ^ 1]
      const forms = [token + '=', token + '!', token + '.junk', token.slice(0, -1) + twin]
      const code = async (t: string) => (await (await rawSync(auth.wsUrl, `/sync/doc1?token=${encodeURIComponent(t)}`)).closed).code
      for (const t of forms) expect(await within(code(t), 5000, `token ${t.slice(-6)}`)).toBe(CloseCode.unauthorized)
      // The genuine token still works.
      const ok = await rawSync(auth.wsUrl, `/sync/doc1?token=${token}`)
      ok.send(syncMessage(0, new Uint8Array([0])))
      await ok.waitFor((f) => f[0] === 0 && f[1] === 1)
      ok.ws.close()
    } finally {
      await auth.stop()
    }
  })

  it("the README's nginx example does not log ?token= query strings", () => {
    const readme = readFileSync(resolve(import.meta.dirname, '../../README.md'), 'utf8')
    const nginx = /```nginx\n([\s\S]*?)```/.exec(readme)![1]
    const format = /log_format\s+(\S+)\s+([\s\S]*?);/.exec(nginx)
    expect(format, 'a log_format of its own').not.toBeNull()
    expect(format![2]).not.toMatch(/\$request\b|\$request_uri|\$args|\$query_string|\$arg_/)
    expect(nginx).toMatch(new RegExp(`access_log\\s+\\S+\\s+${format![1]}\\s*;`))
  })
})
