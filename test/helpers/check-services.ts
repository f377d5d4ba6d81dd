/**
 * `.ci/run` calls this before the tests: exits 1 with a clear message unless
 * the PostgreSQL and Redis the cluster tests use answer within a few seconds.
 *
 *   node --import tsx test/helpers/check-services.ts
 */
import { checkRedis, freshPostgresDatabase, POSTGRES_URL, REDIS_URL } from './services.ts'

let failed = false
try {
  const db = await freshPostgresDatabase()
  await db.drop()
  process.stdout.write(`PostgreSQL answers at ${POSTGRES_URL}\n`)
} catch (err) {
  process.stderr.write(`${(err as Error).message}\n`)
  failed = true
}
try {
  await checkRedis()
  process.stdout.write(`Redis answers at ${REDIS_URL}\n`)
} catch (err) {
  process.stderr.write(`${(err as Error).message}\n`)
  failed = true
}
process.exit(failed ? 1 : 0)
