/**
 * The server-wide overload budget. Every `intervalMs` it samples event-loop
 * lag (how late its own timer fired) and memory in use (V8 heap plus
 * external Buffer memory); above either threshold
 * the server is *overloaded*: `/sync` and `/signal` sockets are not read
 * (TCP pushes back on the senders; nothing is dropped) and new WebSocket
 * upgrades get HTTP 503 with `Retry-After` (y-websocket and y-webrtc retry on
 * their own). It recovers by itself once lag and heap are back below the
 * thresholds with hysteresis (lag below a quarter, heap below three quarters),
 * so it does not flap.
 *
 * An idle V8 may not collect at all, so a heap full of garbage from the
 * overload would keep the server refusing forever: while only the heap keeps
 * it overloaded, it asks V8 for a full collection once per `GC_EVERY` samples.
 */
import { setFlagsFromString } from 'node:v8'
import { runInNewContext } from 'node:vm'
import type { ServerContext } from './context.ts'

/** Reads of `overloaded` between memory checks inside one event-loop turn. */
const CHECK_EVERY = 256

/** While only the heap holds the server overloaded, a full GC every this many samples (1 s at the default interval). */
export const GC_EVERY = 10

/** V8's full-collection function, exposed at run time (`--expose-gc` after start-up applies to new contexts). */
function exposeGc(): (() => void) | undefined {
  const existing = (globalThis as { gc?: () => void }).gc
  if (typeof existing === 'function') return existing
  try {
    setFlagsFromString('--expose-gc')
    return runInNewContext('gc') as () => void
  } catch {
    return undefined
  }
}

/** One measurement: event-loop lag in ms and bytes in use (V8 heap plus external Buffers). */
export interface LoadSample {
  lagMs: number
  heapBytes: number
}

/** What `createLoadGuard` returns. */
export interface LoadGuard {
  /** True while the server sheds load. */
  readonly overloaded: boolean
  /** Calls `fn` once, as soon as the server is not overloaded (at once when it is not). */
  whenRecovered(fn: () => void): void
  /** Calls `fn(overloaded)` on every change. */
  onChange(fn: (overloaded: boolean) => void): void
  /** Feeds one sample (the timer does this; tests call it directly). */
  sample(s: LoadSample): void
  /** Stops sampling. */
  stop(): void
}

/** Thresholds of the guard (0 switches one off). */
export interface LoadLimits {
  maxLagMs: number
  maxHeapBytes: number
}

/**
 * Creates the guard. With `intervalMs` > 0 it samples itself on an unref'd
 * timer; with 0 only `sample()` moves it (tests).
 */
export function createLoadGuard(ctx: Pick<ServerContext, 'log'>, limits: LoadLimits, intervalMs = 100, collect: (() => void) | undefined = exposeGc()): LoadGuard {
  let overloaded = false
  let heapHeld = 0
  const waiting: (() => void)[] = []
  const listeners: ((o: boolean) => void)[] = []
  const over = (s: LoadSample) => (limits.maxLagMs > 0 && s.lagMs > limits.maxLagMs) || (limits.maxHeapBytes > 0 && s.heapBytes > limits.maxHeapBytes)
  const calm = (s: LoadSample) => (limits.maxLagMs === 0 || s.lagMs <= limits.maxLagMs / 4) && (limits.maxHeapBytes === 0 || s.heapBytes <= limits.maxHeapBytes * 0.75)

  /** When the timer is due next (its lateness is the lag), and reads of `overloaded` since the last memory check. */
  let expected = performance.now() + intervalMs
  let reads = 0
  const measure = (now: number): LoadSample => {
    // Buffers (frames queued for slow readers, updates in flight) live outside the V8 heap: count them too.
    const mem = process.memoryUsage()
    return { lagMs: Math.max(0, now - expected), heapBytes: mem.heapUsed + mem.external }
  }

  const guard: LoadGuard = {
    get overloaded() {
      // One event-loop turn can read thousands of frames before the timer gets to run: check
      // within the turn too, cheaply (the clock each time, memory every CHECK_EVERY reads).
      if (!overloaded && intervalMs > 0) {
        const now = performance.now()
        if (++reads >= CHECK_EVERY || (limits.maxLagMs > 0 && now - expected > limits.maxLagMs)) {
          reads = 0
          guard.sample(measure(now))
        }
      }
      return overloaded
    },
    whenRecovered(fn) {
      if (!overloaded) fn()
      else waiting.push(fn)
    },
    onChange(fn) {
      listeners.push(fn)
    },
    sample(s) {
      const next = overloaded ? !calm(s) : over(s)
      if (next && overloaded && limits.maxHeapBytes > 0 && s.heapBytes > limits.maxHeapBytes * 0.75 && (limits.maxLagMs === 0 || s.lagMs <= limits.maxLagMs / 4)) {
        if (++heapHeld % GC_EVERY === 0) collect?.()
      } else heapHeld = 0
      if (next === overloaded) return
      overloaded = next
      ctx.log.warn({ lagMs: Math.round(s.lagMs), heapMiB: Math.round(s.heapBytes / 1048576) }, overloaded ? 'overloaded: not reading sockets, refusing new connections' : 'recovered from overload')
      for (const l of listeners) l(overloaded)
      if (!overloaded) for (const fn of waiting.splice(0)) fn()
    },
    stop() {
      clearTimeout(timer)
    },
  }

  let timer: NodeJS.Timeout | undefined
  if (intervalMs > 0) {
    const tick = () => {
      guard.sample(measure(performance.now()))
      expected = performance.now() + intervalMs
      timer = setTimeout(tick, intervalMs)
      timer.unref()
    }
    timer = setTimeout(tick, intervalMs)
    timer.unref()
  }
  return guard
}
