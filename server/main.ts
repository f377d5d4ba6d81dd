/**
 * The murmur server's command line: `serve` (default), `token`, `backup`, `--help`.
 * Serves the built client, `/signal`, `/sync/<docId>`, `/log/<docId>`, `/healthz`,
 * `/metrics` and `/config.json` on one port; SIGTERM/SIGINT stop accepting,
 * flush storage and exit 0.
 */
import { mkdirSync } from 'node:fs'
import { resolve } from 'node:path'
import { pino, type Logger } from 'pino'
import { ConfigError, helpText, parseConfig, type Config } from './config.ts'
import { mintToken } from './auth.ts'
import { createMetrics, type Metrics } from './metrics.ts'
import { createHttpServer } from './http.ts'
import { createSignaling } from './signaling.ts'
import { createSync } from './sync.ts'
import { createRooms } from './rooms.ts'
import { backupSqliteStore, openSqliteStore } from './store/sqlite.ts'
import { openSqliteLogStore } from './store/sqlite-log.ts'
import type { LogStore } from './store/log-store.ts'
import { createLog } from './log.ts'
import type { ServerContext } from './context.ts'
import { localFanout } from './fanout/fanout.ts'
import { createLoadGuard } from './load-guard.ts'
import type { Store } from './store/store.ts'

/** Connects the Redis fan-out (`ioredis` is loaded only with `--redis`). */
async function connectRedisFanout(...args: Parameters<typeof import('./fanout/redis.ts').connectRedisFanout>) {
  const { connectRedisFanout } = await import('./fanout/redis.ts')
  return connectRedisFanout(...args)
}

function fail(message: string): never {
  process.stderr.write(`murmur: ${message}\n`)
  process.exit(2)
}

/** `token --doc <id> [--mode rw|r] [--ttl seconds]`: prints a signed access token. */
function tokenCommand(args: string[]): void {
  const take = (flag: string) => {
    const i = args.indexOf(flag)
    if (i < 0) return undefined
    const v = args[i + 1]
    args.splice(i, 2)
    return v
  }
  const doc = take('--doc')
  const mode = take('--mode') ?? 'rw'
  const ttl = Number(take('--ttl') ?? 7 * 24 * 3600)
  const config = parseConfig(args, process.env)
  if (!config.authSecret) fail('token: set --auth-secret or MURMUR_AUTH_SECRET')
  if (!doc) fail('token: --doc <docId> is required')
  if (mode !== 'r' && mode !== 'rw') fail('token: --mode must be r or rw')
  if (!Number.isInteger(ttl) || ttl <= 0) fail('token: --ttl must be a positive number of seconds')
  const token = mintToken(config.authSecret, doc, mode, ttl)
  process.stdout.write(`${token}\n`)
  process.stderr.write(`open: <server>/d/${doc}#token=${token}\n`)
}

/** `backup <dest.db> [--data dir]`: a consistent online copy of the database, safe while the server runs. */
async function backupCommand(args: string[]): Promise<void> {
  const dest = args.find((a) => !a.startsWith('--') && args[args.indexOf(a) - 1] !== '--data')
  if (!dest) fail('backup: give a destination file, e.g. npm run backup -- ./murmur-backup.db')
  const config = parseConfig(args.filter((a) => a !== dest), process.env)
  if (config.store !== 'sqlite') fail('backup: this copies the SQLite store; for PostgreSQL use pg_dump (see README, "Several instances")')
  await backupSqliteStore(resolve(config.dataDir), resolve(dest))
  process.stdout.write(`murmur: backed up ${resolve(config.dataDir)} to ${resolve(dest)}\n`)
}

/** The store `--store` names: SQLite in `dataDir` (default) or PostgreSQL (loaded only then). */
async function openStore(config: Config, dataDir: string, log: Logger, metrics?: Metrics): Promise<Store> {
  if (config.store === 'sqlite') {
    mkdirSync(dataDir, { recursive: true })
    if (config.sqliteWriter !== 'worker' && config.sqliteWriter !== 'main') fail(`--sqlite-writer must be worker or main, got "${config.sqliteWriter}"`)
    return openSqliteStore(dataDir, { log, writer: config.sqliteWriter, onCommit: metrics && ((ms) => metrics.storageCommit.observe(ms / 1000)) })
  }
  if (/^postgres(ql)?:\/\//.test(config.store)) {
    const { openPostgresStore } = await import('./store/postgres.ts')
    return openPostgresStore(config.store, { log })
  }
  fail(`--store must be sqlite or a postgres:// URL, got "${config.store}"`)
}

/** Where private documents' logs live: beside the plain store (the same SQLite file, or the same PostgreSQL schema). */
async function openLogStore(config: Config, dataDir: string, log: Logger): Promise<LogStore> {
  if (config.store === 'sqlite') {
    mkdirSync(dataDir, { recursive: true })
    return openSqliteLogStore(dataDir, { log })
  }
  const { openPostgresLogStore } = await import('./store/postgres-log.ts')
  return openPostgresLogStore(config.store, { log })
}

async function serve(config: Config): Promise<void> {
  const log = pino({ level: config.logLevel, base: undefined })
  const metrics = createMetrics()
  const loadGuard = createLoadGuard({ log }, { maxLagMs: config.overloadLagMs, maxHeapBytes: config.overloadHeapBytes })
  loadGuard.onChange((o) => metrics.overloaded.set(o ? 1 : 0))
  const ctx: ServerContext = { config, log, metrics, loadGuard }
  const dataDir = resolve(config.dataDir)
  const store = await openStore(config, dataDir, log, metrics).catch((err: Error) => fail(`cannot open the store: ${err.message}`))
  const fanout = config.redis
    ? await connectRedisFanout(config.redis, { log, prefix: config.redisPrefix }).catch((err: Error) => fail(`cannot reach Redis: ${err.message}`))
    : localFanout
  const rooms = createRooms(ctx, store, fanout)
  const signaling = createSignaling(ctx, fanout)
  const sync = config.backup ? createSync(ctx, rooms, store) : null
  const logStore = await openLogStore(config, dataDir, log).catch((err: Error) => fail(`cannot open the private-document store: ${err.message}`))
  const privateLog = config.backup ? createLog(ctx, logStore, () => store.usedBytes(), fanout) : null
  const server = createHttpServer(ctx, { store, signaling, sync, log: privateLog, logStore, fanout: config.redis ? fanout : undefined })

  server.on('error', (err) => {
    log.fatal({ err: err.message }, 'cannot listen')
    process.exit(1)
  })
  server.listen(config.port, config.host, () => {
    const addr = server.address()
    const port = typeof addr === 'object' && addr ? addr.port : config.port
    const host = config.host === '0.0.0.0' || config.host === '::' ? 'localhost' : config.host.includes(':') ? `[${config.host}]` : config.host
    log.info({ port, host: config.host, dataDir, backup: config.backup, auth: Boolean(config.authSecret) }, 'listening')
    process.stdout.write(`murmur: serving http://${host}:${port}/ (data in ${config.store === 'sqlite' ? dataDir : 'PostgreSQL'}${config.redis ? ', clustered over Redis' : ''}${config.authSecret ? ', tokens required' : ', open to anyone who can reach it'})\n`)
  })

  let stopping = false
  const shutdown = async (signal: string) => {
    if (stopping) return
    stopping = true
    log.info({ signal }, 'shutting down')
    const force = setTimeout(() => {
      log.error('shutdown grace period over; exiting with unflushed work')
      process.exit(1)
    }, config.shutdownGraceMs)
    force.unref()
    server.close()
    await Promise.allSettled([signaling.close(), sync?.close(), privateLog?.close()])
    await Promise.allSettled([store.close(), logStore.close()])
    await fanout.close()
    server.closeAllConnections()
    process.exit(0)
  }
  process.on('SIGTERM', () => void shutdown('SIGTERM'))
  process.on('SIGINT', () => void shutdown('SIGINT'))
  process.on('uncaughtException', (err) => {
    // A bug must not take every room down; log it loudly and keep serving.
    log.error({ err }, 'uncaught exception')
  })
  process.on('unhandledRejection', (err) => log.error({ err }, 'unhandled rejection'))
}

const argv = process.argv.slice(2)
try {
  if (argv.includes('--help') || argv.includes('-h')) process.stdout.write(helpText() + '\n')
  else if (argv[0] === 'token') tokenCommand(argv.slice(1))
  else if (argv[0] === 'backup') await backupCommand(argv.slice(1))
  else await serve(parseConfig(argv[0] === 'serve' ? argv.slice(1) : argv, process.env))
} catch (err) {
  if (err instanceof ConfigError) fail(err.message)
  throw err
}
