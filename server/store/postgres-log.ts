/**
 * `LogStore` on PostgreSQL (`--store postgres://…`): private documents'
 * encrypted logs live in the same database and schema as the plain store, so
 * every instance serves every private document. Tables `log_docs(doc_id,
 * write_hash, last_seq, snapshot_seq)` and `log_entries(doc_id, seq, data)`.
 *
 * Every write locks the document's `log_docs` row (`SELECT … FOR UPDATE`)
 * until its commit, so instances appending to one log take turns: seqs are
 * handed out under that lock and an append resolves only after its commit.
 * Appends issued while a commit is in flight are written together in the
 * next transaction (group commit; documents locked in sorted order, so two
 * instances never deadlock). A snapshot deletes the entries it replaces and
 * inserts itself in one transaction under the same lock. Reads run in one
 * repeatable-read transaction, so a snapshot committed meanwhile is seen
 * whole or not at all. The write hash is compared in constant time.
 */
import type { Pool, PoolClient } from 'pg'
import { timingSafeEqual } from 'node:crypto'
import pino, { type Logger } from 'pino'
import { parsePostgresUrl } from './postgres.ts'
import { checkAppendArgs, checkLogArgs, checkReplaceArgs, LogStoreError, type LogRead, type LogStore } from './log-store.ts'

/** Options of `openPostgresLogStore`. */
export interface PostgresLogStoreOptions {
  /** Receives warnings. Default: pino at level `warn`. */
  log?: Logger
  /** Schema holding the tables; overrides `?schema=` in the URL. Default `murmur`. */
  schema?: string
  /** Connections in the pool. Default 4. */
  poolSize?: number
  /** How long connecting may take before start-up fails. Default 5000 ms. */
  connectTimeoutMs?: number
}

interface Pending {
  /** Issue order of the append (groups commit in this order). */
  ticket: number
  docId: string
  hash: Buffer
  entries: Buffer[]
  resolve: (seq: number) => void
  reject: (err: unknown) => void
}

const invalid = (m: string) => new LogStoreError('invalid-argument', m)
const forbidden = (docId: string) => new LogStoreError('forbidden', `wrong write capability for ${docId}`)
const sameHash = (a: Uint8Array, b: Uint8Array) => a.byteLength === b.byteLength && timingSafeEqual(a, b)
const toBuffer = (u: Uint8Array) => Buffer.from(u.buffer, u.byteOffset, u.byteLength)


/** A stable 32-bit advisory-lock key (same scheme as `postgres.ts`, distinct name). */
function lockKey(name: string): number {
  let h = 0x811c9dc5
  for (let i = 0; i < name.length; i++) h = Math.imul(h ^ name.charCodeAt(i), 0x01000193)
  return h | 0
}

/**
 * Connects to `url` (`postgres://…[?schema=name]`), creates the log tables if
 * needed (instances starting together take turns) and returns the store.
 */
export async function openPostgresLogStore(url: string, opts: PostgresLogStoreOptions = {}): Promise<LogStore> {
  const { default: pg } = await import('pg')
  const parsed = parsePostgresUrl(url)
  const schema = opts.schema ?? parsed.schema ?? 'murmur'
  if (!/^[a-z_][a-z0-9_]{0,62}$/.test(schema)) throw invalid(`schema name "${schema}" must match [a-z_][a-z0-9_]*`)
  const s = `"${schema}"`
  const log = opts.log ?? pino({ name: 'log-store', level: 'warn' })
  const pool: Pool = new pg.Pool({ connectionString: parsed.connectionString, max: opts.poolSize ?? 4, connectionTimeoutMillis: opts.connectTimeoutMs ?? 5000 })
  pool.on('error', (err) => log.warn({ err: err.message }, 'log store: postgres connection lost'))
  try {
    await tx(async (c) => {
      await c.query('SELECT pg_advisory_xact_lock($1)', [lockKey(`${schema}\0log-migrate`)])
      await c.query(`CREATE SCHEMA IF NOT EXISTS ${s}`)
      await c.query(`
        CREATE TABLE IF NOT EXISTS ${s}.log_docs (
          doc_id       TEXT PRIMARY KEY,
          write_hash   BYTEA NOT NULL,
          last_seq     BIGINT NOT NULL,
          snapshot_seq BIGINT NOT NULL
        );
        CREATE TABLE IF NOT EXISTS ${s}.log_entries (
          doc_id TEXT NOT NULL,
          seq    BIGINT NOT NULL,
          data   BYTEA NOT NULL,
          PRIMARY KEY (doc_id, seq)
        );
        -- Ciphertext does not compress: skip TOAST compression.
        ALTER TABLE ${s}.log_entries ALTER COLUMN data SET STORAGE EXTERNAL;`)
    })
  } catch (err) {
    await pool.end().catch(() => {})
    throw err
  }

  /** Runs `fn` in one transaction (`begin` statement), committing or rolling back. */
  async function tx<T>(fn: (c: PoolClient) => Promise<T>, begin = 'BEGIN'): Promise<T> {
    const c = await pool.connect()
    try {
      await c.query(begin)
      const out = await fn(c)
      await c.query('COMMIT')
      return out
    } catch (err) {
      await c.query('ROLLBACK').catch(() => {})
      throw err
    } finally {
      c.release()
    }
  }

  /** The document's row, locked until commit; created with `hash` if missing. */
  async function lockDoc(c: PoolClient, docId: string, hash: Buffer | null): Promise<{ hash: Buffer; last: number; snap: number } | null> {
    if (hash) await c.query(`INSERT INTO ${s}.log_docs (doc_id, write_hash, last_seq, snapshot_seq) VALUES ($1, $2, 0, 0) ON CONFLICT (doc_id) DO NOTHING`, [docId, hash])
    const r = await c.query<{ write_hash: Buffer; last_seq: string; snapshot_seq: string }>(`SELECT write_hash, last_seq, snapshot_seq FROM ${s}.log_docs WHERE doc_id = $1 FOR UPDATE`, [docId])
    const row = r.rows[0]
    return row ? { hash: row.write_hash, last: Number(row.last_seq), snap: Number(row.snapshot_seq) } : null
  }

  let queue: Pending[] = []
  let committing: Promise<void> | null = null
  let closed = false
  let issued = 0
  /** Every append with a ticket up to this one is committed (or failed). */
  let settled = 0

  /** Writes one group in one transaction; an append with the wrong hash is refused alone. */
  async function commitGroup(group: Pending[]): Promise<void> {
    const byDoc = new Map<string, Pending[]>()
    for (const p of group) byDoc.set(p.docId, [...(byDoc.get(p.docId) ?? []), p])
    const outcome = new Map<Pending, number | LogStoreError>()
    try {
      await tx(async (c) => {
        const ids: string[] = []
        const seqs: number[] = []
        const datas: Buffer[] = []
        for (const docId of [...byDoc.keys()].sort()) {
          const pendings = byDoc.get(docId)!
          const row = (await lockDoc(c, docId, pendings[0]!.hash))!
          let seq = row.last
          for (const p of pendings) {
            if (!sameHash(row.hash, p.hash)) {
              outcome.set(p, forbidden(docId))
              continue
            }
            for (const e of p.entries) {
              ids.push(docId)
              seqs.push(++seq)
              datas.push(e)
            }
            outcome.set(p, seq)
          }
          if (seq !== row.last) await c.query(`UPDATE ${s}.log_docs SET last_seq = $2 WHERE doc_id = $1`, [docId, seq])
          // A document created by a refused first write stores nothing: no row either.
          if (row.last === 0 && seq === 0) await c.query(`DELETE FROM ${s}.log_docs WHERE doc_id = $1 AND last_seq = 0`, [docId])
        }
        if (ids.length) await c.query(`INSERT INTO ${s}.log_entries (doc_id, seq, data) SELECT * FROM unnest($1::text[], $2::bigint[], $3::bytea[])`, [ids, seqs, datas])
      })
    } catch (err) {
      for (const p of group) p.reject(err)
      return
    }
    for (const p of group) {
      const r = outcome.get(p)!
      if (typeof r === 'number') p.resolve(r)
      else p.reject(r)
    }
  }

  function pump(): void {
    if (committing || queue.length === 0) return
    const group = queue
    queue = []
    committing = commitGroup(group).finally(() => {
      settled = group.at(-1)!.ticket
      committing = null
      pump()
    })
  }

  /** Resolves once every append issued so far is committed (or failed); later ones are not waited for, so writers cannot starve a read. */
  async function drained(): Promise<void> {
    const target = issued
    while (settled < target) {
      pump()
      await committing
    }
  }

  function ensureOpen(): void {
    if (closed) throw new LogStoreError('closed', `postgres log store (schema ${schema}) is closed`)
  }

  return {
    async read(docId: string, afterSeq: number): Promise<LogRead> {
      ensureOpen()
      checkLogArgs(docId, undefined)
      await drained()
      return tx(async (c) => {
        const r = await c.query<{ last_seq: string; snapshot_seq: string }>(`SELECT last_seq, snapshot_seq FROM ${s}.log_docs WHERE doc_id = $1`, [docId])
        const row = r.rows[0]
        if (!row) return { entries: [], lastSeq: 0, sinceSnapshot: 0 }
        const snap = Number(row.snapshot_seq)
        const from = afterSeq < snap ? snap : afterSeq + 1
        const e = await c.query<{ seq: string; data: Buffer }>(`SELECT seq, data FROM ${s}.log_entries WHERE doc_id = $1 AND seq >= $2 ORDER BY seq`, [docId, from])
        const n = await c.query<{ n: string }>(`SELECT count(*) AS n FROM ${s}.log_entries WHERE doc_id = $1 AND seq > $2`, [docId, snap])
        return {
          entries: e.rows.map((x) => ({ seq: Number(x.seq), snapshot: Number(x.seq) === snap, data: new Uint8Array(x.data.buffer, x.data.byteOffset, x.data.byteLength) })),
          lastSeq: Number(row.last_seq),
          sinceSnapshot: Number(n.rows[0]!.n),
        }
      }, 'BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY')
    },

    append(docId: string, writeHash: Uint8Array, entries: Uint8Array[]): Promise<number> {
      try {
        ensureOpen()
        checkAppendArgs(docId, writeHash, entries)
      } catch (err) {
        return Promise.reject(err)
      }
      return new Promise<number>((resolve, reject) => {
        queue.push({ ticket: ++issued, docId, hash: Buffer.from(writeHash), entries: entries.map((e) => Buffer.from(e)), resolve, reject })
        // Join appends issued in this turn before starting a commit.
        setImmediate(pump)
      })
    },

    async replace(docId: string, writeHash: Uint8Array, upToSeq: number, snapshot: Uint8Array): Promise<boolean> {
      ensureOpen()
      checkReplaceArgs(docId, writeHash, upToSeq, snapshot)
      const data = toBuffer(snapshot)
      await drained()
      return tx(async (c) => {
        const row = await lockDoc(c, docId, null)
        if (!row) throw invalid(`replace ${docId}: no such log`)
        if (!sameHash(row.hash, writeHash)) throw forbidden(docId)
        if (upToSeq > row.last) throw invalid(`replace ${docId}: upToSeq ${upToSeq} past the last seq ${row.last}`)
        if (upToSeq <= row.snap) return false
        await c.query(`DELETE FROM ${s}.log_entries WHERE doc_id = $1 AND seq <= $2`, [docId, upToSeq])
        await c.query(`INSERT INTO ${s}.log_entries (doc_id, seq, data) VALUES ($1, $2, $3)`, [docId, upToSeq, data])
        await c.query(`UPDATE ${s}.log_docs SET snapshot_seq = $2 WHERE doc_id = $1`, [docId, upToSeq])
        return true
      })
    },

    async exists(docId: string): Promise<boolean> {
      ensureOpen()
      await drained()
      const r = await pool.query(`SELECT 1 FROM ${s}.log_docs WHERE doc_id = $1`, [docId])
      return r.rows.length > 0
    },

    async bytes(docId: string): Promise<number> {
      ensureOpen()
      await drained()
      const r = await pool.query<{ n: string }>(`SELECT coalesce(sum(octet_length(data)), 0) AS n FROM ${s}.log_entries WHERE doc_id = $1`, [docId])
      return Number(r.rows[0]!.n)
    },

    async close(): Promise<void> {
      if (closed) return
      closed = true
      await drained()
      await pool.end()
    },
  }
}
