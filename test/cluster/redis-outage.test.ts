/**
 * Two instances on a Redis of their own (a `redis-server` child on a free
 * port), which the test kills and restarts: `/healthz` goes red while the link
 * is down, each instance keeps storing what its clients send, and once Redis
 * is back every loaded document catches up from storage, so clients on the
 * other instance receive what they missed.
 */
import { spawn, type ChildProcess } from 'node:child_process'
import { createServer } from 'node:net'
import pg from 'pg'
import { afterAll, expect, test } from 'vitest'
import { untilDoc, yClient } from '../helpers/clients.ts'
import { startServer, type ServerProcess } from '../helpers/server.ts'
import { freshPostgresDatabase } from '../helpers/services.ts'

const db = await freshPostgresDatabase()
const cleanup: (() => Promise<unknown> | void)[] = []
afterAll(async () => {
  for (const f of cleanup.reverse()) await f()
  await db.drop()
})

function freePort(): Promise<number> {
  return new Promise((res) => {
    const s = createServer().listen(0, '127.0.0.1', () => {
      const port = (s.address() as { port: number }).port
      s.close(() => res(port))
    })
  })
}

/** Starts `redis-server` on `port` without persistence; resolves once it accepts connections. */
async function startRedis(port: number): Promise<ChildProcess> {
  const child = spawn('redis-server', ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no'], { stdio: ['ignore', 'pipe', 'pipe'] })
  let out = ''
  await new Promise<void>((res, rej) => {
    child.once('error', (err) => rej(new Error(`redis-server could not be started (${err.message}); the Redis outage test needs the redis-server binary`)))
    child.stdout!.on('data', (d) => {
      out += d
      if (/Ready to accept connections/.test(out)) res()
    })
    child.once('exit', (code) => rej(new Error(`redis-server exited with ${code}:\n${out}`)))
  })
  return child
}

async function health(s: ServerProcess): Promise<{ status: number; body: Record<string, unknown> }> {
  const r = await fetch(`${s.url}/healthz`)
  return { status: r.status, body: (await r.json()) as Record<string, unknown> }
}

test('Redis down: /healthz goes red, edits are still stored, and the other instance catches up when Redis is back', async () => {
  const port = await freePort()
  let redis = await startRedis(port)
  cleanup.push(() => void redis.kill('SIGKILL'))
  const args = ['--store', db.url, '--redis', `redis://127.0.0.1:${port}`]
  const servers = await Promise.all([startServer({ args }), startServer({ args })])
  cleanup.push(() => Promise.all(servers.map((s) => s.stop())))
  const [a, b] = servers.map((s) => yClient(s.wsUrl, 'outage'))
  cleanup.push(() => (a!.destroy(), b!.destroy()))
  await Promise.all([a!.synced, b!.synced])
  a!.text.insert(0, 'before.')
  await untilDoc(b!.doc, () => b!.text.toString() === 'before.', 'the edit made before the outage')

  redis.kill('SIGKILL')
  await expect.poll(() => health(servers[0]!), { timeout: 15_000 }).toMatchObject({ status: 503, body: { ok: false, storage: 'writable', fanout: 'down' } })

  // An edit during the outage: stored by instance 0 (PostgreSQL is up), not heard by instance 1.
  const sql = new pg.Client({ connectionString: db.url })
  await sql.connect()
  cleanup.push(() => sql.end())
  const stored = async () => Number((await sql.query(`SELECT count(*) AS n FROM murmur.updates WHERE doc_id = 'outage'`)).rows[0].n)
  const rowsBefore = await stored()
  a!.text.insert(a!.text.length, 'during.')
  await expect.poll(stored, { timeout: 15_000 }).toBeGreaterThan(rowsBefore)

  redis = await startRedis(port)
  await expect.poll(() => health(servers[1]!), { timeout: 15_000 }).toMatchObject({ status: 200, body: { ok: true, fanout: 'up' } })
  await untilDoc(b!.doc, () => b!.text.toString() === 'before.during.', 'the edit made during the outage, after Redis is back', 20_000)

  // And live relay works again.
  b!.text.insert(b!.text.length, 'after.')
  await untilDoc(a!.doc, () => a!.text.toString() === 'before.during.after.', 'an edit after the outage')
})
