/**
 * A `Store` on PostgreSQL (`--store postgres://…`), for several murmur
 * instances sharing one database. Same promise as the SQLite store: an append
 * resolves only after its transaction commits.
 *
 * Layout (in one schema, `murmur` unless the URL says `?schema=name`):
 * `docs(doc_id, last_seq)` holds each document's last sequence number and
 * `updates(doc_id, seq, data)` the log. An append bumps `docs.last_seq` with
 * one upsert, which takes that row's lock until commit, so instances appending
 * to one document take turns and never allocate the same numbers; the rows
 * are then inserted with the numbers the upsert returned.
 *
 * Group commit: appends issued while a commit is in flight are queued and
 * written together in the next transaction (one upsert per document, one
 * multi-row insert), so a busy server makes a few round trips per commit,
 * not one per keystroke. Documents are locked in sorted order, so two
 * instances committing groups never deadlock.
 *
 * Compaction runs in its own transaction under a per-document advisory
 * lock (one instance at a time); an instance that dies mid-way leaves the old
 * rows, since nothing commits.
 */
import type { Pool, PoolClient } from 'pg'
import pino, { type Logger } from 'pino'
import { StoreError, type Store, type StoredDoc } from './store.ts'

/** Schema version kept in `<schema>.meta`; bump it and add a step to `MIGRATIONS` to change the schema. */
export const POSTGRES_SCHEMA_VERSION = 1

/** Schema steps: `MIGRATIONS[v]` upgrades from version `v` to `v + 1` (`S` stands for the quoted schema name). */
const MIGRATIONS: readonly ((s: string) => string)[] = [
  (s) => `
    CREATE TABLE IF NOT EXISTS ${s}.docs (
      doc_id   TEXT PRIMARY KEY,
      last_seq BIGINT NOT NULL
    );
    CREATE TABLE IF NOT EXISTS ${s}.updates (
      doc_id TEXT NOT NULL,
      seq    BIGINT NOT NULL,
      data   BYTEA NOT NULL,
      PRIMARY KEY (doc_id, seq)
    );
    -- Yjs updates compress poorly and are read whole: skip TOAST compression.
    ALTER TABLE ${s}.updates ALTER COLUMN data SET STORAGE EXTERNAL;`,
]

/** Options of `openPostgresStore`. */
export interface PostgresStoreOptions {
  /** Receives warnings and debug lines. Default: pino at level `warn`. */
  log?: Logger
  /** Schema holding the tables; overrides `?schema=` in the URL. Default `murmur`. */
  schema?: string
  /** Connections in the pool. Default 8: one commits while the others load and compact. */
  poolSize?: number
  /** How long connecting may take before start-up fails. Default 5000 ms. */
  connectTimeoutMs?: number
}

interface PendingAppend {
  docId: string
  updates: Uint8Array[]
  resolve: (seq: number) => void
  reject: (err: unknown) => void
}

function invalid(message: string): StoreError {
  return new StoreError('invalid-argument', message)
}

function checkDocId(docId: unknown): asserts docId is string {
  if (typeof docId !== 'string' || docId.length === 0) throw invalid('docId must be a non-empty string')
}

/** Splits `?schema=` off a connection URL (node-postgres would pass it on as a server option). */
export function parsePostgresUrl(url: string): { connectionString: string; schema?: string } {
  const u = new URL(url)
  const schema = u.searchParams.get('schema') ?? undefined
  u.searchParams.delete('schema')
  return { connectionString: u.toString(), schema }
}

/** A stable 32-bit key for `pg_advisory_xact_lock`, from the schema and document id. */
function lockKey(schema: string, docId: string): number {
  let h = 0x811c9dc5
  const s = `${schema}\0${docId}`
  for (let i = 0; i < s.length; i++) h = Math.imul(h ^ s.charCodeAt(i), 0x01000193)
  return h | 0
}

async function migrate(pool: Pool, schema: string): Promise<void> {
  const s = `"${schema}"`
  const client = await pool.connect()
  try {
    await client.query('BEGIN')
    // Instances starting together migrate one at a time.
    await client.query('SELECT pg_advisory_xact_lock($1)', [lockKey(schema, '\0migrate')])
    await client.query(`CREATE SCHEMA IF NOT EXISTS ${s}`)
    await client.query(`CREATE TABLE IF NOT EXISTS ${s}.meta (key TEXT PRIMARY KEY, value TEXT NOT NULL)`)
    const row = await client.query<{ value: string }>(`SELECT value FROM ${s}.meta WHERE key = 'schema_version'`)
    const version = row.rows.length ? Number(row.rows[0]!.value) : 0
    if (version > POSTGRES_SCHEMA_VERSION) {
      throw new StoreError('newer-schema', `schema ${schema} has version ${version}; this murmur understands up to ${POSTGRES_SCHEMA_VERSION}`)
    }
    for (let v = version; v < POSTGRES_SCHEMA_VERSION; v++) await client.query(MIGRATIONS[v]!(s))
    await client.query(
      `INSERT INTO ${s}.meta (key, value) VALUES ('schema_version', $1) ON CONFLICT (key) DO UPDATE SET value = excluded.value`,
      [String(POSTGRES_SCHEMA_VERSION)],
    )
    await client.query('COMMIT')
  } catch (err) {
    await client.query('ROLLBACK').catch(() => {})
    throw err
  } finally {
    client.release()
  }
}

/**
 * Connects to `url` (`postgres://user@host:port/db[?schema=name]`), creates
 * or migrates the schema, and returns the store. `pg` is imported here, so a
 * server on SQLite never loads it. Rejects when the server cannot be reached
 * within `connectTimeoutMs`, or with a `StoreError` (`newer-schema`) when the
 * schema was written by a newer murmur.
 */
export async function openPostgresStore(url: string, opts: PostgresStoreOptions = {}): Promise<Store> {
  const { default: pg } = await import('pg')
  const parsed = parsePostgresUrl(url)
  const schema = opts.schema ?? parsed.schema ?? 'murmur'
  if (!/^[a-z_][a-z0-9_]{0,62}$/.test(schema)) throw new StoreError('invalid-argument', `schema name "${schema}" must match [a-z_][a-z0-9_]*`)
  const s = `"${schema}"`
  const log = opts.log ?? pino({ name: 'store', level: 'warn' })
  const pool: Pool = new pg.Pool({
    connectionString: parsed.connectionString,
    max: opts.poolSize ?? 8,
    connectionTimeoutMillis: opts.connectTimeoutMs ?? 5000,
  })
  // An idle connection dropped by the server must not crash the process; the next query reconnects.
  pool.on('error', (err) => log.warn({ err: err.message }, 'store: postgres connection lost'))
  try {
    await migrate(pool, schema)
  } catch (err) {
    await pool.end().catch(() => {})
    throw err
  }

  let queue: PendingAppend[] = []
  let committing: Promise<void> | null = null
  /** Per document, the last operation issued (append, compact, load), so each waits for those before it. */
  const tails = new Map<string, Promise<unknown>>()
  let closed = false

  function after<T>(docId: string, op: () => Promise<T>): Promise<T> {
    const prev = tails.get(docId) ?? Promise.resolve()
    const p = prev.then(op, op)
    const tail = p.catch(() => {})
    tails.set(docId, tail)
    void tail.then(() => {
      if (tails.get(docId) === tail) tails.delete(docId)
    })
    return p
  }

  /** Writes one group in one transaction; resolves each append with its last seq. */
  async function commitGroup(group: PendingAppend[]): Promise<void> {
    const counts = new Map<string, number>()
    for (const p of group) counts.set(p.docId, (counts.get(p.docId) ?? 0) + p.updates.length)
    const docIds = [...counts.keys()].sort()
    let client: PoolClient | undefined
    try {
      client = await pool.connect()
      await client.query('BEGIN')
      const next = new Map<string, number>()
      for (const docId of docIds) {
        const n = counts.get(docId)!
        const r = await client.query<{ last_seq: string }>(
          `INSERT INTO ${s}.docs (doc_id, last_seq) VALUES ($1, $2)
           ON CONFLICT (doc_id) DO UPDATE SET last_seq = ${s}.docs.last_seq + excluded.last_seq
           RETURNING last_seq`,
          [docId, n],
        )
        next.set(docId, Number(r.rows[0]!.last_seq) - n)
      }
      const ids: string[] = []
      const seqs: number[] = []
      const datas: Buffer[] = []
      const lasts: number[] = []
      for (const p of group) {
        let seq = next.get(p.docId)!
        for (const u of p.updates) {
          ids.push(p.docId)
          seqs.push(++seq)
          datas.push(Buffer.from(u.buffer, u.byteOffset, u.byteLength))
        }
        next.set(p.docId, seq)
        lasts.push(seq)
      }
      await client.query(`INSERT INTO ${s}.updates (doc_id, seq, data) SELECT * FROM unnest($1::text[], $2::bigint[], $3::bytea[])`, [ids, seqs, datas])
      await client.query('COMMIT')
      group.forEach((p, i) => p.resolve(lasts[i]!))
    } catch (err) {
      await client?.query('ROLLBACK').catch(() => {})
      for (const p of group) p.reject(err)
    } finally {
      client?.release()
    }
  }

  /** Commits queued appends, one group at a time, until the queue is empty. */
  function pump(): void {
    if (committing || queue.length === 0) return
    const group = queue
    queue = []
    committing = commitGroup(group).finally(() => {
      committing = null
      pump()
    })
  }

  function ensureOpen(): void {
    if (closed) throw new StoreError('closed', `postgres store (schema ${schema}) is closed`)
  }

  async function lastSeqOf(docId: string): Promise<number> {
    const r = await pool.query<{ last_seq: string }>(`SELECT last_seq FROM ${s}.docs WHERE doc_id = $1`, [docId])
    return r.rows.length ? Number(r.rows[0]!.last_seq) : 0
  }

  return {
    async load(docId: string): Promise<StoredDoc> {
      ensureOpen()
      checkDocId(docId)
      return after(docId, async () => {
        const r = await pool.query<{ seq: string; data: Buffer }>(`SELECT seq, data FROM ${s}.updates WHERE doc_id = $1 ORDER BY seq`, [docId])
        const updates: Uint8Array[] = r.rows.map((row) => row.data)
        const bytes = updates.reduce((n, u) => n + u.byteLength, 0)
        // Compaction keeps a row at the last seq it covers, so the last row is the last seq.
        const lastSeq = r.rows.length ? Number(r.rows[r.rows.length - 1]!.seq) : 0
        return { updates, lastSeq, bytes }
      })
    },

    append(docId: string, updates: Uint8Array[]): Promise<number> {
      try {
        ensureOpen()
        checkDocId(docId)
        if (!Array.isArray(updates)) throw invalid('updates must be an array')
        for (const u of updates) {
          if (!(u instanceof Uint8Array)) throw invalid('every update must be a Uint8Array')
          if (u.byteLength === 0) throw invalid('an empty update is not a valid Yjs update')
        }
      } catch (err) {
        return Promise.reject(err)
      }
      if (updates.length === 0) return after(docId, () => lastSeqOf(docId))
      const batch = updates.slice()
      return after(
        docId,
        () =>
          new Promise<number>((resolve, reject) => {
            queue.push({ docId, updates: batch, resolve, reject })
            // Join appends issued in this turn before starting a commit.
            setImmediate(pump)
          }),
      )
    },

    async compact(docId: string, upToSeq: number, snapshot: Uint8Array): Promise<void> {
      ensureOpen()
      checkDocId(docId)
      if (!Number.isSafeInteger(upToSeq) || upToSeq < 1) throw invalid(`upToSeq must be a positive integer, got ${upToSeq}`)
      if (!(snapshot instanceof Uint8Array) || snapshot.byteLength === 0) throw invalid('snapshot must be a non-empty Uint8Array')
      const data = Buffer.from(snapshot.buffer, snapshot.byteOffset, snapshot.byteLength)
      return after(docId, async () => {
        const client = await pool.connect()
        try {
          await client.query('BEGIN')
          await client.query('SELECT pg_advisory_xact_lock($1)', [lockKey(schema, docId)])
          const r = await client.query<{ first: string | null; last: string | null }>(
            `SELECT min(seq) AS first, max(seq) AS last FROM ${s}.updates WHERE doc_id = $1`,
            [docId],
          )
          const first = r.rows[0]!.first == null ? null : Number(r.rows[0]!.first)
          const last = r.rows[0]!.last == null ? 0 : Number(r.rows[0]!.last)
          if (first == null || upToSeq < first || upToSeq > last) {
            throw invalid(`compact ${docId}: upToSeq ${upToSeq} outside the stored range ${first ?? 0}..${last}`)
          }
          const del = await client.query(`DELETE FROM ${s}.updates WHERE doc_id = $1 AND seq <= $2`, [docId, upToSeq])
          await client.query(`INSERT INTO ${s}.updates (doc_id, seq, data) VALUES ($1, $2, $3)`, [docId, upToSeq, data])
          await client.query('COMMIT')
          log.debug({ docId, upToSeq, removed: del.rowCount, bytes: snapshot.byteLength }, 'store: compacted')
        } catch (err) {
          await client.query('ROLLBACK').catch(() => {})
          throw err
        } finally {
          client.release()
        }
      })
    },

    async usedBytes(): Promise<number> {
      ensureOpen()
      await Promise.all(tails.values())
      const r = await pool.query<{ n: string }>(
        // Private documents' logs (postgres-log.ts) share the schema and the budget.
        `SELECT pg_total_relation_size('${s}.updates') + pg_total_relation_size('${s}.docs') + pg_total_relation_size('${s}.meta')
           + coalesce(pg_total_relation_size(to_regclass('${s}.log_entries')), 0) + coalesce(pg_total_relation_size(to_regclass('${s}.log_docs')), 0) AS n`,
      )
      return Number(r.rows[0]!.n)
    },

    async checkWritable(): Promise<void> {
      ensureOpen()
      await pool.query(
        `INSERT INTO ${s}.meta (key, value) VALUES ('write_check', $1) ON CONFLICT (key) DO UPDATE SET value = excluded.value`,
        [String(Date.now())],
      )
    },

    async close(): Promise<void> {
      if (closed) return
      closed = true
      await Promise.all(tails.values())
      await pool.end()
    },
  }
}
