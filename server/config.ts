/**
 * Server configuration: every option and limit is one row of `OPTIONS`, with
 * its flag, environment variable, default and the reason for that default.
 * `--help` prints this table; flags override environment variables.
 */

type Kind = 'string' | 'int' | 'bool' | 'list'

interface Option {
  flag: string
  env: string
  kind: Kind
  default: string | number | boolean | string[]
  help: string
}

/** Every option the server understands, in `--help` order. */
export const OPTIONS = {
  port: { flag: '--port', env: 'PORT', kind: 'int', default: 4444, help: 'TCP port for HTTP and WebSockets (0 picks a free one).' },
  host: { flag: '--host', env: 'HOST', kind: 'string', default: '0.0.0.0', help: 'Interface to listen on.' },
  dataDir: { flag: '--data', env: 'MURMUR_DATA_DIR', kind: 'string', default: './data', help: 'Directory holding the SQLite database (murmur.db).' },
  store: { flag: '--store', env: 'MURMUR_STORE', kind: 'string', default: 'sqlite', help: 'sqlite (the file in --data) or a postgres://user@host:port/db[?schema=name] URL, so several instances share one database (schema murmur by default; created and migrated on start).' },
  redis: { flag: '--redis', env: 'MURMUR_REDIS', kind: 'string', default: '', help: 'redis://host:port of the Redis that carries /signal and /sync traffic between instances. Empty: a single instance. With --store postgres://… too, instances are interchangeable.' },
  sqliteWriter: { flag: '--sqlite-writer', env: 'MURMUR_SQLITE_WRITER', kind: 'string', default: 'worker', help: 'Where SQLite commits (and their fsync) run: worker (a writer thread, off the event loop) or main (the event loop, as before; for comparison).' },
  redisPrefix: { flag: '--redis-prefix', env: 'MURMUR_REDIS_PREFIX', kind: 'string', default: 'murmur', help: 'Prefix of the Redis channels, so several clusters can share one Redis.' },
  clientDir: { flag: '--client', env: 'MURMUR_CLIENT_DIR', kind: 'string', default: './dist', help: 'Built client to serve (vite build output).' },
  logLevel: { flag: '--log-level', env: 'LOG_LEVEL', kind: 'string', default: 'info', help: 'pino level: fatal, error, warn, info, debug, trace, silent.' },
  backup: { flag: '--backup', env: 'MURMUR_BACKUP', kind: 'bool', default: true, help: 'Serve /sync (durable backup and relay). --backup=false makes this a signaling-only server.' },
  iceServers: { flag: '--ice-servers', env: 'MURMUR_ICE_SERVERS', kind: 'list', default: [], help: 'Comma-separated STUN/TURN URLs handed to clients. None by default: no third party learns who talks to whom unless you choose one.' },
  turnUrl: { flag: '--turn-url', env: 'MURMUR_TURN_URL', kind: 'list', default: [], help: 'TURN URLs (comma-separated) to issue short-lived credentials for; needs --turn-secret.' },
  turnSecret: { flag: '--turn-secret', env: 'MURMUR_TURN_SECRET', kind: 'string', default: '', help: 'Shared secret with your TURN server (coturn static-auth-secret).' },
  turnTtl: { flag: '--turn-ttl', env: 'MURMUR_TURN_TTL', kind: 'int', default: 6 * 3600, help: 'Seconds a TURN credential stays valid (never past the access token\'s expiry): a working session; opening a document fetches a fresh one. With --auth-secret, only read-write token holders get one.' },
  authSecret: { flag: '--auth-secret', env: 'MURMUR_AUTH_SECRET', kind: 'string', default: '', help: 'When set, /signal and /sync require a token signed with this secret (mint with `npm run token`). Empty: the server is open to anyone who can reach it.' },
  trustProxy: { flag: '--trust-proxy', env: 'MURMUR_TRUST_PROXY', kind: 'bool', default: false, help: 'Take the client address from X-Forwarded-For, the entry your proxy appended (see --trust-proxy-hops). Set it behind a reverse proxy, else every client shares the proxy address; never without one, since clients can send the header themselves.' },
  maxFrameBytes: { flag: '--max-frame-bytes', env: 'MURMUR_MAX_FRAME_BYTES', kind: 'int', default: 16 * 1024 * 1024, help: 'Largest /sync frame. A first sync of a big document is one frame: 16 MiB holds a ~1M-character text with history.' },
  maxSignalFrameBytes: { flag: '--max-signal-frame-bytes', env: 'MURMUR_MAX_SIGNAL_FRAME_BYTES', kind: 'int', default: 64 * 1024, help: 'Largest /signal frame. SDP offers and ICE candidates are a few KiB; 64 KiB leaves room for encrypted signals.' },
  maxTopicsPerSocket: { flag: '--max-topics', env: 'MURMUR_MAX_TOPICS', kind: 'int', default: 64, help: 'Signaling topics one socket may subscribe to. A tab subscribes to one per open document.' },
  maxTopicLength: { flag: '--max-topic-length', env: 'MURMUR_MAX_TOPIC_LENGTH', kind: 'int', default: 256, help: 'Longest topic name: room names are document ids (≤64) plus a prefix.' },
  maxSignalMessagesPerSecond: { flag: '--max-signal-rate', env: 'MURMUR_MAX_SIGNAL_RATE', kind: 'int', default: 200, help: 'Signaling messages per second per socket (burst of twice that). A browser joining a room of 20 peers sends ~100.' },
  maxSyncMessagesPerSecond: { flag: '--max-sync-rate', env: 'MURMUR_MAX_SYNC_RATE', kind: 'int', default: 1000, help: 'Sync messages per second per socket (burst of twice that). Fast typing is ~20/s; replaying offline edits is one message.' },
  maxConnectionsPerIp: { flag: '--max-connections-per-ip', env: 'MURMUR_MAX_CONNECTIONS_PER_IP', kind: 'int', default: 256, help: 'Open WebSockets per client address: a household behind one NAT with many tabs stays far below.' },
  maxPendingUpdates: { flag: '--max-pending-updates', env: 'MURMUR_MAX_PENDING_UPDATES', kind: 'int', default: 256, help: 'Updates one socket may have waiting for missing dependencies before it is closed (4509).' },
  pendingTimeoutMs: { flag: '--pending-timeout-ms', env: 'MURMUR_PENDING_TIMEOUT_MS', kind: 'int', default: 30_000, help: 'How long an update may wait for its dependencies before the sender is closed (4509).' },
  maxAwarenessClients: { flag: '--max-awareness-clients', env: 'MURMUR_MAX_AWARENESS_CLIENTS', kind: 'int', default: 64, help: 'Awareness client ids one /sync socket may speak for, and entries in one awareness message (4429 above). A client relays the presence of the peers it reaches over WebRTC too, so this is the largest room you expect.' },
  maxAwarenessStateBytes: { flag: '--max-awareness-state-bytes', env: 'MURMUR_MAX_AWARENESS_STATE_BYTES', kind: 'int', default: 16 * 1024, help: 'Largest single awareness state in UTF-8 bytes (JSON; 4400 above). A name, colour and cursor take well under 1 KiB.' },
  maxHeldBytesPerSocket: { flag: '--max-held-bytes', env: 'MURMUR_MAX_HELD_BYTES', kind: 'int', default: 1024 * 1024, help: 'Bytes of updates one /sync socket may have waiting for missing dependencies (4509 above). Honest clients send self-contained updates; only races make one wait.' },
  maxHeldBytesTotal: { flag: '--max-held-bytes-total', env: 'MURMUR_MAX_HELD_BYTES_TOTAL', kind: 'int', default: 64 * 1024 * 1024, help: 'Bytes of held updates across all sockets of this server (4509 above), so many sockets cannot add up to unbounded memory.' },
  maxUpdateBytes: { flag: '--max-update-bytes', env: 'MURMUR_MAX_UPDATE_BYTES', kind: 'int', default: 2 * 1024 * 1024, help: 'Largest /sync frame after the client\'s first sync (1009 above; the client reconnects and sends big changes in its next first sync, which may use --max-frame-bytes). A 1 MB paste fits.' },
  maxStateVectorBytes: { flag: '--max-state-vector-bytes', env: 'MURMUR_MAX_STATE_VECTOR_BYTES', kind: 'int', default: 512 * 1024, help: 'Largest state vector a client may send (4400 above). A document edited in 50,000 sessions has a state vector of about 400 KiB.' },
  syncBytesPerSecond: { flag: '--sync-bytes-per-second', env: 'MURMUR_SYNC_BYTES_PER_SECOND', kind: 'int', default: 1024 * 1024, help: 'Bytes per second one /sync socket may send, after a burst of --max-update-bytes; one frame may overdraw it (a big first sync passes at once, then the socket waits). Over it the server stops reading that socket until the budget refills (nothing is dropped).' },
  syncBytesPerSecondPerIp: { flag: '--sync-bytes-per-second-per-ip', env: 'MURMUR_SYNC_BYTES_PER_SECOND_PER_IP', kind: 'int', default: 4 * 1024 * 1024, help: 'The same budget shared by all /sync sockets of one client address, after a burst of four times --max-update-bytes.' },
  maxSendBufferBytes: { flag: '--max-send-buffer-bytes', env: 'MURMUR_MAX_SEND_BUFFER_BYTES', kind: 'int', default: 2 * 1024 * 1024, help: 'Bytes waiting to be sent to a /sync socket before it is closed with 1013 (beyond the first sync it asked for). A client that reads keeps far below.' },
  maxDocumentBytes: { flag: '--max-document-bytes', env: 'MURMUR_MAX_DOCUMENT_BYTES', kind: 'int', default: 64 * 1024 * 1024, help: 'Stored bytes of one document (snapshot plus log). An update that would pass it is refused with 4413 and nothing stored is lost. A 1M-character text with its history takes about 16 MiB.' },
  maxDocumentStructs: { flag: '--max-document-structs', env: 'MURMUR_MAX_DOCUMENT_STRUCTS', kind: 'int', default: 500_000, help: 'Yjs structs (runs of text) in one document, which is what its memory follows (~100 bytes each in memory, as few as 11 on the wire); above it updates are refused with 4413. A 100-page text with 260,000 edits has about 11,000.' },
  maxStorageBytes: { flag: '--max-storage-bytes', env: 'MURMUR_MAX_STORAGE_BYTES', kind: 'int', default: 10 * 1024 * 1024 * 1024, help: 'Size of the whole database above which updates are refused with 4507 (0: no limit). Protects the disk the server shares with everything else.' },
  maxLoadedDocuments: { flag: '--max-loaded-documents', env: 'MURMUR_MAX_LOADED_DOCUMENTS', kind: 'int', default: 5000, help: 'Documents held in memory at once. Idle ones are unloaded first; with every one in use, new documents are refused with 4503 (retry later).' },
  maxRoomAwarenessBytes: { flag: '--max-room-awareness-bytes', env: 'MURMUR_MAX_ROOM_AWARENESS_BYTES', kind: 'int', default: 1024 * 1024, help: 'Awareness state bytes one document may hold from all its sockets (4429 above): every joiner receives all of it. 100 people with names and cursors take about 30 KiB.' },
  maxLogAwarenessBytes: { flag: '--max-log-awareness-bytes', env: 'MURMUR_MAX_LOG_AWARENESS_BYTES', kind: 'int', default: 64 * 1024, help: 'Largest encrypted awareness blob a private document\'s /log socket may relay (4400 above). The server cannot look inside; a name, colour and cursor take well under 1 KiB.' },
  overloadLagMs: { flag: '--overload-lag-ms', env: 'MURMUR_OVERLOAD_LAG_MS', kind: 'int', default: 500, help: 'Event-loop lag above which the server is overloaded: it stops reading sockets and refuses new WebSockets with 503 until lag is below a quarter of this (0: off). A healthy server lags a few ms.' },
  overloadHeapBytes: { flag: '--overload-heap-bytes', env: 'MURMUR_OVERLOAD_HEAP_BYTES', kind: 'int', default: 256 * 1024 * 1024, help: 'Memory in use (V8 heap plus Buffers) above which the server is overloaded, until it is below three quarters of this (0: off). Measured RSS bound at three times the saturating load: bench/README.md, Overload.' },
  idleUnloadMs: { flag: '--idle-unload-ms', env: 'MURMUR_IDLE_UNLOAD_MS', kind: 'int', default: 30_000, help: 'A document with no connections is unloaded from memory after this long, so memory follows active rooms only.' },
  compactAfterUpdates: { flag: '--compact-after-updates', env: 'MURMUR_COMPACT_AFTER_UPDATES', kind: 'int', default: 500, help: 'Stored rows per document before they are merged into one snapshot. Loading 500 small rows costs about as much as one snapshot encode, so load time stays flat.' },
  keepAliveMs: { flag: '--keepalive-ms', env: 'MURMUR_KEEPALIVE_MS', kind: 'int', default: 30_000, help: 'Ping interval; a socket that misses a pong by the next ping is dropped.' },
  shutdownGraceMs: { flag: '--shutdown-grace-ms', env: 'MURMUR_SHUTDOWN_GRACE_MS', kind: 'int', default: 5_000, help: 'On SIGTERM/SIGINT, time allowed to flush storage before exiting anyway.' },
  // HTTP exposure limits (issue 13, items 8-11).
  trustProxyHops: { flag: '--trust-proxy-hops', env: 'MURMUR_TRUST_PROXY_HOPS', kind: 'int', default: 1, help: 'With --trust-proxy, how many proxies append to X-Forwarded-For: the client is the entry that many places from the right (the one your outermost proxy appended). Entries left of it are whatever the client sent, so they are never used.' },
  headersTimeoutMs: { flag: '--headers-timeout-ms', env: 'MURMUR_HEADERS_TIMEOUT_MS', kind: 'int', default: 10_000, help: 'A request (or WebSocket upgrade) whose headers are not complete by then gets 408 and is closed, so half-sent requests cannot hold sockets. Browsers send headers in one packet.' },
  requestTimeoutMs: { flag: '--request-timeout-ms', env: 'MURMUR_REQUEST_TIMEOUT_MS', kind: 'int', default: 20_000, help: 'Time to receive a whole HTTP request. The server only takes GET and HEAD, which have no body.' },
  maxConnections: { flag: '--max-connections', env: 'MURMUR_MAX_CONNECTIONS', kind: 'int', default: 10_000, help: 'Open TCP connections in total (HTTP and WebSocket); more are closed at accept. Keep it below the open-file limit (ulimit -n) so the database and new requests always get a descriptor.' },
  maxSocketsPerIp: { flag: '--max-sockets-per-ip', env: 'MURMUR_MAX_SOCKETS_PER_IP', kind: 'int', default: 320, help: 'Open TCP connections per peer address, counted at accept so half-sent requests count too: room for --max-connections-per-ip WebSockets plus a browser\'s HTTP connections. Not applied with --trust-proxy (every peer is the proxy; limit there).' },
  metricsToken: { flag: '--metrics-token', env: 'MURMUR_METRICS_TOKEN', kind: 'string', default: '', help: 'When set, /metrics requires `Authorization: Bearer <token>` (Prometheus: `authorization: { credentials: <token> }`). Empty: /metrics is public; it shows counts, never document ids or contents.' },
  contentSecurityPolicy: { flag: '--content-security-policy', env: 'MURMUR_CSP', kind: 'string', default: "default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; img-src 'self' data:; connect-src 'self'; worker-src 'self'; manifest-src 'self'; object-src 'none'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'", help: 'Content-Security-Policy sent with every response (empty: none): the client loads only its own files and talks only to this origin (WebRTC is not subject to CSP). CodeMirror and Svelte set inline styles. Widen connect-src if the client was built with VITE_MURMUR_SERVER pointing elsewhere.' },
} satisfies Record<string, Option>

/** Resolved configuration. */
export type Config = {
  [K in keyof typeof OPTIONS]: (typeof OPTIONS)[K]['default'] extends number
    ? number
    : (typeof OPTIONS)[K]['default'] extends boolean
      ? boolean
      : (typeof OPTIONS)[K]['default'] extends string
        ? string
        : string[]
}

/** Thrown for an unknown flag or a value of the wrong type. */
export class ConfigError extends Error {
  override name = 'ConfigError'
}

function parseValue(opt: Option, raw: string, source: string): Config[keyof Config] {
  switch (opt.kind) {
    case 'int': {
      const n = Number(raw)
      if (!Number.isInteger(n) || n < 0) throw new ConfigError(`${source}: expected a non-negative integer, got "${raw}"`)
      return n
    }
    case 'bool':
      if (/^(1|true|yes|on)$/i.test(raw)) return true
      if (/^(0|false|no|off)$/i.test(raw)) return false
      throw new ConfigError(`${source}: expected true or false, got "${raw}"`)
    case 'list':
      return raw.split(',').map((s) => s.trim()).filter(Boolean)
    default:
      return raw
  }
}

/** Builds the configuration from defaults, then `env`, then `argv` flags. */
export function parseConfig(argv: string[], env: Record<string, string | undefined> = {}): Config {
  const config: Record<string, unknown> = {}
  const entries = Object.entries(OPTIONS) as [keyof Config, Option][]
  for (const [key, opt] of entries) {
    const fromEnv = env[opt.env]
    config[key] = fromEnv !== undefined && fromEnv !== '' ? parseValue(opt, fromEnv, opt.env) : opt.default
  }
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i]
    const [flag, inline] = arg.includes('=') ? [arg.slice(0, arg.indexOf('=')), arg.slice(arg.indexOf('=') + 1)] : [arg, undefined]
    const entry = entries.find(([, o]) => o.flag === flag)
    if (!entry) throw new ConfigError(`unknown option ${flag} (see --help)`)
    const [key, opt] = entry
    let raw = inline
    if (raw === undefined) {
      if (opt.kind === 'bool' && (argv[i + 1] === undefined || argv[i + 1].startsWith('--'))) raw = 'true'
      else if (argv[i + 1] === undefined) throw new ConfigError(`${flag} needs a value`)
      else raw = argv[++i]
    }
    config[key] = parseValue(opt, raw, flag)
  }
  return config as Config
}

/** The `--help` text: every option with its environment variable and default. */
export function helpText(): string {
  const lines = ['Usage: npm start -- [options]    (or: node --import tsx server/main.ts [options])', '', 'Options (flags override environment variables):']
  for (const opt of Object.values(OPTIONS) as Option[]) {
    const def = Array.isArray(opt.default) ? (opt.default.length ? opt.default.join(',') : '(none)') : opt.default === '' ? '(none)' : String(opt.default)
    lines.push(`  ${opt.flag.padEnd(26)} ${opt.env.padEnd(30)} default: ${def}`)
    lines.push(`      ${opt.help}`)
  }
  lines.push('', 'Commands:', '  token --doc <id> [--mode rw|r] [--ttl <seconds>]   mint an access token (needs MURMUR_AUTH_SECRET or --auth-secret)', '  backup <dest.db> [--data <dir>]                   consistent copy of the database while the server runs', '  --help                                            this text')
  return lines.join('\n')
}
