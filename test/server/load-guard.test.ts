import pino from 'pino'
import { describe, expect, test } from 'vitest'
import WebSocket from 'ws'
import { createLoadGuard, GC_EVERY } from '../../server/load-guard.ts'
import { metric, startServer } from '../helpers/server.ts'

const log = pino({ level: 'silent' })
const MiB = 1024 * 1024

describe('server-wide overload budget', () => {
  test('goes over on lag or heap, recovers only well below (no flapping), and wakes what waits for recovery', () => {
    const guard = createLoadGuard({ log }, { maxLagMs: 400, maxHeapBytes: 200 * MiB }, 0)
    const changes: boolean[] = []
    guard.onChange((o) => changes.push(o))
    guard.sample({ lagMs: 399, heapBytes: 199 * MiB })
    expect(guard.overloaded).toBe(false)
    let woken = 0
    guard.whenRecovered(() => woken++)
    expect(woken, 'runs at once when not overloaded').toBe(1)

    guard.sample({ lagMs: 401, heapBytes: 10 * MiB })
    expect(guard.overloaded).toBe(true)
    guard.whenRecovered(() => woken++)
    guard.whenRecovered(() => woken++)
    // Below the threshold but above the recovery mark: still overloaded.
    guard.sample({ lagMs: 200, heapBytes: 10 * MiB })
    expect(guard.overloaded).toBe(true)
    expect(woken).toBe(1)
    guard.sample({ lagMs: 50, heapBytes: 10 * MiB })
    expect(guard.overloaded).toBe(false)
    expect(woken).toBe(3)

    guard.sample({ lagMs: 0, heapBytes: 201 * MiB })
    expect(guard.overloaded).toBe(true)
    guard.sample({ lagMs: 0, heapBytes: 160 * MiB })
    expect(guard.overloaded, 'heap must fall below three quarters').toBe(true)
    guard.sample({ lagMs: 0, heapBytes: 149 * MiB })
    expect(guard.overloaded).toBe(false)
    expect(changes).toEqual([true, false, true, false])
  })

  test('while only the heap keeps it overloaded, it asks for a full GC once per GC_EVERY samples (an idle V8 might never collect)', () => {
    let collections = 0
    const guard = createLoadGuard({ log }, { maxLagMs: 400, maxHeapBytes: 200 * MiB }, 0, () => collections++)
    guard.sample({ lagMs: 0, heapBytes: 300 * MiB })
    expect(guard.overloaded).toBe(true)
    for (let i = 0; i < 3 * GC_EVERY; i++) guard.sample({ lagMs: 0, heapBytes: 300 * MiB })
    expect(collections).toBe(3)
    // Lag still high: the server is busy, no forced GC on top.
    for (let i = 0; i < 3 * GC_EVERY; i++) guard.sample({ lagMs: 1000, heapBytes: 300 * MiB })
    expect(collections).toBe(3)
    guard.sample({ lagMs: 0, heapBytes: 100 * MiB })
    expect(guard.overloaded).toBe(false)
  })

  test('the real GC function is available to a server started without --expose-gc', () => {
    // The default `collect` is V8's gc, exposed at run time; calling it must not throw.
    const guard = createLoadGuard({ log }, { maxLagMs: 0, maxHeapBytes: 1 }, 0)
    guard.sample({ lagMs: 0, heapBytes: 2 })
    for (let i = 0; i < GC_EVERY; i++) guard.sample({ lagMs: 0, heapBytes: 2 })
    expect(guard.overloaded).toBe(true)
  })

  test('a turn that blocks the event loop past the lag limit is seen from inside that turn, before any timer runs', () => {
    const guard = createLoadGuard({ log }, { maxLagMs: 50, maxHeapBytes: 0 }, 100, () => {})
    try {
      expect(guard.overloaded).toBe(false)
      // One long turn, as when thousands of frames arrive together: the timer cannot fire meanwhile.
      const until = performance.now() + 400
      while (performance.now() < until) {
        // busy
      }
      expect(guard.overloaded).toBe(true)
    } finally {
      guard.stop()
    }
  })

  test('a threshold of 0 is off', () => {
    const guard = createLoadGuard({ log }, { maxLagMs: 0, maxHeapBytes: 0 }, 0)
    guard.sample({ lagMs: 1e9, heapBytes: 1e12 })
    expect(guard.overloaded).toBe(false)
  })

  test('an overloaded server refuses new WebSockets with a retryable 503 and still answers HTTP', async () => {
    // A heap budget of 1 byte: overloaded from the first sample on.
    const server = await startServer({ args: ['--overload-heap-bytes', '1'] })
    try {
      await expect.poll(() => metric(server, 'murmur_overloaded'), { timeout: 10_000 }).toBe(1)
      for (const path of ['/sync/some-doc', '/signal']) {
        const status = await new Promise<number>((res, rej) => {
          const ws = new WebSocket(`${server.wsUrl}${path}`)
          ws.on('unexpected-response', (_req, r) => res(r.statusCode ?? 0))
          ws.on('open', () => rej(new Error('upgrade accepted while overloaded')))
          ws.on('error', () => {})
        })
        expect(status, path).toBe(503)
      }
      expect(await metric(server, 'murmur_overload_refused_total')).toBe(2)
      expect((await fetch(`${server.url}/healthz`)).status).toBe(200)
    } finally {
      await server.stop()
    }
  })
})
