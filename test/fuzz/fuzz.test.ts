import { describe, expect, it } from 'vitest'
import { runFuzz, documentedCloseCodes, fuzzServerArgs, slowReaderProbe } from '../../bench/lib/fuzz-run.ts'
import { startServer } from '../helpers/server.ts'
import { formatReport } from '../../bench/lib/fuzz-report.ts'
import { rawSync } from '../helpers/clients.ts'
import { CloseCode, MessageType } from '../../src/protocol/messages.ts'

/**
 * A short, seeded run of the protocol fuzzer (`npm run fuzz` runs it longer):
 * random, mutated, truncated and length-lying frames on /sync and /signal,
 * broken WebSocket framing and odd HTTP paths against a real server process,
 * while a bystander pair edits in another room. Each run draws a new seed
 * (so CI explores over time) and prints it with the commands that replay it;
 * `MURMUR_FUZZ_SEED=<seed>` fixes it.
 */
describe('fuzzing /sync and /signal', () => {
  const seed = process.env.MURMUR_FUZZ_SEED ? Number(process.env.MURMUR_FUZZ_SEED) >>> 0 : (Math.random() * 2 ** 32) >>> 0
  // 400 + 120 sessions (~5 s on an idle machine; the time is only a cap).
  const run = { seed, seconds: 60, phaseSessions: { rooms: 400, victim: 120 }, concurrency: 8, replyTimeoutMs: 15_000, noProbe: true }
  const replay =
    `MURMUR_FUZZ_SEED=${seed} npx vitest run test/fuzz  |  ` +
    `npm run fuzz -- --seed ${seed} --seconds ${run.seconds} --sessions ${run.phaseSessions.rooms},${run.phaseSessions.victim} --concurrency ${run.concurrency} --no-probe`

  it(`survives seed ${seed}: server alive, victim unchanged, bystander served, documented close codes only`, async () => {
    console.log(`fuzz: seed ${seed}; replay: ${replay}`)
    const report = await runFuzz(run)
    const text = `${formatReport(report)}\nreplay: ${replay}`
    console.log(text)

    expect(report.crashes, text).toEqual([])
    expect(report.healthz).toBe(200)
    expect(report.exitCode).toBe(0)
    expect(report.serverErrors, 'error-level server logs').toEqual([])
    expect(report.violations, 'undecodable replies, stalls').toEqual([])

    // Something was actually thrown at both endpoints and got rejected.
    const inputs = (endpoint: string) => Object.values(report.table[endpoint] ?? {}).reduce((n, r) => n + Object.values(r).reduce((a, b) => a + b, 0), 0)
    expect(report.sessions).toEqual({ rooms: 400, victim: 120 })
    expect(inputs('sync')).toBeGreaterThan(300)
    expect(inputs('signal')).toBeGreaterThan(100)
    expect(Object.keys(report.closeCodes).length).toBeGreaterThan(3)
    for (const code of Object.keys(report.closeCodes).map(Number)) expect(documentedCloseCodes.has(code), `close code ${code}`).toBe(true)

    // Every HTTP request and upgrade was answered (none left hanging).
    const unanswered = Object.values(report.table.http ?? {}).reduce((n, r) => n + (r['no-answer'] ?? 0), 0)
    expect(unanswered, 'HTTP requests without an answer').toBe(0)

    expect(report.victim.checked, 'victim phase sent update-bearing frames').toBeGreaterThan(0)
    expect(report.victim.unchangedLive).toBe(true)
    expect(report.victim.unchangedStored).toBe(true)

    const b = report.bystander!
    expect(b.sent).toBeGreaterThan(10)
    expect(b.received).toBe(b.sent)
    expect(b.converged).toBe(true)

    // Memory stays bounded: a 5 s run on a ~100 MiB server.
    expect(report.rss.maxMiB).toBeLessThan(512)
  }, 120_000) // ~3–10 s measured; fuzzing itself is capped at 60 s

  // Finding F3 (bench/README.md, "Fuzzing"): before /sync closed slow readers (1013), the server
  // answered every query into the unread socket (+~300 MiB, /healthz blocked ~10 s).
  it('a slow reader flooding query-awareness is closed with 1013; the server stays up, answers and exits cleanly (F3)', async () => {
    const server = await startServer({ args: fuzzServerArgs })
    let stopped = false
    try {
      const probe = await slowReaderProbe(server, 'slowreader')
      expect(probe.serverExit, server.output()).toBeNull()
      expect(probe.readerClose).toBe(CloseCode.slowConsumer)
      expect(probe.healthzStatus).toBe(200)
      expect(probe.rssGrowthMiB).toBeLessThan(128)
      expect(probe.healthzMs).toBeLessThan(2000)
      // Still serving afterwards: a new client syncs and /healthz answers.
      const after = await rawSync(server.wsUrl, '/sync/slowreader')
      await after.waitFor((f) => f[0] === MessageType.sync && f[1] === 0)
      after.ws.close()
      expect((await fetch(`${server.url}/healthz`)).status).toBe(200)
      stopped = true
      expect(await server.stop()).toBe(0)
      expect(server.output(), 'error-level server logs').not.toMatch(/"level":(50|60)/)
    } finally {
      if (!stopped) await server.stop('SIGKILL')
    }
  })
})
