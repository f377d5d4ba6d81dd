/**
 * The real PostgreSQL and Redis of the machine, for tests of the multi-instance
 * mode: `MURMUR_TEST_POSTGRES` (default `postgres://postgres@127.0.0.1:5432/postgres`)
 * and `MURMUR_TEST_REDIS` (default `redis://127.0.0.1:6379`). Each test run gets a
 * database of its own, dropped afterwards, and a Redis channel prefix of its own.
 * When a service does not answer within a few seconds the helper throws a
 * message naming it, so a run fails at once instead of hanging.
 */
import { randomBytes } from 'node:crypto'
import pg from 'pg'
import { Redis } from 'ioredis'

/** Admin URL of the test PostgreSQL server. */
export const POSTGRES_URL = process.env.MURMUR_TEST_POSTGRES ?? 'postgres://postgres@127.0.0.1:5432/postgres'
/** URL of the test Redis server. */
export const REDIS_URL = process.env.MURMUR_TEST_REDIS ?? 'redis://127.0.0.1:6379'

/** A fresh database: its URL, and `drop()` to remove it. */
export async function freshPostgresDatabase(): Promise<{ url: string; drop: () => Promise<void> }> {
  const name = `murmur_test_${process.pid}_${randomBytes(4).toString('hex')}`
  const admin = new pg.Client({ connectionString: POSTGRES_URL, connectionTimeoutMillis: 3000 })
  try {
    await admin.connect()
    await admin.query(`CREATE DATABASE ${name}`)
  } catch (err) {
    throw new Error(`PostgreSQL at ${POSTGRES_URL} did not answer (${(err as Error).message}); start it or set MURMUR_TEST_POSTGRES`)
  } finally {
    await admin.end().catch(() => {})
  }
  const url = new URL(POSTGRES_URL)
  url.pathname = `/${name}`
  return {
    url: url.toString(),
    async drop() {
      const c = new pg.Client({ connectionString: POSTGRES_URL, connectionTimeoutMillis: 3000 })
      await c.connect()
      try {
        await c.query(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`)
      } finally {
        await c.end()
      }
    },
  }
}

/** Throws a clear message unless Redis answers PING within 3 s; returns a fresh key prefix for this run. */
export async function checkRedis(): Promise<string> {
  const r = new Redis(REDIS_URL, { lazyConnect: true, connectTimeout: 3000, maxRetriesPerRequest: 0, retryStrategy: () => null })
  r.on('error', () => {})
  try {
    await r.connect()
    await r.ping()
  } catch (err) {
    throw new Error(`Redis at ${REDIS_URL} did not answer (${(err as Error).message}); start it or set MURMUR_TEST_REDIS`)
  } finally {
    r.disconnect()
  }
  return `murmur-test-${process.pid}-${randomBytes(4).toString('hex')}`
}
