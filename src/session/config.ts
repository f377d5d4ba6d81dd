/**
 * Runtime server configuration: what `GET /config.json` returns, how its
 * relative URLs are resolved, and how the last good copy is cached so an
 * offline reload still knows the servers. Plain TypeScript, no DOM globals
 * (fetch and storage are injected), so unit tests can run it in Node.
 */
import type { KeyValueStorage } from './storage.ts'

/** `GET /config.json` exactly as the server returns it. */
export interface ServerConfig {
  /** y-webrtc signaling endpoints; may be relative paths like `"/signal"`. */
  signaling: string[]
  /** ICE servers handed to every RTCPeerConnection (possibly `[]`). */
  iceServers: RTCIceServer[]
  /** Whether the server offers durable backup on `syncUrl`. */
  backup: boolean
  /** y-websocket base URL; may be a relative path like `"/sync"`. */
  syncUrl: string
  /** Whether `/signal` and `/sync` require an access token. */
  auth: boolean
  /** With auth, what the token sent with the request grants (`none`: invalid or expired). */
  access?: 'r' | 'rw' | 'none'
  /** With auth and a read-write token: the document's WebRTC room secret (y-webrtc `password`). */
  roomSecret?: string
}

/** A `ServerConfig` with every URL absolute, ws(s), and carrying the access token. */
export interface ResolvedConfig {
  /** Absolute ws(s) signaling URLs, each with `?token=` when a token is known. */
  signaling: string[]
  /** ICE servers, never undefined: `[]` means host candidates only. */
  iceServers: RTCIceServer[]
  /** Absolute ws(s) y-websocket base URL, or null when backup is off. */
  syncUrl: string | null
  /** Whether the server requires tokens. */
  auth: boolean
  /** The token is read-only: no WebRTC mesh (the server relays live updates), no editing. */
  readOnly: boolean
  /** y-webrtc room password (only read-write holders get one), or null. */
  roomSecret: string | null
}

/** Where a loaded configuration came from. */
export type ConfigSource = 'server' | 'cache' | 'none'

/** Outcome of `loadConfig`. */
export interface LoadedConfig {
  /** `server`: fetched now; `cache`: last good copy; `none`: no server known. */
  source: ConfigSource
  /** The configuration, or null when `source` is `none`. */
  config: ServerConfig | null
  /** Base URL the relative URLs resolve against. */
  base: string
  /** Why fetching failed, when it did. */
  error?: string
  /** The server did not answer at all (network error or timeout), so asking again later may succeed; an HTTP error or a bad body is not retried. */
  unreachable?: boolean
}

/** Thrown by `parseServerConfig` for a response that does not match the schema. */
export class ConfigError extends Error {
  override name = 'ConfigError'
}

/** localStorage key prefix of the cached configuration (suffixed by the server base). */
export const CONFIG_CACHE_PREFIX = 'murmur:config:'

/** How long `loadConfig` waits for the server before using the cache (ms). Long enough for a slow mobile link, short enough that an offline start is not noticeably delayed. */
export const CONFIG_FETCH_TIMEOUT_MS = 4000

/** First wait before asking an unreachable server for its configuration again (ms); each further wait doubles. */
export const CONFIG_RETRY_FIRST_MS = 1000

/** Longest wait between configuration retries (ms): a server that comes back is noticed within this, while a down server costs one small request per tab this often. */
export const CONFIG_RETRY_MAX_MS = 10_000

/** The wait before retry number `attempt` (0-based): 1 s, 2 s, 4 s, … capped at `max`. */
export function configRetryDelay(attempt: number, first = CONFIG_RETRY_FIRST_MS, max = CONFIG_RETRY_MAX_MS): number {
  return Math.min(max, first * 2 ** Math.min(attempt, 30))
}

const isStringArray = (v: unknown): v is string[] => Array.isArray(v) && v.every((s) => typeof s === 'string')

function isIceServer(v: unknown): v is RTCIceServer {
  if (typeof v !== 'object' || v === null) return false
  const urls = (v as { urls?: unknown }).urls
  return typeof urls === 'string' || isStringArray(urls)
}

/** Validates a parsed `/config.json` body; throws `ConfigError` when a field is missing or of the wrong type. */
export function parseServerConfig(json: unknown): ServerConfig {
  if (typeof json !== 'object' || json === null) throw new ConfigError('config is not an object')
  const c = json as Record<string, unknown>
  if (!isStringArray(c.signaling)) throw new ConfigError('config.signaling must be an array of strings')
  if (!Array.isArray(c.iceServers) || !c.iceServers.every(isIceServer)) throw new ConfigError('config.iceServers must be an array of RTCIceServer')
  if (typeof c.backup !== 'boolean') throw new ConfigError('config.backup must be a boolean')
  if (typeof c.syncUrl !== 'string') throw new ConfigError('config.syncUrl must be a string')
  if (typeof c.auth !== 'boolean') throw new ConfigError('config.auth must be a boolean')
  if (c.access !== undefined && c.access !== 'r' && c.access !== 'rw' && c.access !== 'none') throw new ConfigError('config.access must be r, rw or none')
  if (c.roomSecret !== undefined && typeof c.roomSecret !== 'string') throw new ConfigError('config.roomSecret must be a string')
  const config: ServerConfig = { signaling: c.signaling, iceServers: c.iceServers as RTCIceServer[], backup: c.backup, syncUrl: c.syncUrl, auth: c.auth }
  if (c.access !== undefined) config.access = c.access
  if (c.roomSecret !== undefined) config.roomSecret = c.roomSecret
  return config
}

/**
 * Resolves `url` (absolute, or relative like `/signal`) against `base` and
 * turns http into ws and https into wss. ws(s) URLs are kept as they are.
 */
export function toWebSocketUrl(url: string, base: string): string {
  const u = new URL(url, base)
  if (u.protocol === 'http:') u.protocol = 'ws:'
  else if (u.protocol === 'https:') u.protocol = 'wss:'
  else if (u.protocol !== 'ws:' && u.protocol !== 'wss:') throw new ConfigError(`unsupported URL scheme in ${url}`)
  return u.href
}

/** Returns `url` with `?token=<token>` set (other query parameters are kept); unchanged without a token. */
export function withToken(url: string, token: string | null | undefined): string {
  if (!token) return url
  const u = new URL(url)
  u.searchParams.set('token', token)
  return u.href
}

/**
 * The server base URL: `VITE_MURMUR_SERVER` when it was set at build time,
 * else the page's own origin. A trailing slash is removed.
 */
export function serverBase(envServer: string | undefined, origin: string): string {
  const base = envServer && envServer.trim() ? envServer.trim() : origin
  return base.replace(/\/+$/, '')
}

/**
 * Turns a loaded configuration into absolute ws(s) URLs carrying `token`.
 * With no configuration, nothing is contacted: no signaling, no ICE servers,
 * no backup (y-webrtc's BroadcastChannel still syncs tabs of one browser).
 */
export function resolveConfig(loaded: LoadedConfig, token: string | null): ResolvedConfig {
  const c = loaded.config
  if (!c) return { signaling: [], iceServers: [], syncUrl: null, auth: false, readOnly: false, roomSecret: null }
  const signaling: string[] = []
  for (const s of c.signaling) {
    try {
      signaling.push(withToken(toWebSocketUrl(s, loaded.base + '/'), token))
    } catch {
      // an unusable entry is skipped rather than failing the whole config
    }
  }
  let syncUrl: string | null = null
  if (c.backup && c.syncUrl) {
    try {
      syncUrl = toWebSocketUrl(c.syncUrl, loaded.base + '/').replace(/\/+$/, '')
    } catch {
      syncUrl = null
    }
  }
  return { signaling, iceServers: c.iceServers, syncUrl, auth: c.auth, readOnly: c.access === 'r', roomSecret: c.roomSecret ?? null }
}

/** Options of `loadConfig`; everything environment-specific is injected. */
export interface LoadConfigOptions {
  /** Server base URL (see `serverBase`). */
  base: string
  /** `fetch` implementation. */
  fetch: typeof fetch
  /** Where the last good configuration is cached. */
  storage: KeyValueStorage
  /** Give up on the server after this many ms (default `CONFIG_FETCH_TIMEOUT_MS`). */
  timeoutMs?: number
  /** Access token: sent as `?token=` (the answer then carries what it grants) and part of the cache key. */
  token?: string | null
}

/** The cache key of the configuration fetched from `base` with `token`. */
function cacheKey(base: string, token: string | null | undefined): string {
  return CONFIG_CACHE_PREFIX + base + (token ? `?token=${token}` : '')
}

/** Reads the cached configuration for `base` (and `token`), or null when absent or corrupt. */
export function readCachedConfig(storage: KeyValueStorage, base: string, token?: string | null): ServerConfig | null {
  try {
    const raw = storage.getItem(cacheKey(base, token))
    return raw ? parseServerConfig(JSON.parse(raw)) : null
  } catch {
    return null
  }
}

/**
 * Fetches `<base>/config.json`. On success the result is cached in `storage`;
 * on any failure (offline, no server, bad JSON, timeout) the cached copy is
 * returned with `source: 'cache'`, or `source: 'none'` when there is none.
 * Never rejects.
 */
export async function loadConfig(opts: LoadConfigOptions): Promise<LoadedConfig> {
  const { base, storage } = opts
  const controller = new AbortController()
  const timer = setTimeout(() => controller.abort(), opts.timeoutMs ?? CONFIG_FETCH_TIMEOUT_MS)
  let status = 0
  try {
    const url = base + '/config.json' + (opts.token ? `?token=${encodeURIComponent(opts.token)}` : '')
    const res = await opts.fetch(url, { signal: controller.signal, cache: 'no-store', headers: { accept: 'application/json' } })
    status = res.status
    if (!res.ok) throw new ConfigError(`HTTP ${res.status}`)
    const config = parseServerConfig(await res.json())
    try {
      storage.setItem(cacheKey(base, opts.token), JSON.stringify(config))
    } catch {
      // storage full or disabled: the config still works for this page load
    }
    return { source: 'server', config, base }
  } catch (err) {
    const error = err instanceof Error ? (err.name === 'AbortError' ? 'timed out' : err.message) : String(err)
    // No answer, or a gateway/server error (a proxy in front of a stopped server): worth asking again.
    const unreachable = status >= 500 || (status === 0 && !(err instanceof ConfigError))
    const cached = readCachedConfig(storage, base, opts.token)
    return cached ? { source: 'cache', config: cached, base, error, unreachable } : { source: 'none', config: null, base, error, unreachable }
  } finally {
    clearTimeout(timer)
  }
}

/**
 * Resolves with the first configuration that is not "server unreachable,
 * nothing cached": `first` itself when it is one, else the result of
 * `reload()` retried with backoff (`configRetryDelay`). `onRetry` is called
 * before each wait. Resolves with the last result once `signal` aborts.
 */
export async function untilReachable(
  first: LoadedConfig | null,
  reload: () => Promise<LoadedConfig>,
  opts: { signal: AbortSignal; onRetry?: (attempt: number) => void; delay?: (attempt: number) => number },
): Promise<LoadedConfig | null> {
  let loaded = first
  for (let attempt = 0; loaded?.source === 'none' && loaded.unreachable && !opts.signal.aborted; attempt++) {
    opts.onRetry?.(attempt)
    await new Promise<void>((resolve) => {
      const done = () => {
        clearTimeout(timer)
        opts.signal.removeEventListener('abort', done)
        resolve()
      }
      const timer = setTimeout(done, (opts.delay ?? configRetryDelay)(attempt))
      opts.signal.addEventListener('abort', done)
    })
    if (opts.signal.aborted) break
    loaded = await reload()
  }
  return loaded
}
