/**
 * `npm run bench -- hybrid`: what the server carries per keystroke as the room
 * grows (issue 8). Every person types the same number of keystrokes into one
 * document; measured per keystroke: server `/sync` payload bytes in and out,
 * server CPU, and (murmur) WebRTC bytes each peer receives per remote
 * keystroke.
 *
 * - murmur hybrid: real murmur clients (`SessionCore`, test/signaling/session-peer.ts)
 *   in child processes with real WebRTC (@roamhq/wrtc, host candidates only),
 *   all paired directly: `/sync` links backup-only.
 * - murmur relay: the same clients with the link forced to relay (the server
 *   forwards everything, as before issue 8).
 * - @y/websocket-server and Hocuspocus: minimal clients doing what their stock
 *   clients do (sync, then one update per keystroke); the server relays.
 *
 * - murmur hybrid, one peer without WebRTC (`--mixed 4`): relay on demand; its
 *   link relays, the others stay backup-only.
 *
 * After the typing burst every murmur peer in turn types a marker; each other
 * peer notes when it sees it (one clock: all processes are on this machine):
 * keystroke-to-remote latency between direct peers, and between a peer
 * without WebRTC and the others (via the server).
 *
 * - murmur hybrid in a partial mesh (`--partial 30 --cap 6`: 30 people, y-webrtc
 *   starts at most 6 connections per peer; `--cap ''` keeps its own 20–34),
 *   where peers pass on what some linked peer misses.
 *
 *   npm run bench -- hybrid [--peers 2,4,8] [--keys 30] [--mixed 4] [--partial 30] [--cap 6] [--only hybrid,relay,mixed,yws,hocus] [--pings 3]
 *
 * Bytes are WebSocket payloads (murmur: the server's `murmur_bytes_total`;
 * others: summed over their clients). Node processes, loopback; a loaded
 * machine changes CPU figures, not byte counts.
 */
import { readFileSync } from 'node:fs'
import { WebSocket } from 'ws'
import { startHocus, startMurmur, startYws, tempDir, killAll, removeTempDirs, type Target } from './lib/backup-servers.ts'
import { charUpdate, hocusAuth, step1Msg, updateMsg, type Proto } from './lib/backup-proto.ts'
import { renderChart, writeChart, COLORS } from './lib/chart.ts'
import { here, startReporter } from '../test/signaling/helpers.ts'

const arg = (name: string, dflt: string) => {
  const i = process.argv.indexOf(`--${name}`)
  return i > 0 ? process.argv[i + 1] : dflt
}
const SIZES = arg('peers', '2,4,8').split(',').filter(Boolean).map(Number)
const KEYS = Number(arg('keys', '30'))
const MIXED = arg('mixed', '4').split(',').filter(Boolean).map(Number)
const ONLY = new Set(arg('only', 'hybrid,relay,mixed,yws,hocus').split(','))
const PINGS = Number(arg('pings', '3'))
/** Partial-mesh rooms (murmur hybrid only): sizes, and the y-webrtc connection cap they run with ('' = y-webrtc's own, 20–34). */
const PARTIAL = arg('partial', '30').split(',').filter(Boolean).map(Number)
const CAP = arg('cap', '6')

interface Row {
  system: string
  peers: number
  inB: number
  outB: number
  cpuUs: number
  rtcB: number | null
  /** Keystroke-to-remote latency (ms, p50 and p95) between peers linked directly, and to or from a peer without WebRTC. */
  direct: [number, number] | null
  viaServer: [number, number] | null
  /** Average peers each murmur peer reached directly, of n − 1 (or of the mesh, for the mixed row). */
  directPeers: number | null
}

/** utime + stime of `pid` in seconds (Linux /proc). */
function cpuSeconds(pid: number): number {
  const f = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1].split(' ')
  return (Number(f[11]) + Number(f[12])) / 100
}

interface Report {
  vias: string[]
  peers: number
  backedUp: boolean
  text: string
  mode: string | null
  rtcBytesIn: number
  pending: number
  marks: Record<string, number>
  peerId?: string | null
}

const pct = (xs: number[], p: number) => {
  const s = [...xs].sort((a, b) => a - b)
  return s[Math.min(s.length - 1, Math.floor((p / 100) * s.length))]
}

/** murmur with real clients: `relay` forces every link to relay; the last `noRtc` peers run without WebRTC; `cap`: y-webrtc's connection cap (a partial mesh). */
async function murmurRoom(n: number, relay: boolean, noRtc = 0, cap = ''): Promise<Row> {
  const server = await startMurmur(tempDir('hybrid-'))
  const url = `http://127.0.0.1:${server.port}`
  const name = relay ? 'relay' : noRtc ? 'mixed' : cap ? 'partial' : 'hybrid'
  const doc = `bench-${n}-${name}`
  const initial: Report = { vias: [], peers: 0, backedUp: false, text: '', mode: null, rtcBytesIn: 0, pending: 0, marks: {} }
  const rtcLess = (i: number) => i >= n - noRtc
  const mesh = n - noRtc
  const spawnPeer = (i: number) =>
    startReporter<Report>(here('session-peer.ts'), [url, doc, '-', `p${i}.`], initial, { ...(relay ? { MURMUR_PEER_LINK: 'relay' } : {}), ...(rtcLess(i) ? { MURMUR_PEER_WEBRTC: '0' } : {}), ...(cap ? { MURMUR_PEER_MAX_CONNS: cap } : {}) })
  const peers: ReturnType<typeof spawnPeer>[] = []
  // A big room starts five processes at a time (each start compiles the client with tsx), each batch once the previous reported.
  for (let i = 0; i < n; i += n > 8 ? 5 : n) {
    const batch = Array.from({ length: Math.min(n > 8 ? 5 : n, n - i) }, (_, k) => spawnPeer(i + k))
    peers.push(...batch)
    if (n > 8) await Promise.all(batch.map((p) => p.until((r) => Boolean(r.peerId), 'started', 60_000)))
  }
  let stopping = false
  peers.forEach((p, i) => p.child.once('exit', (code, signal) => !stopping && console.error(`[hybrid] ${n} ${name}: peer ${i} exited (${signal ?? code}):\n${p.output().slice(-1500)}`)))
  const started = Date.now()
  try {
    // Everyone sees everyone (directly, or via the server when a pair did not connect) and is backed up.
    // (A partial mesh may split into groups that do not know each other's presence; their text still converges through the server.)
    // Beyond y-webrtc's cap (20–34) or below a given cap the mesh is partial: wait for the text, then count whom each peer lists.
    const partial = mesh > 20 || cap !== ''
    const ready = (r: Report) => (partial || r.vias.length === n - 1) && (relay ? r.mode === 'relay' : true) && r.backedUp && r.text.split('.').length === n + 1
    await Promise.all(peers.map((p, i) => p.until(ready, `peer ${i} sees all, synced`, 120_000)))
    // Every mesh pair paired directly (a pair still pairing after 8 s is retried, mesh.ts dropStalled), links settled.
    // Beyond y-webrtc's cap the mesh stays partial: wait until no pair is still pairing.
    const paired = (r: Report, i: number) => (rtcLess(i) ? r.mode === 'relay' : partial ? r.pending === 0 : r.peers === mesh - 1 && r.mode === (relay ? 'relay' : 'backup'))
    await Promise.all(peers.map((p, i) => p.until((r) => paired(r, i), 'paired', 90_000))).catch(() =>
      console.error(`[hybrid] ${n} ${name}: not every pair connected within 90 s; direct peers ${peers.map((p) => p.latest().peers).join(',')}, still pairing ${peers.map((p) => p.latest().pending).join(',')}`),
    )
    console.error(`[hybrid] ${n} ${name}: mesh formed ${((Date.now() - started) / 1000).toFixed(1)} s after start`)
    const direct = peers.reduce((s, p, i) => s + (rtcLess(i) ? 0 : p.latest().peers), 0) / mesh
    if (partial) console.error(`[hybrid] ${n} ${name}: peers listed ${(peers.reduce((s, p) => s + p.latest().vias.length, 0) / n).toFixed(1)} of ${n - 1} on average`)
    // Only the sync endpoint's bytes matter here; signaling is quiet once paired.
    const syncBytes = async () => {
      const text = await (await fetch(`${url}/metrics`)).text()
      const get = (dir: string) => Number(text.split('\n').find((l) => l.startsWith('murmur_bytes_total{') && l.includes('endpoint="sync"') && l.includes(`direction="${dir}"`))?.split(' ').pop() ?? 0)
      const kind = (k: string) => Number(text.split('\n').find((l) => l.startsWith('murmur_sync_update_bytes_total{') && l.includes(`kind="${k}"`))?.split(' ').pop() ?? 0)
      return [get('in'), get('out'), kind('uploaded'), kind('relayed')]
    }
    // Background before typing: what the links send per second with nobody typing (state queries, awareness renewals).
    const idle0 = peers.map((p) => p.latest().rtcBytesIn)
    const [bgIn0, bgOut0] = await syncBytes()
    await new Promise((r) => setTimeout(r, 5000))
    const [bgIn1, bgOut1] = await syncBytes()
    const idle = peers.reduce((s, p, i) => s + p.latest().rtcBytesIn - idle0[i], 0) / n / 5
    if (idle > 50) console.error(`[hybrid] ${n} ${relay ? 'relay' : 'hybrid'}: ${idle.toFixed(0)} B/s of WebRTC traffic per peer in the 5 s before typing (pairs still forming)`)
    const [in0, out0, up0, rel0] = await syncBytes()
    const typingStart = Date.now()
    const cpu0 = cpuSeconds(server.pid)
    const rtc0 = peers.map((p) => p.latest().rtcBytesIn)
    peers.forEach((p, i) => p.child.stdin!.write(`type ${KEYS} ${String.fromCharCode(65 + (i % 26))}\n`))
    const done = (r: Report) => r.text.length >= peers.length * (KEYS + 3) && r.backedUp
    // 30 processes typing at once on 2 cores take up to ~2 min (each gets a few % of a core).
    await Promise.all(peers.map((p, i) => p.until(done, `peer ${i} has every keystroke`, n > 20 ? 400_000 : 120_000)))
    const [in1, out1, up1, rel1] = await syncBytes()
    const cpu1 = cpuSeconds(server.pid)
    const keys = n * KEYS
    const typingS = (Date.now() - typingStart) / 1000
    const bgIn = (bgIn1 - bgIn0) / 5
    const bgOut = (bgOut1 - bgOut0) / 5
    console.error(`[hybrid] ${n} ${name}: typing took ${typingS.toFixed(1)} s; background server in/out ${bgIn.toFixed(0)} / ${bgOut.toFixed(0)} B/s; per keystroke net of it: in ${((in1 - in0 - bgIn * typingS) / keys).toFixed(1)} B, out ${((out1 - out0 - bgOut * typingS) / keys).toFixed(1)} B`)
    console.error(`[hybrid] ${n} ${name}: WebRTC in per remote keystroke net of the ${idle.toFixed(0)} B/s per peer before typing: ${((peers.reduce((s, p, i) => s + (p.latest().rtcBytesIn - rtc0[i]), 0) / n - idle * typingS) / ((n - 1) * KEYS)).toFixed(1)} B`)
    const rtc = peers.reduce((s, p, i) => s + (p.latest().rtcBytesIn - rtc0[i]), 0) / n / ((n - 1) * KEYS)
    const modes = peers.map((p) => p.latest().mode).join(',')
    console.error(`[hybrid] ${n} ${name}: per keystroke uploaded ${((up1 - up0) / keys).toFixed(1)} B, relayed ${((rel1 - rel0) / keys).toFixed(1)} B; peer changes uploaded by others ${peers.reduce((s, p) => s + ((p.latest() as unknown as { uploads: number }).uploads ?? 0), 0)}`)
    console.error(`[hybrid] ${n} ${name}: ${direct.toFixed(1)} direct peers each of ${mesh - 1}; link modes ${modes}`)
    // Latency: each peer in turn types a marker; the others note when they see it.
    const directMs: number[] = []
    const serverMs: number[] = []
    for (let round = 0; round < PINGS; round++) {
      for (let k = 0; k < n; k++) {
        const tag = `L${round}.${k}`
        peers[k].child.stdin!.write(`ping ${tag}\n`)
        await Promise.all(peers.map((p) => p.until((r) => r.marks[tag] !== undefined, `ping ${tag}`, 60_000)))
        const sent = peers[k].latest().marks[tag]
        peers.forEach((p, i) => i !== k && (rtcLess(i) || rtcLess(k) ? serverMs : directMs).push(p.latest().marks[tag] - sent))
        await new Promise((r) => setTimeout(r, 100))
      }
    }
    const lat = (xs: number[]) => (xs.length ? ([pct(xs, 50), pct(xs, 95)] as [number, number]) : null)
    const system = relay ? 'murmur relay' : noRtc ? `murmur hybrid, ${noRtc} without WebRTC` : 'murmur hybrid'
    return { system, peers: n, inB: (in1 - in0) / keys, outB: (out1 - out0) / keys, cpuUs: ((cpu1 - cpu0) * 1e6) / keys, rtcB: rtc, direct: lat(directMs), viaServer: lat(serverMs), directPeers: direct }
  } finally {
    stopping = true
    await Promise.all(peers.map((p) => p.stop()))
    await server.stop()
  }
}

/** A relaying server with `n` minimal stock-protocol clients on one document. */
async function relayRoom(proto: Proto, n: number): Promise<Row> {
  const server: Target = proto === 'yws' ? await startYws() : await startHocus(tempDir('hybrid-hocus-'))
  const doc = `bench-${n}`
  const url = proto === 'yws' ? `ws://127.0.0.1:${server.port}/${doc}` : `ws://127.0.0.1:${server.port}/`
  let sent = 0
  let received = 0
  let lastRecv = Date.now()
  const sockets: WebSocket[] = []
  try {
    for (let i = 0; i < n; i++) {
      const ws = new WebSocket(url)
      await new Promise<void>((res, rej) => (ws.once('open', () => res()), ws.once('error', rej)))
      ws.on('message', (d: Buffer) => ((received += d.byteLength), (lastRecv = Date.now())))
      const send = (m: Uint8Array) => ((sent += m.byteLength), ws.send(m))
      if (proto === 'hocus') send(hocusAuth(doc))
      send(step1Msg(proto, doc, new Uint8Array([0])))
      sockets.push(Object.assign(ws, { sendCounted: send }))
    }
    const quiet = async () => {
      while (Date.now() - lastRecv < 500) await new Promise((r) => setTimeout(r, 100))
    }
    await quiet()
    const [s0, r0, cpu0] = [sent, received, cpuSeconds(server.pid)]
    for (let k = 0; k < KEYS; k++) {
      sockets.forEach((ws, i) => (ws as unknown as { sendCounted(m: Uint8Array): void }).sendCounted(updateMsg(proto, doc, charUpdate(1000 + i, k))))
      await new Promise((r) => setImmediate(r))
    }
    lastRecv = Date.now()
    await quiet()
    const keys = n * KEYS
    return { system: proto === 'yws' ? '@y/websocket-server' : 'Hocuspocus', peers: n, inB: (sent - s0) / keys, outB: (received - r0) / keys, cpuUs: ((cpuSeconds(server.pid) - cpu0) * 1e6) / keys, rtcB: null, direct: null, viaServer: null, directPeers: null }
  } finally {
    for (const ws of sockets) ws.close()
    await server.stop()
  }
}

async function main() {
  const rows: Row[] = []
  // A room that fails (a native @roamhq/wrtc crash, a timeout) is reported and left out; the others still run.
  const room = async (what: string, fn: () => Promise<Row>) => {
    try {
      push(await fn())
    } catch (err) {
      console.error(`[hybrid] ${what} failed, left out: ${String((err as Error).message).slice(0, 2000)}`)
    }
  }
  // Each row also goes to stderr as it is measured, so a run that fails later keeps it.
  const push = (r: Row) => (rows.push(r), console.error(`[hybrid] row ${JSON.stringify(r)}`))
  const load = () => readFileSync('/proc/loadavg', 'utf8').split(' ').slice(0, 3).join(' ')
  const loadBefore = load()
  for (const n of SIZES) {
    if (ONLY.has('hybrid')) await room(`${n} hybrid`, () => murmurRoom(n, false))
    if (ONLY.has('relay')) await room(`${n} relay`, () => murmurRoom(n, true))
    if (ONLY.has('mixed') && MIXED.includes(n)) await room(`${n} mixed`, () => murmurRoom(n, false, 1))
    if (ONLY.has('yws')) push(await relayRoom('yws', n))
    if (ONLY.has('hocus')) push(await relayRoom('hocus', n))
    console.error(`[hybrid] ${n} peers done (load ${load()})`)
  }
  for (const n of PARTIAL) if (ONLY.has('hybrid')) await room(`${n} partial`, async () => ({ ...(await murmurRoom(n, false, 0, CAP)), system: `murmur hybrid, partial mesh${CAP ? ` (cap ${CAP})` : ''}` }))
  const f = (v: number | null) => (v === null ? '—' : v.toFixed(1))
  const ms = (v: [number, number] | null) => (v === null ? '—' : `${v[0].toFixed(0)} / ${v[1].toFixed(0)}`)
  const people = (r: Row) => (r.directPeers === null || r.system === 'murmur relay' ? String(r.peers) : `${r.peers} (${r.directPeers.toFixed(1)} direct)`)
  console.log(`\nServer /sync traffic per keystroke (${KEYS} keystrokes per person, everyone typing; WebSocket payload bytes); load average ${loadBefore} before, ${load()} after\n`)
  console.log('| system | people | server in B/key | server out B/key | server CPU µs/key | WebRTC in B per remote key (per peer) | latency direct p50 / p95 ms | latency via server p50 / p95 ms |')
  console.log('|---|---:|---:|---:|---:|---:|---:|---:|')
  for (const r of rows) console.log(`| ${r.system} | ${people(r)} | ${f(r.inB)} | ${f(r.outB)} | ${f(r.cpuUs)} | ${f(r.rtcB)} | ${ms(r.direct)} | ${ms(r.viaServer)} |`)
  const systems = [...new Set(rows.map((r) => r.system))]
  const ratio = (s: string, k: 'inB' | 'outB') => {
    const pts = rows.filter((r) => r.system === s)
    return pts.length < 2 ? NaN : pts[pts.length - 1][k] / pts[0][k]
  }
  console.log(`\nGrowth from ${SIZES[0]} to ${SIZES[SIZES.length - 1]} people (× per keystroke):`)
  for (const s of systems) if (!Number.isNaN(ratio(s, 'inB'))) console.log(`- ${s}: in ${ratio(s, 'inB').toFixed(2)}×, out ${ratio(s, 'outB').toFixed(2)}×, WebRTC in per remote key ${ratio(s, 'rtcB' as 'inB').toFixed(2)}×`)
  const panel = (title: string, k: 'inB' | 'outB' | 'rtcB', label: string) => ({
    title,
    x: { label: 'people in the room', ticks: SIZES.map((v) => ({ value: v, label: String(v) })) },
    y: { label, min: 0 },
    series: systems
      .filter((s) => rows.some((r) => r.system === s && r[k] !== null))
      .map((s, i) => ({ name: s, color: COLORS[i], markers: true, points: rows.filter((r) => r.system === s).map((r) => ({ x: r.peers, y: r[k] ?? NaN })) })),
  })
  // A run of only the partial-mesh room has no growth to draw: keep the chart of the last full run.
  if (SIZES.length < 2) return
  const svg = renderChart({
    title: 'Hybrid data path: what the server carries per keystroke',
    panels: [panel('server bytes out per keystroke', 'outB', 'bytes'), panel('server bytes in per keystroke', 'inB', 'bytes'), panel('WebRTC bytes in per remote keystroke, per peer', 'rtcB', 'bytes')],
    columns: 3,
  })
  console.log(writeChart('bench/hybrid.svg', svg).note)
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
