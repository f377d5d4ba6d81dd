/**
 * Shared e2e harness: one Chromium (playwright-core, no downloaded browsers),
 * one browser context per user (separate BroadcastChannel, IndexedDB and
 * service worker, like two devices), a murmur server as a child process, and
 * small helpers that wait on page state instead of sleeping.
 *
 * The client directory the server serves defaults to `./dist` (what
 * `npm run test:e2e` builds). Set `E2E_CLIENT_DIR` to serve another build,
 * e.g. `npx vite build --outDir /tmp/e2e-dist --emptyOutDir` for iterations
 * that must not clobber `dist/`.
 */
import { mkdirSync, writeFileSync, readFileSync, existsSync } from 'node:fs'
import { join, resolve } from 'node:path'
import { chromium, type Browser, type BrowserContext, type Page } from 'playwright-core'
import { startServer, type ServerProcess } from '../helpers/server.ts'

export const root = resolve(import.meta.dirname, '../..')
/** Screenshots and timings go here (gitignored; CI keeps it as an artifact). */
export const RESULTS_DIR = join(root, 'test-results')
mkdirSync(RESULTS_DIR, { recursive: true })

/** The built client the server serves. */
export const CLIENT_DIR = resolve(root, process.env.E2E_CLIENT_DIR ?? 'dist')

/** Chromium flags: no sandbox (containers), no GPU, nothing contacting Google, and raw host candidates instead of mDNS names (unresolvable in the sandbox). */
export const CHROMIUM_ARGS = [
  '--no-sandbox',
  '--disable-gpu',
  '--disable-quic',
  '--no-first-run',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
  '--disable-features=WebRtcHideLocalIpsWithMdns',
  // Several pages compete for 2 cores: do not let Chromium throttle the ones it thinks are in the background.
  '--disable-background-timer-throttling',
  '--disable-renderer-backgrounding',
  '--disable-backgrounding-occluded-windows',
]

/** `CHROMIUM_PATH`, else a browser Playwright installed, else the system Chromium. */
export function chromiumPath(): string {
  if (process.env.CHROMIUM_PATH) return process.env.CHROMIUM_PATH
  try {
    const installed = chromium.executablePath()
    if (installed && existsSync(installed)) return installed
  } catch {
    // no Playwright-managed browser
  }
  return '/usr/bin/chromium'
}

/** Launches Chromium (see `chromiumPath`). Never downloads anything. */
export async function launchBrowser(): Promise<Browser> {
  if (!existsSync(join(CLIENT_DIR, 'index.html'))) throw new Error(`no built client in ${CLIENT_DIR}: run \`npm run test:e2e\` (builds dist/) or set E2E_CLIENT_DIR`)
  return chromium.launch({ executablePath: chromiumPath(), args: CHROMIUM_ARGS })
}

/** Starts the murmur server serving `CLIENT_DIR`; `port` and `dataDir` allow a restart "in place". */
export function startE2EServer(opts: { port?: number; dataDir?: string; args?: string[] } = {}): Promise<ServerProcess> {
  return startServer({ port: opts.port, dataDir: opts.dataDir, args: ['--client', CLIENT_DIR, ...(opts.args ?? [])] })
}

/**
 * Restarts a server on the same port and data dir (the pages keep their
 * origin). Retries briefly: right after a kill the port can still be busy.
 */
export async function restartServer(prev: ServerProcess, args: string[] = []): Promise<ServerProcess> {
  let lastErr: unknown
  for (let i = 0; i < 20; i++) {
    try {
      return await startE2EServer({ port: prev.port, dataDir: prev.dataDir, args })
    } catch (err) {
      lastErr = err
      if (!/EADDRINUSE/.test(String(err))) throw err
      await new Promise((r) => setTimeout(r, 250))
    }
  }
  throw lastErr
}

/**
 * Defines `__name` in pages. tsx (esbuild with keepNames) rewrites
 * `const f = () => …` inside functions to `__name(() => …, "f")`; a function
 * passed to `addInitScript`/`evaluate` is serialized with that call in it
 * and throws in the page unless the helper exists there. Vitest's transform
 * does not add it, so this matters for scripts run with `node --import tsx`.
 */
export const KEEP_NAMES_SHIM = { content: 'globalThis.__name ??= (fn) => fn' }

/** Options of a simulated user. */
export interface UserOptions {
  /** Display name published in awareness (stored in localStorage before the app starts). */
  name: string
  /** Caret colour. */
  color?: string
  /** false: the page has no RTCPeerConnection (WebRTC unavailable, like a locked-down browser). */
  webrtc?: boolean
}

/** One person: a browser context (their device) with one page. */
export interface User {
  name: string
  context: BrowserContext
  page: Page
  /** Console errors and page errors seen so far (for diagnostics). */
  errors: string[]
  close(): Promise<void>
}

const COLORS: Record<string, string> = { Alice: '#c2255c', Bob: '#1971c2', Carol: '#2b8a3e' }

/** Creates a user with a fresh context (empty storage). */
export async function newUser(browser: Browser, opts: UserOptions): Promise<User> {
  const context = await browser.newContext({ viewport: { width: 1100, height: 720 }, deviceScaleFactor: 1 })
  const color = opts.color ?? COLORS[opts.name] ?? '#9c36b5'
  await context.addInitScript(KEEP_NAMES_SHIM)
  // The identity the client reads from localStorage (src/session/presence.ts IDENTITY_KEY).
  await context.addInitScript(
    ({ name, color }) => {
      try {
        if (!localStorage.getItem('murmur:user')) localStorage.setItem('murmur:user', JSON.stringify({ name, color, colorLight: color + '33' }))
      } catch {
        // opaque origins (about:blank)
      }
    },
    { name: opts.name, color },
  )
  if (opts.webrtc === false) {
    await context.addInitScript(() => {
      const w = window as unknown as Record<string, unknown>
      delete w.RTCPeerConnection
      delete w.webkitRTCPeerConnection
      delete w.RTCSessionDescription
      delete w.RTCIceCandidate
    })
  }
  const page = await context.newPage()
  const errors: string[] = []
  page.on('pageerror', (e) => errors.push(`pageerror: ${e.message}`))
  page.on('console', (m) => {
    if (m.type() === 'error') errors.push(`console.error: ${m.text()}`)
  })
  return {
    name: opts.name,
    context,
    page,
    errors,
    close: () => context.close(),
  }
}

/** Opens `url` and waits until the document session exists and has loaded its local copy. */
export async function openDoc(page: Page, url: string): Promise<void> {
  await page.goto(url)
  await waitLoaded(page)
}

/** Waits for `window.__murmur.session` to exist and to have loaded IndexedDB, and for the editor. */
export async function waitLoaded(page: Page, timeout = 30_000): Promise<void> {
  try {
    await page.waitForFunction(() => (window as any).__murmur?.session?.loaded === true, null, { timeout })
    await page.locator('.cm-content').waitFor({ state: 'visible', timeout })
  } catch (err) {
    const state = await page
      .evaluate(() => {
        const s = (window as any).__murmur?.session
        return JSON.stringify({ href: location.href, murmur: !!(window as any).__murmur, session: !!s, loaded: s?.loaded, local: s?.local, sw: !!navigator.serviceWorker?.controller, body: document.body?.innerText.slice(0, 200) })
      })
      .catch((e) => `unavailable: ${(e as Error).message}`)
    throw new Error(`document did not load: ${(err as Error).message}\npage state: ${state}`)
  }
}

/** The current document id of the page's session. */
export function docIdOf(page: Page): Promise<string> {
  return page.evaluate(() => (window as any).__murmur.session.docId as string)
}

/** The Y.Text of the page's session. */
export function docText(page: Page): Promise<string> {
  return page.evaluate(() => (window as any).__murmur?.session?.text?.toString() ?? '')
}

/** What the CodeMirror editor holds (its state, so long documents count too). */
export function editorText(page: Page): Promise<string> {
  return page.evaluate(() => {
    const el = document.querySelector('.cm-content') as any
    if (!el) return ''
    const view = el.cmTile?.root?.view ?? el.cmView?.view ?? el.cmView?.rootView?.view
    return view ? (view.state.doc.toString() as string) : (el.innerText as string)
  })
}

/** Focuses the editor and moves the cursor to the document end (or start). */
export async function focusEditor(page: Page, where: 'end' | 'start' = 'end'): Promise<void> {
  await page.locator('.cm-content').click()
  await page.keyboard.press(where === 'end' ? 'Control+End' : 'Control+Home')
}

/** Types like a person (with a small delay per key so two users really interleave). */
export async function typeText(page: Page, text: string, delay = 15): Promise<void> {
  await page.keyboard.type(text, { delay })
}

/** Waits until the page's document text satisfies `pred` (a string: the text contains it). */
export async function waitForText(page: Page, pred: string | ((t: string) => boolean), timeout = 30_000): Promise<string> {
  const check = typeof pred === 'string' ? (t: string) => t.includes(pred) : pred
  const deadline = Date.now() + timeout
  let last = ''
  for (;;) {
    last = await docText(page)
    if (check(last)) return last
    if (Date.now() > deadline) throw new Error(`timed out waiting for text (${typeof pred === 'string' ? JSON.stringify(pred) : 'predicate'}); last text: ${JSON.stringify(last.slice(0, 300))}`)
    await page.waitForTimeout(50)
  }
}

/** Waits until every page holds the same text and it satisfies `pred`. Returns that text. */
export async function waitConverged(pages: Page[], pred: (t: string) => boolean = () => true, timeout = 30_000): Promise<string> {
  const deadline = Date.now() + timeout
  let texts: string[] = []
  for (;;) {
    texts = await Promise.all(pages.map(docText))
    if (texts.every((t) => t === texts[0]) && pred(texts[0])) return texts[0]
    if (Date.now() > deadline) throw new Error(`pages did not converge:\n${texts.map((t, i) => `  [${i}] ${JSON.stringify(t.slice(0, 400))}`).join('\n')}`)
    await pages[0].waitForTimeout(50)
  }
}

/** Facts about the page's WebRTC mesh. */
export interface RtcFacts {
  /** y-webrtc room exists. */
  room: boolean
  /** Entries in `room.webrtcConns` (real RTCPeerConnections, not BroadcastChannel). */
  conns: number
  /** Of those, connected. */
  connected: number
  /** BroadcastChannel peers (same browser context). */
  bcConns: number
}

/** Reads `session.webrtc.room`. */
export function rtcFacts(page: Page): Promise<RtcFacts> {
  return page.evaluate(() => {
    const room = (window as any).__murmur?.session?.webrtc?.room
    if (!room) return { room: false, conns: 0, connected: 0, bcConns: 0 }
    const conns = [...room.webrtcConns.values()] as { connected: boolean; closed: boolean }[]
    return { room: true, conns: conns.length, connected: conns.filter((c) => c.connected && !c.closed).length, bcConns: room.bcConns.size as number }
  })
}

/** Waits until the page has at least `n` connected WebRTC peers. */
export async function waitDirectPeers(page: Page, n = 1, timeout = 30_000): Promise<RtcFacts> {
  await page.waitForFunction(
    (n) => {
      const room = (window as any).__murmur?.session?.webrtc?.room
      if (!room) return false
      let c = 0
      for (const conn of room.webrtcConns.values()) if (conn.connected && !conn.closed) c++
      return c >= n
    },
    n,
    { timeout, polling: 100 },
  )
  return rtcFacts(page)
}

/** `data-state` of the server status (off|connecting|backed-up|not-backed-up|offline). */
export function serverState(page: Page): Promise<string | null> {
  return page.locator('[data-testid=status-server]').getAttribute('data-state')
}

/** Waits for the server status to reach `state`. */
export async function waitServerState(page: Page, state: string, timeout = 30_000): Promise<void> {
  await page.locator(`[data-testid=status-server][data-state="${state}"]`).waitFor({ state: 'attached', timeout })
}

/**
 * Records every `data-state` the server status takes, from now on, in
 * `window.__e2eServerStates` (survives nothing: install after each load).
 */
export async function recordServerStates(page: Page): Promise<void> {
  await page.evaluate(() => {
    const w = window as any
    const seen: string[] = (w.__e2eServerStates = [])
    const push = () => {
      const s = document.querySelector('[data-testid=status-server]')?.getAttribute('data-state') ?? 'missing'
      if (seen[seen.length - 1] !== s) seen.push(s)
    }
    push()
    new MutationObserver(push).observe(document.body, { subtree: true, childList: true, attributes: true, attributeFilter: ['data-state'] })
  })
}

/** The states recorded by `recordServerStates`. */
export function recordedServerStates(page: Page): Promise<string[]> {
  return page.evaluate(() => (window as any).__e2eServerStates ?? [])
}

/** Peers shown in the peer list: name (text) and `data-via`. */
export function peerListOf(page: Page): Promise<{ text: string; via: string | null }[]> {
  return page.locator('[data-testid=peer-list] [data-testid=peer]').evaluateAll((els) => els.map((e) => ({ text: (e.textContent ?? '').trim(), via: e.getAttribute('data-via') })))
}

/** Waits until the peer list shows a peer whose text contains `name` (with `via`, when given). */
export async function waitPeer(page: Page, name: string, via?: string, timeout = 30_000): Promise<void> {
  const sel = via ? `[data-testid=peer-list] [data-testid=peer][data-via="${via}"]` : '[data-testid=peer-list] [data-testid=peer]'
  await page.locator(sel).filter({ hasText: name }).first().waitFor({ state: 'attached', timeout })
}

/** The label's effective opacity (its own times its ancestors'). */
function labelOpacity(el: Element): number {
  let o = 1
  for (let e: Element | null = el; e; e = e.parentElement) o *= Number(getComputedStyle(e).opacity)
  return o
}

/**
 * Waits for a remote caret labelled `name` that a person can see (rendered,
 * non-zero opacity). Labels show while that peer is active or on hover: when
 * the label has faded, the caret is hovered, as a person would.
 */
export async function waitRemoteCaret(page: Page, name: string, timeout = 30_000): Promise<{ opacity: number; box: { width: number; height: number } | null }> {
  const info = page.locator('.cm-ySelectionInfo').filter({ hasText: name }).first()
  await info.waitFor({ state: 'visible', timeout })
  await page.locator('.cm-ySelectionCaret').first().waitFor({ state: 'visible', timeout })
  if ((await info.evaluate(labelOpacity)) < 1) {
    await page.locator('.cm-ySelectionCaret').filter({ has: info }).first().hover({ timeout })
    await info.evaluate((el) => new Promise<void>((done) => {
      const check = () => {
        let o = 1
        for (let e: Element | null = el; e; e = e.parentElement) o *= Number(getComputedStyle(e).opacity)
        if (o >= 1) done()
        else requestAnimationFrame(check)
      }
      check()
    }))
  }
  const opacity = await info.evaluate(labelOpacity)
  const bb = await info.boundingBox()
  return { opacity, box: bb && { width: bb.width, height: bb.height } }
}

/**
 * Waits until the service worker is activated (the app shell is precached)
 * and controls the page. The client registers it only once the page has
 * shown its content (src/offline-shell.ts), so this can take a moment after
 * the text is visible. (The earlier `waitForFunction` with an async predicate
 * returned while the worker was still installing.)
 */
export async function waitServiceWorker(page: Page, timeout = 30_000): Promise<void> {
  const ready = page.evaluate(async () => {
    if (!('serviceWorker' in navigator)) throw new Error('this page has no service worker support')
    const sw = (await navigator.serviceWorker.ready).active!
    if (sw.state !== 'activated') await new Promise<void>((resolve) => sw.addEventListener('statechange', () => sw.state === 'activated' && resolve()))
    if (!navigator.serviceWorker.controller) await new Promise<void>((resolve) => navigator.serviceWorker.addEventListener('controllerchange', () => resolve(), { once: true }))
  })
  ready.catch(() => {}) // when the timeout wins, a later rejection (page closed) is not unhandled
  let timer: ReturnType<typeof setTimeout> | undefined
  try {
    await Promise.race([ready, new Promise((_, reject) => (timer = setTimeout(() => reject(new Error(`the service worker was not active and in control after ${timeout} ms`)), timeout)))])
  } finally {
    clearTimeout(timer)
  }
}

/**
 * Records, on every page load of `context`, when the app reached each
 * milestone (ms on the page clock, since navigation start) in
 * `window.__e2eMilestones`: session created, IndexedDB loaded, backup socket
 * open, first text, backup synced, text in the editor DOM.
 */
export async function installMilestones(context: BrowserContext): Promise<void> {
  await context.addInitScript(KEEP_NAMES_SHIM)
  await context.addInitScript(() => {
    const m: Record<string, number> = {}
    ;(window as any).__e2eMilestones = m
    const tick = () => {
      const s = (window as any).__murmur?.session
      const now = Math.round(performance.now())
      if (s && m.session === undefined) m.session = now
      if (s?.loaded && m.loaded === undefined) m.loaded = now
      if (s?.websocket?.wsconnected && m.socketOpen === undefined) m.socketOpen = now
      if (s?.text?.length > 0 && m.firstText === undefined) m.firstText = now
      if (s?.websocket?.synced && m.synced === undefined) m.synced = now
      if (document.querySelector('.cm-content')?.textContent && m.shown === undefined) m.shown = now
      if (performance.now() < 120_000) requestAnimationFrame(tick)
    }
    requestAnimationFrame(tick)
  })
}

/** The milestones recorded by `installMilestones` for the current page load. */
export function milestones(page: Page): Promise<Record<string, number>> {
  return page.evaluate(() => ({ ...((window as any).__e2eMilestones ?? {}) }))
}

/**
 * Times, on every page load of `context`, each Yjs transaction that changes
 * the text and did not start in this page (remote or loaded): when it began,
 * when Yjs had integrated it (`beforeObserverCalls`: decoding and applying
 * done), when its observers had run (`afterTransaction`: y-codemirror has
 * dispatched the change, so CodeMirror's state and DOM are updated), and the
 * next animation frame after it. Hooks the session the moment the app
 * publishes it in `window.__murmur`, before any provider delivers data.
 */
export async function installApplyTimer(context: BrowserContext): Promise<void> {
  await context.addInitScript(KEEP_NAMES_SHIM)
  await context.addInitScript(() => {
    const w = window as any
    const txs: { origin: string; start: number; integrated: number; end: number; frame: number; chars: number }[] = (w.__e2eApply = [])
    const hooked = new WeakSet<object>()
    const hook = (session: any) => {
      const doc = session?.doc
      if (!doc || hooked.has(doc)) return
      hooked.add(doc)
      const open = new WeakMap<object, { start: number; integrated: number; len: number }>()
      doc.on('beforeTransaction', (tr: any) => {
        if (!tr.local) open.set(tr, { start: performance.now(), integrated: 0, len: session.text.length })
      })
      doc.on('beforeObserverCalls', (tr: any) => {
        const o = open.get(tr)
        if (o) o.integrated = performance.now()
      })
      doc.on('afterTransaction', (tr: any) => {
        const o = open.get(tr)
        if (!o || session.text.length === o.len) return
        const origin = tr.origin === session.websocket ? 'server' : tr.origin === session.idb ? 'idb' : tr.origin === session.webrtc?.room ? 'webrtc' : 'other'
        const rec = { origin, start: o.start, integrated: o.integrated || o.start, end: performance.now(), frame: 0, chars: session.text.length - o.len }
        txs.push(rec)
        requestAnimationFrame(() => (rec.frame = performance.now()))
      })
    }
    let current: any
    Object.defineProperty(window, '__murmur', {
      configurable: true,
      get: () => current,
      set: (v) => {
        current = v
        hook(v?.session)
      },
    })
  })
}

/** Totals of the transactions timed by `installApplyTimer` on the current page load (ms). */
export interface ApplyTimes {
  transactions: number
  /** Decoding and integrating into the Y.Doc. */
  yjsMs: number
  /** Observers, i.e. y-codemirror's dispatch: CodeMirror state and DOM update. */
  editorMs: number
  /** From the end of each transaction to the next animation frame. */
  toFrameMs: number
  /** Page clock when the first one started. */
  firstStart: number | null
}

/** Reads what `installApplyTimer` recorded for the current page load. */
export function applyTimes(page: Page): Promise<ApplyTimes> {
  return page.evaluate(() => {
    const txs = ((window as any).__e2eApply ?? []) as { start: number; integrated: number; end: number; frame: number }[]
    let yjsMs = 0
    let editorMs = 0
    let toFrameMs = 0
    for (const t of txs) {
      yjsMs += t.integrated - t.start
      editorMs += t.end - t.integrated
      if (t.frame) toFrameMs += t.frame - t.end
    }
    return { transactions: txs.length, yjsMs, editorMs, toFrameMs, firstStart: txs.length ? txs[0]!.start : null }
  })
}

/**
 * Waits until the page's session holds a text of `expectedLength` characters
 * and the editor DOM shows `firstLine`; returns ms since `t0` (wall clock,
 * `Date.now()`) and the page's own clock (ms since navigation start).
 */
export async function timeUntilShown(page: Page, expectedLength: number, firstLine: string, t0: number, timeout = 120_000): Promise<{ wallMs: number; pageMs: number }> {
  const handle = await page.waitForFunction(
    ({ len, firstLine }) => {
      const s = (window as any).__murmur?.session
      if (!s?.loaded || s.text.length !== len) return false
      const el = document.querySelector('.cm-content')
      if (!el || !el.textContent?.includes(firstLine)) return false
      return performance.now() // since navigation start, by the page's clock
    },
    { len: expectedLength, firstLine },
    { timeout, polling: 'raf' },
  )
  const pageMs = (await handle.jsonValue()) as number
  return { wallMs: Date.now() - t0, pageMs: Math.round(pageMs) }
}

/**
 * Installs keystroke-latency probes: keydown times in the sender page
 * (`window.__e2eKeydowns`), and in the receiver page the arrival time, text
 * length and delivering provider (`webrtc`|`server`|`idb`|`other`) of every
 * Y.Doc update, plus the time of the next animation frame after it
 * (`window.__e2eArrivals`). Times are epoch ms (`timeOrigin + now`), so the
 * two pages compare on one machine clock.
 */
export async function installLatencyProbes(sender: Page, receiver: Page): Promise<void> {
  await sender.evaluate(() => {
    const w = window as any
    w.__e2eKeydowns = []
    window.addEventListener('keydown', (e) => w.__e2eKeydowns.push(performance.timeOrigin + e.timeStamp), { capture: true })
  })
  await receiver.evaluate(() => {
    const w = window as any
    const s = w.__murmur.session
    w.__e2eArrivals = []
    s.doc.on('update', (_u: Uint8Array, origin: unknown) => {
      const via = origin === s.webrtc?.room ? 'webrtc' : origin === s.websocket ? 'server' : origin === s.idb ? 'idb' : 'other'
      const rec = { t: performance.timeOrigin + performance.now(), len: s.text.length, via, frame: 0 }
      w.__e2eArrivals.push(rec)
      requestAnimationFrame(() => (rec.frame = performance.timeOrigin + performance.now()))
    })
  })
}

/** What `measureKeystrokes` returns. */
export interface KeystrokeLatency {
  /** Per keystroke: keydown in the sender → the change in the receiver's Y.Doc (its editor is updated in the same task), ms. */
  ms: number[]
  /** Per keystroke: keydown → the receiver's next animation frame after the change (≈ rendered), ms. */
  frameMs: number[]
  /** How many keystrokes each provider delivered. */
  via: Record<string, number>
}

/**
 * Types `n` characters in `sender` one at a time, each after the previous one
 * arrived in `receiver` (probes from `installLatencyProbes`); returns the
 * per-keystroke latencies and the paths that delivered them.
 */
export async function measureKeystrokes(sender: Page, receiver: Page, n: number): Promise<KeystrokeLatency> {
  const base = await receiver.evaluate(() => (window as any).__murmur.session.text.length as number)
  const keysBefore = await sender.evaluate(() => (window as any).__e2eKeydowns.length as number)
  const arrivalsBefore = await receiver.evaluate(() => (window as any).__e2eArrivals.length as number)
  const chars = 'the quick brown fox jumps over the lazy dog '
  for (let i = 0; i < n; i++) {
    await sender.keyboard.press(chars[i % chars.length] === ' ' ? 'Space' : chars[i % chars.length])
    await receiver.waitForFunction((len) => (window as any).__murmur.session.text.length >= len, base + i + 1, { polling: 'raf', timeout: 15_000 })
  }
  // let the last arrival's animation frame run
  await receiver.evaluate(() => new Promise((r) => requestAnimationFrame(() => setTimeout(r, 0))))
  const keydowns = (await sender.evaluate(() => (window as any).__e2eKeydowns as number[])).slice(keysBefore)
  const arrivals = (await receiver.evaluate(() => (window as any).__e2eArrivals as { t: number; len: number; via: string; frame: number }[])).slice(arrivalsBefore)
  const ms: number[] = []
  const frameMs: number[] = []
  const via: Record<string, number> = {}
  for (let i = 0; i < n; i++) {
    const a = arrivals.find((x) => x.len >= base + i + 1)
    if (!a || keydowns[i] === undefined) continue
    ms.push(a.t - keydowns[i])
    if (a.frame) frameMs.push(a.frame - keydowns[i])
    via[a.via] = (via[a.via] ?? 0) + 1
  }
  return { ms, frameMs, via }
}

/** Saves `test-results/<name>.png` and returns its path. */
export async function screenshot(page: Page, name: string): Promise<string> {
  const path = join(RESULTS_DIR, `${name}.png`)
  await page.screenshot({ path })
  return path
}

/** Merges `entries` into `test-results/timings.json` (so each test file adds its own numbers). */
export function recordTimings(entries: Record<string, unknown>): void {
  const path = join(RESULTS_DIR, 'timings.json')
  let prev: Record<string, unknown> = {}
  try {
    prev = JSON.parse(readFileSync(path, 'utf8'))
  } catch {
    // first writer
  }
  const stamped = Object.fromEntries(Object.entries(entries).map(([k, v]) => [k, { measuredAt: new Date().toISOString(), ...(v as object) }]))
  writeFileSync(path, JSON.stringify({ ...prev, ...stamped }, null, 2) + '\n')
}

/** Median and percentile of numbers. */
export function stats(xs: number[]): { n: number; min: number; median: number; p90: number; p99: number; max: number } {
  const s = [...xs].sort((a, b) => a - b)
  const q = (p: number) => s[Math.min(s.length - 1, Math.max(0, Math.ceil(p * s.length) - 1))]
  const r = (x: number) => Math.round(x * 100) / 100
  return { n: s.length, min: r(s[0]), median: r(q(0.5)), p90: r(q(0.9)), p99: r(q(0.99)), max: r(s[s.length - 1]) }
}

/** A random-looking valid doc id for tests that open a URL directly. */
export function testDocId(prefix: string): string {
  return `${prefix}-${Date.now().toString(36)}-${Math.random().toString(36).slice(2, 8)}`
}

/** Dumps diagnostics for a failed step: errors and session facts of each user. */
export async function diagnostics(users: User[]): Promise<string> {
  const parts: string[] = []
  for (const u of users) {
    let facts = ''
    try {
      facts = await u.page.evaluate(() => {
        const s = (window as any).__murmur?.session
        if (!s) return 'no session'
        return JSON.stringify({ local: s.local, peers: s.peers, signaling: s.signaling, server: s.server, backedUp: s.backedUp, unbacked: s.unbackedChanges, peerList: s.peerList, len: s.text?.length })
      })
    } catch (e) {
      facts = `unavailable (${(e as Error).message})`
    }
    parts.push(`${u.name}: ${facts}\n  ${u.errors.slice(-10).join('\n  ')}`)
  }
  return parts.join('\n')
}

/** Awaits `p`; when it fails, its error carries the diagnostics of `who` (status, peers, console) for the report. */
export async function explain<T>(p: Promise<T>, who: User[]): Promise<T> {
  try {
    return await p
  } catch (err) {
    throw new Error(`${(err as Error).message}\n--- diagnostics ---\n${await diagnostics(who)}`)
  }
}
