import type { ServerContext } from './context.ts'
import type { Store } from './store/store.ts'

/** How long one storage check answers `/healthz`: a request storm costs at most one fsynced write per second. */
export const HEALTH_CHECK_INTERVAL_MS = 1000

/**
 * `/healthz`'s storage probe: runs `store.checkWritable()` (a synchronous,
 * fsynced write) at most once per `intervalMs` and shares that result (and an
 * in-flight check) with every request meanwhile, so storage that stops being
 * writable shows within about `intervalMs`. The error itself is logged, never
 * returned: callers get only whether storage is writable.
 */
export function healthCheck(ctx: ServerContext, store: Pick<Store, 'checkWritable'>, intervalMs = HEALTH_CHECK_INTERVAL_MS): () => Promise<boolean> {
  let last: { at: number; result: Promise<boolean> } | null = null
  return () => {
    const now = performance.now()
    if (last && now - last.at < intervalMs) return last.result
    ctx.metrics.storageChecks.inc()
    const result = store.checkWritable().then(
      () => true,
      (err: Error) => {
        ctx.metrics.storageErrors.inc()
        ctx.log.error({ err: err.message }, 'storage is not writable')
        return false
      },
    )
    last = { at: now, result }
    return result
  }
}
