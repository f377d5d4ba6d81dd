/**
 * A tiny History API router: the current route as runes state, `navigate()`,
 * and same-origin link interception so plain `<a href>` links work with the
 * back button without full reloads.
 */
import { matchRoute, type Route } from './match.ts'

/** The current location, reactive. */
class RouterState {
  /** `location.pathname`. */
  path = $state(typeof location === 'undefined' ? '/' : location.pathname)
  /** `location.hash` (kept for share links and tokens). */
  hash = $state(typeof location === 'undefined' ? '' : location.hash)
  /** The matched route. */
  readonly route: Route = $derived(matchRoute(this.path))

  /** Re-reads `location` (after popstate or pushState). */
  sync(): void {
    this.path = location.pathname
    this.hash = location.hash
  }
}

/** The app's router state. */
export const router = new RouterState()

/** Goes to `href` (same origin) with pushState, or replaceState when `replace`. */
export function navigate(href: string, opts: { replace?: boolean } = {}): void {
  const url = new URL(href, location.href)
  if (url.origin !== location.origin) {
    location.href = url.href
    return
  }
  if (opts.replace) history.replaceState(null, '', url.href)
  else history.pushState(null, '', url.href)
  router.sync()
  window.scrollTo(0, 0)
}

function onClick(e: MouseEvent) {
  if (e.defaultPrevented || e.button !== 0 || e.metaKey || e.ctrlKey || e.shiftKey || e.altKey) return
  const a = (e.target as Element | null)?.closest?.('a')
  if (!a || !a.href || a.target || a.hasAttribute('download') || a.dataset.external !== undefined) return
  const url = new URL(a.href)
  if (url.origin !== location.origin) return
  if (url.pathname !== '/' && !url.pathname.startsWith('/d/')) return
  e.preventDefault()
  if (url.href !== location.href) navigate(url.href)
}

/** Starts listening to popstate and link clicks; returns the stop function. */
export function startRouter(): () => void {
  const onPop = () => router.sync()
  window.addEventListener('popstate', onPop)
  window.addEventListener('hashchange', onPop)
  document.addEventListener('click', onClick)
  return () => {
    window.removeEventListener('popstate', onPop)
    window.removeEventListener('hashchange', onPop)
    document.removeEventListener('click', onClick)
  }
}
