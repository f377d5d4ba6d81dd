/**
 * `npm run bench -- hybrid-browser`: the hybrid data path (issue 8) with the
 * real app in Chromium, up to a 30-person room (thirty `@roamhq/wrtc`
 * processes do not fit this machine; thirty pages of one Chromium do).
 *
 * One headless Chromium, one browser context per person (own IndexedDB, no
 * BroadcastChannel between them), the built app from a real murmur server
 * (`--client`, no ICE servers: host candidates only). Page 0 seeds one line
 * per person; everyone opens the document, the mesh forms (y-webrtc's own cap
 * of 20–34 connections a peer, so 30 people may be a partial mesh), then each
 * person types K keystrokes at the end of their own line with the keyboard
 * (each at one keystroke per `--interval` ms, whatever the room size, so
 * background traffic per keystroke does not grow with the room), all at
 * once. Measured:
 *
 * - convergence: every page's text equals the expected one (every marker
 *   present), and the time from the last keydown in any page to the last page
 *   reaching it (one clock: all pages on this machine);
 * - server `/sync` payload bytes in/out and CPU per keystroke (`/metrics`
 *   `murmur_bytes_total`, `/proc`);
 * - WebRTC data-channel bytes each browser receives per remote keystroke
 *   (`RTCPeerConnection.getStats()`, the connections collected by an init
 *   script; updates and awareness alike);
 * - per page: peers reached directly (connected data channels) and peers the
 *   peer list shows via the server.
 *
 * Runs itself under `../shared/isolated-net` (Chromium's WebRTC ignores
 * loopback-only hosts; root).
 *
 *   npm run bench -- hybrid-browser [--people 2,8,16] [--keys 12] [--interval 1000] [--idle 5000] [--server-defaults]
 *
 * Before typing, a quiet window of `--idle` ms (default 5000) measures the
 * background: server bytes and each browser's WebRTC bytes per second.
 */
import { readdirSync, readFileSync, rmSync } from 'node:fs'
import { chromium, type Browser, type Page } from 'playwright-core'
import { CHROMIUM_ARGS, chromiumPath, newUser, testDocId, waitLoaded, type User } from '../test/e2e/harness.ts'
import { startMurmur, tempDir, killAll, removeTempDirs, type Target } from './lib/backup-servers.ts'
import { buildClient } from './lib/client-build.ts'
import { insideIsolatedNet, reexecIsolated } from './lib/client-netns.ts'

const arg = (name: string, dflt: string) => {
  const i = process.argv.indexOf(`--${name}`)
  return i > 0 ? process.argv[i + 1] : dflt
}
const PEOPLE = arg('people', '2,8,16').split(',').filter(Boolean).map(Number)
const KEYS = Math.max(4, Number(arg('keys', '12')))
const INTERVAL = Number(arg('interval', '1000'))
const IDLE = Number(arg('idle', '5000'))
/**
 * Server limits lifted for the benchmark (`--server-defaults` keeps them): with thirty pages on two
 * cores, the default signaling rate (200 messages/s a socket) closed joining pages' `/signal` with
 * 4529 and event-loop lag above 500 ms made the server refuse new sockets (503), so most links fell
 * back to relay and the room never settled.
 */
const SERVER_ARGS = process.argv.includes('--server-defaults') ? [] : ['--max-signal-rate', '5000', '--overload-lag-ms', '0']

const load = () => readFileSync('/proc/loadavg', 'utf8').split(' ').slice(0, 3).join(' ')
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms))

/** utime + stime of `pid` in seconds (Linux /proc). */
function cpuSeconds(pid: number): number {
  const f = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1].split(' ')
  return (Number(f[11]) + Number(f[12])) / 100
}

/** utime + stime (s) of the Chromium processes this process started (browser, renderers, GPU, network). */
function browserCpu(): number {
  const parent = new Map<number, number>()
  const chrome = new Set<number>()
  for (const d of readdirSync('/proc')) {
    if (!/^\d+$/.test(d)) continue
    try {
      parent.set(Number(d), Number(readFileSync(`/proc/${d}/stat`, 'utf8').split(') ')[1].split(' ')[1]))
      if (readFileSync(`/proc/${d}/comm`, 'utf8').startsWith('chrom')) chrome.add(Number(d))
    } catch {
      // exited
    }
  }
  const ours = (pid: number): boolean => pid === process.pid || (pid > 1 && parent.has(pid) && ours(parent.get(pid)!))
  let total = 0
  for (const pid of chrome) {
    try {
      if (ours(pid)) total += cpuSeconds(pid)
    } catch {
      // exited
    }
  }
  return total
}

/** Collects every RTCPeerConnection the page makes (for getStats) and every keydown time. */
function instrument() {
  const w = window as any
  w.__keys = []
  addEventListener('keydown', () => w.__keys.push(Date.now()), true)
  const Native = w.RTCPeerConnection
  if (!Native) return
  const pcs: any[] = (w.__pcs = [])
  w.RTCPeerConnection = class extends Native {
    constructor(...args: any[]) {
      super(...args)
      pcs.push(this)
    }
  }
  // Data-channel bytes received so far per connection (polled only when measured: getStats on every
  // connection of thirty pages each second is a CPU load of its own), and connections closed so far.
  w.__rtcPoll = async () => {
    let total = 0
    let closed = 0
    for (const pc of pcs) {
      if (pc.connectionState === 'closed') closed++
      if (pc.connectionState !== 'closed') {
        let rx = 0
        try {
          ;(await pc.getStats()).forEach((s: any) => s.type === 'data-channel' && (rx += s.bytesReceived ?? 0))
          pc.__rx = Math.max(pc.__rx ?? 0, rx)
        } catch {
          // closed meanwhile: keep the last value
        }
      }
      total += pc.__rx ?? 0
    }
    return [total, closed]
  }
}

/** What one page knows about its mesh and backup link. */
interface PageFacts {
  /** Data channels connected (y-webrtc `webrtcConns`), and still pairing. */
  connected: number
  pending: number
  /** y-webrtc's connection cap in this page (20–34, random per provider). */
  maxConns: number
  /** Peer list entries by `via`. */
  vias: Record<string, number>
  mode: string | null
  serverState: string
  text: string
}

const facts = (page: Page): Promise<PageFacts> =>
  page.evaluate(() => {
    const s = (window as any).__murmur.session
    const conns = [...(s.webrtc?.room?.webrtcConns.values() ?? [])] as { connected: boolean; closed: boolean }[]
    const vias: Record<string, number> = {}
    for (const p of s.peerList as { via: string }[]) vias[p.via] = (vias[p.via] ?? 0) + 1
    return {
      connected: conns.filter((c) => c.connected && !c.closed).length,
      pending: conns.filter((c) => !c.connected && !c.closed).length,
      maxConns: s.webrtc?.maxConns ?? 0,
      vias,
      mode: s.core.link?.mode ?? null,
      serverState: s.serverState,
      text: s.text.toString(),
    }
  })

/** Data-channel bytes received by the page so far, and its connections closed so far (bytes after a connection's last poll are not counted). */
const rtcBytes = (page: Page): Promise<[number, number]> => page.evaluate(() => (window as any).__rtcPoll?.() ?? [0, 0])

/** `murmur_bytes_total` of `/sync` in and out, and link modes of the sync clients. */
async function serverMetrics(url: string): Promise<{ inB: number; outB: number; modes: string }> {
  const text = await (await fetch(`${url}/metrics`)).text()
  const lines = text.split('\n')
  const get = (dir: string) => Number(lines.find((l) => l.startsWith('murmur_bytes_total{') && l.includes('endpoint="sync"') && l.includes(`direction="${dir}"`))?.split(' ').pop() ?? 0)
  const refused = lines.filter((l) => l.startsWith('murmur_closed_by_server_total{') || l.startsWith('murmur_overload_refused_total')).map((l) => l.replace(/^murmur_/, '')).join(', ')
  const modes = lines
    .filter((l) => l.startsWith('murmur_sync_clients{'))
    .map((l) => `${/mode="([^"]+)"/.exec(l)?.[1]} ${l.split(' ').pop()}`)
    .join(', ')
  return { inB: get('in'), outB: get('out'), modes: refused ? `${modes}; ${refused}` : modes }
}

interface Row {
  people: number
  opened: number
  /** Connected data channels per page: min, mean, max (of people − 1); and y-webrtc's caps seen. */
  direct: [number, number, number]
  caps: [number, number]
  /** Peer-list entries shown via the server, mean per page; entries listed at all, mean. */
  viaServer: number
  listed: number
  converged: number
  convergeMs: number | null
  inB: number
  outB: number
  cpuUs: number
  /** WebRTC data-channel bytes received per remote keystroke per browser: mean, min, max. */
  rtc: [number, number, number]
  /** Quiet window before typing: server /sync bytes out per second, WebRTC bytes in per second per browser (mean). */
  idleOut: number
  idleRtc: number
  /** Chromium CPU (all its processes) per page while idle, in cores. */
  idleChromeCpu: number
  /** Pages whose mesh module forwarded (mesh incomplete) while typing, as a sum of each page's fraction of samples. */
  forwarding: number
  modes: string
  load: string
}

const typed = (i: number) => `#${i}` + Array.from({ length: KEYS - String(i).length - 1 }, (_, k) => String.fromCharCode(97 + ((i + k) % 26))).join('')
const label = (i: number) => `p${String(i).padStart(2, '0')}:`

async function room(browser: Browser, server: Target, n: number): Promise<Row> {
  const url = `http://127.0.0.1:${server.port}`
  const docUrl = `${url}/d/${testDocId(`hybrid-browser-${n}`)}`
  const users: User[] = []
  const t0 = Date.now()
  try {
    const seed = Array.from({ length: n }, (_, i) => label(i)).join('\n')
    const expected = Array.from({ length: n }, (_, i) => label(i) + typed(i)).join('\n')
    // Page 0 seeds one line per person and backs it up; the others open in batches of five (each start loads the app).
    for (let i = 0; i < n; i += 5) {
      const batch = await Promise.all(Array.from({ length: Math.min(5, n - i) }, (_, k) => newUser(browser, { name: `P${i + k}`, color: '#1971c2' })))
      users.push(...batch)
      // Small windows: thirty pages render on two cores.
      await Promise.all(batch.map((u) => u.page.setViewportSize({ width: 480, height: 360 })))
      await Promise.all(batch.map((u) => u.context.addInitScript(instrument)))
      await Promise.all(batch.map(async (u) => (await u.page.goto(docUrl), await waitLoaded(u.page, 240_000))))
      if (i === 0) {
        await users[0].page.evaluate((seed) => (window as any).__murmur.session.text.insert(0, seed), seed)
        await users[0].page.locator('[data-testid=status-server][data-state="backed-up"]').waitFor({ state: 'attached', timeout: 60_000 })
      }
    }
    const pages = users.map((u) => u.page)
    console.error(`[hybrid-browser] ${n}: ${n} pages open after ${((Date.now() - t0) / 1000).toFixed(1)} s (load ${load()})`)
    // The mesh settles: every page has the seed and is backed up, no connection is still pairing, and the
    // direct counts stayed the same for 3 s (y-webrtc retries announcements; a partial mesh does not fill).
    const deadline = Date.now() + 180_000
    let prev = ''
    let all: PageFacts[] = []
    for (;;) {
      all = await Promise.all(pages.map(facts))
      const settled = all.every((f) => f.text === seed && f.pending === 0 && f.serverState === 'backed-up' && f.connected > 0)
      const sig = all.map((f) => `${f.connected}/${Object.entries(f.vias).sort().join()}`).join(' ')
      if (settled && sig === prev) break
      if (Date.now() > deadline) {
        console.error(`[hybrid-browser] ${n}: mesh not settled after 180 s; measuring anyway: ${JSON.stringify(all.map((f) => ({ c: f.connected, p: f.pending, s: f.serverState, v: f.vias })))}`)
        break
      }
      prev = settled ? sig : ''
      await sleep(3000)
    }
    console.error(`[hybrid-browser] ${n}: mesh settled ${((Date.now() - t0) / 1000).toFixed(1)} s after start; connected per page ${all.map((f) => f.connected).join(',')}`)

    // Each person's caret at the end of their own line (so concurrent keystrokes never interleave).
    for (const [i, p] of pages.entries()) {
      await p.locator('.cm-content').click()
      await p.keyboard.press('Control+Home')
      for (let k = 0; k < i; k++) await p.keyboard.press('ArrowDown')
      await p.keyboard.press('End')
    }
    await Promise.all(pages.map((p) => p.evaluate((expected) => {
      const w = window as any
      const s = w.__murmur.session
      w.__convergedAt = null
      const check = () => w.__convergedAt === null && s.text.toString() === expected && (w.__convergedAt = Date.now())
      s.doc.on('update', check)
    }, expected)))
    await sleep(1000)
    const mIdle = await serverMetrics(url)
    const rtcIdle = (await Promise.all(pages.map(rtcBytes))).map((r) => r[0])
    const idleStart = Date.now()
    const chromeIdle0 = browserCpu()
    await sleep(IDLE)
    const chromeIdle = browserCpu() - chromeIdle0
    const m0 = await serverMetrics(url)
    const cpu0 = cpuSeconds(server.pid)
    const rtcStart = await Promise.all(pages.map(rtcBytes))
    const rtc0 = rtcStart.map((r) => r[0])
    const keys0 = await Promise.all(pages.map((p) => p.evaluate(() => (window as any).__keys.length as number)))
    const idleS = (Date.now() - idleStart) / 1000
    const delay = INTERVAL
    // While typing, each page samples whether its mesh module forwards what it receives (`meshIncomplete`).
    await Promise.all(pages.map((p) => p.evaluate(() => {
      const w = window as any
      w.__fwd = [0, 0]
      // Local traffic per keystroke: document updates and awareness (caret) updates this page makes.
      const s = w.__murmur.session
      w.__local = { updates: 0, updateBytes: 0, awareness: 0 }
      s.doc.on('update', (u: Uint8Array, origin: unknown) => {
        if (origin && typeof origin === 'object' && 'constructor' in origin && String((origin as object).constructor?.name).includes('Provider')) return
        w.__local.updates++
        w.__local.updateBytes += u.byteLength
      })
      s.awareness.on('update', ({ added, updated }: { added: number[]; updated: number[] }, origin: unknown) => origin === 'local' && [...added, ...updated].includes(s.doc.clientID) && w.__local.awareness++)
      w.__fwdTimer = setInterval(() => w.__fwd[w.__murmur.session.core.meshIncomplete() ? 0 : 1]++, 250)
    })))
    // Everyone at once, phases spread over one keystroke interval.
    await Promise.all(pages.map(async (p, i) => (await sleep((i * delay) / n), await p.keyboard.type(typed(i), { delay }))))
    const local = await Promise.all(pages.map((p) => p.evaluate(() => (window as any).__local as { updates: number; updateBytes: number; awareness: number })))
    console.error(`[hybrid-browser] ${n}: per page while typing: local doc updates ${local.map((l) => l.updates).join(',')} (mean ${(local.reduce((a, l) => a + l.updateBytes, 0) / Math.max(1, local.reduce((a, l) => a + l.updates, 0))).toFixed(1)} B), caret awareness updates ${local.map((l) => l.awareness).join(',')}`)
    const fwd = await Promise.all(pages.map((p) => p.evaluate(() => (clearInterval((window as any).__fwdTimer), (window as any).__fwd as [number, number]))))
    const lastKey = Math.max(...(await Promise.all(pages.map((p) => p.evaluate(() => (window as any).__keys.at(-1) as number)))))
    const keyCounts = await Promise.all(pages.map((p, i) => p.evaluate(() => (window as any).__keys.length as number).then((c) => c - keys0[i])))
    if (keyCounts.some((c) => c !== KEYS)) console.error(`[hybrid-browser] ${n}: keydowns per page ${keyCounts.join(',')} (expected ${KEYS})`)
    const at = await Promise.all(
      pages.map((p) =>
        p
          .waitForFunction(() => (window as any).__convergedAt, null, { timeout: 120_000, polling: 200 })
          .then((h) => h.jsonValue() as Promise<number>)
          .catch(() => null),
      ),
    )
    const rtcEnd = await Promise.all(pages.map(rtcBytes))
    const rtc1 = rtcEnd.map((r) => r[0])
    const closedDuring = rtcEnd.reduce((s, r, i) => s + r[1] - rtcStart[i][1], 0)
    if (closedDuring) console.error(`[hybrid-browser] ${n}: ${closedDuring} connections closed while typing (their bytes after the start are not counted)`)
    const converged = at.filter((t) => t !== null).length
    if (converged < n) {
      const texts = await Promise.all(pages.map((p) => p.evaluate(() => (window as any).__murmur.session.text.toString() as string)))
      const missing = texts.map((t, i) => ({ i, missing: Array.from({ length: n }, (_, j) => label(j) + typed(j)).filter((l) => !t.includes(l)).length })).filter((x) => x.missing)
      console.error(`[hybrid-browser] ${n}: ${n - converged} pages did not converge within 120 s: ${JSON.stringify(missing)}`)
    }
    await Promise.all(pages.map((p) => p.locator('[data-testid=status-server][data-state="backed-up"]').waitFor({ state: 'attached', timeout: 60_000 }).catch(() => console.error(`[hybrid-browser] ${n}: a page not backed up within 60 s`))))
    const m1 = await serverMetrics(url)
    const cpu1 = cpuSeconds(server.pid)
    const end = await Promise.all(pages.map(facts))
    const keys = n * KEYS
    const perRemote = rtc1.map((b, i) => (b - rtc0[i]) / ((n - 1) * KEYS))
    const conn = end.map((f) => f.connected)
    const mean = (xs: number[]) => xs.reduce((a, b) => a + b, 0) / xs.length
    const modes = Object.entries(end.reduce<Record<string, number>>((m, f) => ((m[String(f.mode)] = (m[String(f.mode)] ?? 0) + 1), m), {}))
      .map(([k, v]) => `${k} ${v}`)
      .join(', ')
    return {
      people: n,
      opened: pages.length,
      direct: [Math.min(...conn), mean(conn), Math.max(...conn)],
      caps: [Math.min(...end.map((f) => f.maxConns)), Math.max(...end.map((f) => f.maxConns))],
      viaServer: mean(end.map((f) => f.vias.server ?? 0)),
      listed: mean(end.map((f) => Object.values(f.vias).reduce((a, b) => a + b, 0))),
      converged,
      convergeMs: converged === n ? Math.max(...(at as number[])) - lastKey : null,
      inB: (m1.inB - m0.inB) / keys,
      outB: (m1.outB - m0.outB) / keys,
      cpuUs: ((cpu1 - cpu0) * 1e6) / keys,
      rtc: [mean(perRemote), Math.min(...perRemote), Math.max(...perRemote)],
      idleOut: (m0.outB - mIdle.outB) / idleS,
      idleRtc: mean(rtc0.map((b, i) => (b - rtcIdle[i]) / idleS)),
      idleChromeCpu: chromeIdle / idleS / n,
      forwarding: fwd.reduce((s, [yes, no]) => s + yes / Math.max(1, yes + no), 0),
      modes: `pages: ${modes}; server: ${m1.modes}`,
      load: load(),
    }
  } finally {
    for (const u of users) await u.close().catch(() => {})
  }
}

async function main() {
  if (!insideIsolatedNet()) process.exit(reexecIsolated(import.meta.filename, process.argv.slice(2)))
  const loadBefore = load()
  const clientDir = buildClient()
  const rows: Row[] = []
  let browser: Browser | null = null
  try {
    for (const n of PEOPLE) {
      // A fresh server and browser per room: nothing carries over.
      const server = await startMurmur(tempDir('hybrid-browser-'), { args: ['--client', clientDir, ...SERVER_ARGS] })
      const config = await (await fetch(`http://127.0.0.1:${server.port}/config.json`)).json()
      if (!Array.isArray(config.iceServers) || config.iceServers.length) throw new Error(`the server hands out ICE servers ${JSON.stringify(config.iceServers)}: none allowed here`)
      browser = await chromium.launch({ executablePath: chromiumPath(), args: CHROMIUM_ARGS })
      try {
        const r = await room(browser, server, n)
        rows.push(r)
        console.error(`[hybrid-browser] row ${JSON.stringify(r)}`)
      } catch (err) {
        console.error(`[hybrid-browser] ${n} people failed, left out: ${String((err as Error).stack).slice(0, 2000)}`)
      } finally {
        await browser.close().catch(() => {})
        browser = null
        await server.stop()
      }
    }
  } finally {
    await browser?.close().catch(() => {})
    rmSync(clientDir, { recursive: true, force: true })
  }
  const f = (v: number, d = 1) => v.toFixed(d)
  console.log(`\nmurmur in Chromium (server ${SERVER_ARGS.join(' ') || 'defaults'}): ${KEYS} keystrokes per person typed with the keyboard, one every ${INTERVAL} ms per person, everyone at once; load average ${loadBefore} before, ${load()} after\n`)
  console.log('| people | direct peers per page min / mean / max (y-webrtc cap) | shown via server (mean) | pages converged | converged after last key (ms) | server in B/key | server out B/key | server CPU µs/key | WebRTC in B per remote key per browser, mean (min–max) | idle: server out B/s, WebRTC in B/s per browser, Chromium CPU per page | load |')
  console.log('|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|')
  for (const r of rows)
    console.log(
      `| ${r.people} | ${r.direct[0]} / ${f(r.direct[2] === r.direct[0] ? r.direct[0] : r.direct[1])} / ${r.direct[2]} of ${r.people - 1} (${r.caps[0]}–${r.caps[1]}) | ${f(r.viaServer)} | ${r.converged} of ${r.people} | ${r.convergeMs ?? '—'} | ${f(r.inB)} | ${f(r.outB)} | ${f(r.cpuUs, 0)} | ${f(r.rtc[0])} (${f(r.rtc[1])}–${f(r.rtc[2])}) | ${f(r.idleOut)}, ${f(r.idleRtc)}, ${(r.idleChromeCpu * 100).toFixed(1)} % | ${r.load.split(' ')[0]} |`,
    )
  for (const r of rows) console.log(`- ${r.people}: link modes ${r.modes}; peer list shows ${f(r.listed)} of ${r.people - 1}; pages forwarding peers' updates while typing (mesh incomplete): ${f(r.forwarding)} of ${r.people}`)
  if (rows.length < PEOPLE.length) process.exitCode = 1
}

main()
  .catch((err) => {
    console.error(err)
    process.exitCode = 1
  })
  .finally(() => {
    killAll()
    removeTempDirs()
  })
