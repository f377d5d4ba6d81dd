import { describe, expect, it } from 'vitest'
import {
  CONFIG_CACHE_PREFIX,
  ConfigError,
  loadConfig,
  parseServerConfig,
  resolveConfig,
  serverBase,
  toWebSocketUrl,
  untilReachable,
  withToken,
  type ServerConfig,
} from '../../src/session/config.ts'
import { memoryStorage } from '../../src/session/storage.ts'

const sample: ServerConfig = { signaling: ['/signal'], iceServers: [{ urls: 'stun:stun.example.org:3478' }], backup: true, syncUrl: '/sync', auth: false }

const jsonResponse = (body: unknown, status = 200) => new Response(JSON.stringify(body), { status, headers: { 'content-type': 'application/json' } })

describe('URL resolution', () => {
  it('resolves relative paths against the base and maps http→ws, https→wss', () => {
    expect(toWebSocketUrl('/signal', 'http://localhost:4444/')).toBe('ws://localhost:4444/signal')
    expect(toWebSocketUrl('/sync', 'https://murmur.example.org/')).toBe('wss://murmur.example.org/sync')
    expect(toWebSocketUrl('https://other.example.org/signal', 'http://localhost/')).toBe('wss://other.example.org/signal')
    expect(toWebSocketUrl('http://10.0.0.2:8080/signal', 'https://x/')).toBe('ws://10.0.0.2:8080/signal')
    expect(toWebSocketUrl('wss://sig.example.org/', 'http://localhost/')).toBe('wss://sig.example.org/')
    expect(toWebSocketUrl('ws://sig.example.org/s', 'https://localhost/')).toBe('ws://sig.example.org/s')
    expect(() => toWebSocketUrl('ftp://x/y', 'http://localhost/')).toThrow(ConfigError)
  })

  it('appends the token as a query parameter, keeping others', () => {
    expect(withToken('ws://h/signal', 'a.b-c')).toBe('ws://h/signal?token=a.b-c')
    expect(withToken('ws://h/signal?x=1', 'tok')).toBe('ws://h/signal?x=1&token=tok')
    expect(withToken('ws://h/signal', null)).toBe('ws://h/signal')
    expect(withToken('ws://h/signal', '')).toBe('ws://h/signal')
  })

  it('serverBase prefers the build-time server and strips trailing slashes', () => {
    expect(serverBase(undefined, 'http://localhost:5173')).toBe('http://localhost:5173')
    expect(serverBase('', 'http://localhost:5173')).toBe('http://localhost:5173')
    expect(serverBase('https://murmur.example.org/', 'http://localhost:5173')).toBe('https://murmur.example.org')
  })

  it('resolveConfig makes every URL absolute ws(s), adds the token to signaling only', () => {
    const r = resolveConfig({ source: 'server', config: sample, base: 'https://m.example.org' }, 'T0K')
    expect(r.signaling).toEqual(['wss://m.example.org/signal?token=T0K'])
    expect(r.syncUrl).toBe('wss://m.example.org/sync')
    expect(r.iceServers).toEqual(sample.iceServers)
    const noBackup = resolveConfig({ source: 'server', config: { ...sample, backup: false }, base: 'http://h:1' }, null)
    expect(noBackup.syncUrl).toBeNull()
    expect(noBackup.signaling).toEqual(['ws://h:1/signal'])
  })

  it('without any config nothing is contacted: no signaling, no ICE servers, no backup', () => {
    expect(resolveConfig({ source: 'none', config: null, base: 'http://h' }, 'tok')).toEqual({ signaling: [], iceServers: [], syncUrl: null, auth: false, readOnly: false, roomSecret: null })
  })
})

describe('parseServerConfig', () => {
  it('accepts the documented schema', () => {
    expect(parseServerConfig(sample)).toEqual(sample)
    expect(parseServerConfig({ ...sample, iceServers: [{ urls: ['turn:t:3478'], username: 'u', credential: 'c' }] }).iceServers[0].username).toBe('u')
  })
  it('rejects wrong shapes', () => {
    for (const bad of [null, 3, { ...sample, signaling: '/signal' }, { ...sample, iceServers: [{}] }, { ...sample, backup: 'yes' }, { ...sample, syncUrl: 1 }, { ...sample, auth: undefined }]) {
      expect(() => parseServerConfig(bad)).toThrow(ConfigError)
    }
  })
})

describe('loadConfig', () => {
  it('fetches <base>/config.json and caches it', async () => {
    const storage = memoryStorage()
    const urls: string[] = []
    const loaded = await loadConfig({ base: 'http://h:9', storage, fetch: async (u) => (urls.push(String(u)), jsonResponse(sample)) })
    expect(urls).toEqual(['http://h:9/config.json'])
    expect(loaded).toEqual({ source: 'server', config: sample, base: 'http://h:9' })
    expect(JSON.parse(storage.getItem(CONFIG_CACHE_PREFIX + 'http://h:9')!)).toEqual(sample)
  })

  it('sends the access token, keeps what it grants (read-only, room secret), and caches per token', async () => {
    const storage = memoryStorage()
    const urls: string[] = []
    const granted = { ...sample, access: 'rw', roomSecret: 'r'.repeat(43) }
    const loaded = await loadConfig({ base: 'http://h', storage, token: 'a.b+c', fetch: async (u) => (urls.push(String(u)), jsonResponse(granted)) })
    expect(urls).toEqual(['http://h/config.json?token=a.b%2Bc'])
    expect(resolveConfig(loaded, 'a.b+c')).toMatchObject({ readOnly: false, roomSecret: 'r'.repeat(43) })
    expect(storage.getItem(CONFIG_CACHE_PREFIX + 'http://h')).toBeNull() // another token's (or no token's) cache is separate
    const reader = await loadConfig({ base: 'http://h', storage, token: 'r.o', fetch: async () => jsonResponse({ ...sample, access: 'r' }) })
    expect(resolveConfig(reader, 'r.o')).toMatchObject({ readOnly: true, roomSecret: null })
    expect(() => parseServerConfig({ ...sample, access: 'admin' })).toThrow(ConfigError)
    expect(() => parseServerConfig({ ...sample, roomSecret: 5 })).toThrow(ConfigError)
  })

  it('falls back to the cached config when the server is unreachable', async () => {
    const storage = memoryStorage()
    await loadConfig({ base: 'http://h', storage, fetch: async () => jsonResponse(sample) })
    const offline = await loadConfig({ base: 'http://h', storage, fetch: async () => Promise.reject(new TypeError('Failed to fetch')) })
    expect(offline.source).toBe('cache')
    expect(offline.config).toEqual(sample)
    expect(offline.error).toMatch(/Failed to fetch/)
  })

  it('reports "none" without a cache, and never caches a bad response', async () => {
    const storage = memoryStorage()
    const r1 = await loadConfig({ base: 'http://h', storage, fetch: async () => jsonResponse({ nope: true }) })
    expect(r1.source).toBe('none')
    expect(r1.config).toBeNull()
    const r2 = await loadConfig({ base: 'http://h', storage, fetch: async () => new Response('gone', { status: 404 }) })
    expect(r2).toMatchObject({ source: 'none', error: 'HTTP 404' })
    expect(storage.getItem(CONFIG_CACHE_PREFIX + 'http://h')).toBeNull()
  })

  it('caches per server base', async () => {
    const storage = memoryStorage()
    await loadConfig({ base: 'http://a', storage, fetch: async () => jsonResponse(sample) })
    const other = await loadConfig({ base: 'http://b', storage, fetch: async () => Promise.reject(new Error('down')) })
    expect(other.source).toBe('none')
  })

  it('times out a hanging server and uses the cache', async () => {
    const storage = memoryStorage()
    storage.setItem(CONFIG_CACHE_PREFIX + 'http://h', JSON.stringify(sample))
    const hanging: typeof fetch = (_u, init) =>
      new Promise((_res, rej) => init?.signal?.addEventListener('abort', () => rej(Object.assign(new Error('aborted'), { name: 'AbortError' }))))
    const t0 = Date.now()
    const r = await loadConfig({ base: 'http://h', storage, fetch: hanging, timeoutMs: 50 })
    expect(Date.now() - t0).toBeLessThan(2000)
    expect(r).toMatchObject({ source: 'cache', error: 'timed out' })
  })
})

describe('untilReachable (issue 12, item 1)', () => {
  it('tells "no answer" (retry) from "answered badly" (do not)', async () => {
    const storage = memoryStorage()
    expect(await loadConfig({ base: 'http://h', storage, fetch: async () => Promise.reject(new TypeError('Failed to fetch')) })).toMatchObject({ source: 'none', unreachable: true })
    expect(await loadConfig({ base: 'http://h', storage, fetch: async () => new Response('bad gateway', { status: 502 }) })).toMatchObject({ unreachable: true })
    expect(await loadConfig({ base: 'http://h', storage, fetch: async () => new Response('gone', { status: 404 }) })).toMatchObject({ unreachable: false })
    expect(await loadConfig({ base: 'http://h', storage, fetch: async () => jsonResponse({ nope: true }) })).toMatchObject({ unreachable: false })
  })

  it('asks again until the server answers, and stops when aborted', async () => {
    const down = { source: 'none' as const, config: null, base: 'http://h', unreachable: true }
    const answers = [down, down, { source: 'server' as const, config: sample, base: 'http://h' }]
    const retries: number[] = []
    const got = await untilReachable(down, async () => answers.shift()!, { signal: new AbortController().signal, onRetry: (a) => retries.push(a), delay: () => 0 })
    expect(got).toMatchObject({ source: 'server' })
    expect(retries).toEqual([0, 1, 2])

    const stop = new AbortController()
    let reloads = 0
    const pending = untilReachable(down, async () => (reloads++, down), { signal: stop.signal, delay: () => 60_000 })
    stop.abort()
    expect(await pending).toBe(down)
    expect(reloads).toBe(0)
    // A cached or absent (404) configuration is final: no retries.
    const cached = { source: 'cache' as const, config: sample, base: 'http://h', unreachable: true }
    expect(await untilReachable(cached, async () => down, { signal: new AbortController().signal })).toBe(cached)
  })
})
