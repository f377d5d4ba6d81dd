/**
 * The offline app shell: registers the service worker (vite-plugin-pwa's
 * `sw.js`, which precaches the whole client) only once the page has shown
 * what it came for (`shown.ts`), so its downloads never compete with the
 * first paint.
 */
import { whenShown } from './shown.ts'

/** Registers `/sw.js` when the browser is idle after the page is shown (or after `fallbackMs`). Production builds only. */
export function registerOfflineShell(fallbackMs = 10_000): void {
  if (!import.meta.env.PROD || !('serviceWorker' in navigator)) return
  void whenShown(fallbackMs).then(() => {
    const register = () => {
      navigator.serviceWorker.register('/sw.js', { scope: '/' }).catch((err) => console.error('[murmur] service worker registration failed', err))
    }
    if (typeof requestIdleCallback === 'function') requestIdleCallback(register, { timeout: 2000 })
    else setTimeout(register, 0)
  })
}
