/**
 * "The page has shown what it came for": the document's text (or the home
 * page). Work that must not compete with the first paint waits for it: the
 * service worker's precache (`offline-shell.ts`) and the editor's extras.
 */
let resolveShown!: () => void
const shown = new Promise<void>((resolve) => (resolveShown = resolve))

/** Marks the page as shown. Idempotent. */
export function markShown(): void {
  resolveShown()
}

/**
 * Resolves once `markShown()` was called, or after `maxWaitMs` at the latest
 * (a backup link that never settles must not hold deferred work back forever).
 */
export function whenShown(maxWaitMs = 5000): Promise<void> {
  return Promise.race([shown, new Promise<void>((resolve) => setTimeout(resolve, maxWaitMs))])
}
