/**
 * Hocuspocus (`@hocuspocus/server`) with its SQLite extension, as the backup
 * benchmark's persistent alternative. Run as its own process:
 *
 *   node --import tsx bench/lib/backup-hocus-server.ts '{"db":"/tmp/x/hp.sqlite","debounce":0}'
 *
 * `debounce` omitted (or null) keeps Hocuspocus's defaults (debounce 2000 ms,
 * maxDebounce 10000 ms). Prints `hocuspocus <version> listening <port> <pragmas>`.
 *
 * Hocuspocus has no "durable" acknowledgement to clients, so this wrapper
 * counts on the server side what its persistence actually covers:
 * - `applied`: document updates integrated (its `onChange` hook, per update);
 * - `durable`: updates covered by a completed store — a counting extension
 *   with higher priority than the SQLite extension records `applied` when
 *   `onStoreDocument` starts (the SQLite extension then encodes the whole
 *   document and upserts its row, synchronously, in the same microtask
 *   chain), and `afterStoreDocument` (which runs only after every
 *   `onStoreDocument` hook resolved) marks that count durable.
 * `GET /stats` (optionally `?doc=<name>`) returns those counters as JSON;
 * `series` (a file path) also logs the totals over time (see `sample`).
 */
import type { IncomingMessage, ServerResponse } from 'node:http'
import { appendFileSync, readFileSync } from 'node:fs'
import { join } from 'node:path'
import { Server, type Extension } from '@hocuspocus/server'
import { SQLite } from '@hocuspocus/extension-sqlite'

const opts = JSON.parse(process.argv[2] ?? '{}') as { db: string; debounce?: number | null; maxDebounce?: number | null; series?: string }
const version = JSON.parse(readFileSync(join(import.meta.dirname, '../../node_modules/@hocuspocus/server/package.json'), 'utf8')).version as string

interface DocCounters {
  applied: number
  covering: number
  durable: number
  stores: number
}
const docs = new Map<string, DocCounters>()
const counters = (name: string) => {
  let c = docs.get(name)
  if (!c) docs.set(name, (c = { applied: 0, covering: 0, durable: 0, stores: 0 }))
  return c
}
const totals = () => {
  const t = { applied: 0, durable: 0, stores: 0, docs: docs.size }
  for (const c of docs.values()) {
    t.applied += c.applied
    t.durable += c.durable
    t.stores += c.stores
  }
  return t
}

/**
 * With `series`, appends `<Date.now()> <applied> <durable>` (totals) to that
 * file whenever a store finishes and at most every 5 ms on updates. Written
 * synchronously, so it stays exact even while queued stores keep the event
 * loop from answering HTTP (as happens with `debounce: 0` under load).
 */
let appliedTotal = 0
let durableTotal = 0
let lastLine = 0
const sample = (force: boolean) => {
  if (!opts.series) return
  const now = Date.now()
  if (!force && now - lastLine < 5) return
  lastLine = now
  appendFileSync(opts.series, `${now} ${appliedTotal} ${durableTotal}\n`)
}

const counting: Extension = {
  extensionName: 'bench-counters',
  priority: 1000,
  async onChange({ documentName }) {
    counters(documentName).applied++
    appliedTotal++
    sample(false)
  },
  async onStoreDocument({ documentName }) {
    const c = counters(documentName)
    c.covering = c.applied
  },
  async afterStoreDocument({ documentName }) {
    const c = counters(documentName)
    if (c.covering > c.durable) {
      durableTotal += c.covering - c.durable
      c.durable = c.covering
    }
    c.stores++
    sample(true)
  },
  async onRequest({ request, response }: { request: IncomingMessage; response: ServerResponse }) {
    const url = new URL(request.url ?? '/', 'http://x')
    if (url.pathname !== '/stats') return
    const doc = url.searchParams.get('doc')
    response.writeHead(200, { 'content-type': 'application/json' })
    response.end(JSON.stringify(doc ? (docs.get(doc) ?? { applied: 0, covering: 0, durable: 0, stores: 0 }) : totals()))
    // Rejecting with nothing stops Hocuspocus's default "Welcome" response.
    return Promise.reject()
  },
}

const sqlite = new SQLite({ database: opts.db })
const config: Record<string, unknown> = { port: 0, address: '127.0.0.1', quiet: true, stopOnSignals: true, extensions: [counting, sqlite] }
if (opts.debounce != null) config.debounce = opts.debounce
if (opts.maxDebounce != null) config.maxDebounce = opts.maxDebounce
const server = new Server(config)
await server.listen()
// onConfigure (which opens the database) is not awaited by Hocuspocus; wait for it.
while (!sqlite.db) await new Promise((r) => setTimeout(r, 5))
const pragmas = `journal_mode=${sqlite.db.pragma('journal_mode', { simple: true })} synchronous=${sqlite.db.pragma('synchronous', { simple: true })}`
process.stdout.write(`hocuspocus ${version} listening ${server.address.port} ${pragmas}\n`)
