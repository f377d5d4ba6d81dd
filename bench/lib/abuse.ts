/**
 * The attacks of the adversarial review (issue 13) as repeatable scenarios:
 * each runs against a fresh real server process with its default limits, from
 * 127.0.0.1, while a bystander pair on another document and another address
 * (127.0.0.2), in its own process, keeps editing and times every round trip. For each attack it
 * reports the bystander's worst round trip (how long the event loop was
 * blocked for everyone else), the server's peak RSS during the attack and its
 * RSS once the attack's sockets are gone, and how the server answered.
 */
import { spawn } from 'node:child_process'
import { readdirSync, statSync } from 'node:fs'
import { join, resolve } from 'node:path'
import { createInterface } from 'node:readline'
import * as Y from 'yjs'
import * as encoding from 'lib0/encoding'
import { startServer, type ServerProcess } from '../../test/helpers/server.ts'
import { awarenessMessage, rawSync, syncMessage, uintMessage, untilDoc, yClient } from '../../test/helpers/clients.ts'
import { MessageType } from '../../src/protocol/messages.ts'
import { rssKiB } from './servers.ts'

/** One attack's outcome. */
export interface AbuseResult {
  attack: string
  /** Worst bystander round trip during the attack (ms). */
  worstRoundTripMs: number
  rssBeforeMiB: number
  rssPeakMiB: number
  /** RSS a few seconds after the attacker's sockets closed. */
  rssAfterMiB: number
  /** What the server did: close codes seen and a short note. */
  outcome: string
  /** Wall time of the attack (ms). */
  durationMs: number
}

type Raw = Awaited<ReturnType<typeof rawSync>>

/** Bytes of the SQLite files in `dir`, in MiB. */
function diskMiB(dir: string): number {
  let bytes = 0
  for (const f of readdirSync(dir)) if (f.startsWith('murmur.db')) bytes += statSync(join(dir, f)).size
  return bytes / 1048576
}

/** Resident memory of `pid` in MiB, NaN once it has exited. */
function rssMiB(pid: number): number {
  try {
    return rssKiB(pid) / 1024
  } catch {
    return NaN
  }
}

/** An update of `structs` one-character items that cannot merge (prepends), following `base` when given. */
function manyStructs(structs: number, withPrefix = false): { prefix: Uint8Array; update: Uint8Array } {
  const doc = new Y.Doc()
  const text = doc.getText('text')
  text.insert(0, 'a')
  const prefix = Y.encodeStateAsUpdate(doc)
  const sv = withPrefix ? new Uint8Array([0]) : Y.encodeStateVector(doc)
  doc.transact(() => {
    for (let i = 0; i < structs; i++) text.insert(0, 'b')
  })
  return { prefix, update: Y.encodeStateAsUpdate(doc, sv) }
}

/** An update of `structs` structs held for a missing dependency, then 50 tiny updates from another client. */
async function heldAttack(server: ServerProcess, begin: () => void, structs: number): Promise<string> {
  const { update } = manyStructs(structs)
  begin()
  const attacker = await rawSync(server.wsUrl, '/sync/abuse-held')
  attacker.send(syncMessage(1, update))
  const writer = yClient(server.wsUrl, 'abuse-held', { localAddress: '127.0.0.3' })
  const observer = yClient(server.wsUrl, 'abuse-held', { localAddress: '127.0.0.3' })
  await Promise.all([writer.synced, observer.synced])
  for (let i = 0; i < 50; i++) {
    writer.text.insert(0, 'w')
    await untilDoc(observer.doc, () => observer.text.length === i + 1, 'tiny update relayed', 120_000)
  }
  writer.destroy()
  observer.destroy()
  const note = `held ${(update.byteLength / 1048576).toFixed(1)} MiB: ${await closeSummary([attacker], 100)}`
  attacker.ws.terminate()
  return note
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms))

/** Collects the close codes of `sockets` into a short "code×n" summary. */
async function closeSummary(sockets: Raw[], waitMs: number): Promise<string> {
  const codes = new Map<number | string, number>()
  await Promise.all(
    sockets.map((s) =>
      Promise.race([s.closed.then((c) => c.code), sleep(waitMs).then(() => 'open')]).then((c) => void codes.set(c, (codes.get(c) ?? 0) + 1)),
    ),
  )
  return [...codes].map(([c, n]) => `${c}×${n}`).join(' ')
}

/** Each attack: runs against `server`, returns a note for the outcome column. */
const attacks: Record<string, (server: ServerProcess, begin: () => void) => Promise<string>> = {
  /** A 2.5 MiB update held for a missing dependency, then 50 tiny updates from someone else (the review's shape). */
  'held 2.5 MiB + 50 tiny updates': (server, begin) => heldAttack(server, begin, 240_000),
  /** The same with a 0.9 MiB update, under the per-socket bound, so the fixed server holds it too. */
  'held 0.9 MiB + 50 tiny updates': (server, begin) => heldAttack(server, begin, 85_000),
  /** One valid 10.5 MiB update of 1M structs as a first sync, re-sent on 3 more sockets (it adds nothing then). */
  async 'huge valid update ×4'(server, begin) {
    const { update } = manyStructs(950_000, true)
    begin()
    const sockets: Raw[] = []
    for (let i = 0; i < 4; i++) {
      const s = await rawSync(server.wsUrl, '/sync/abuse-huge')
      s.send(syncMessage(1, update))
      s.send(uintMessage(MessageType.durableQuery, 1))
      await Promise.race([s.waitFor((f) => f[0] === MessageType.durableAck, 120_000), s.closed])
      sockets.push(s)
    }
    const note = `${(update.byteLength / 1048576).toFixed(1)} MiB each: ${await closeSummary(sockets, 100)}`
    for (const s of sockets) s.ws.terminate()
    return note
  },
  /** Three 6.3 MiB state vectors (1.1M entries) as sync step 1 (the review sent 9 MiB ones). */
  async 'state vectors 3 × 6.3 MiB'(server, begin) {
    const enc = encoding.createEncoder()
    const n = 1_100_000
    encoding.writeVarUint(enc, n)
    for (let i = 0; i < n; i++) {
      encoding.writeVarUint(enc, 2 ** 31 + i)
      encoding.writeVarUint(enc, 1)
    }
    const sv = encoding.toUint8Array(enc)
    begin()
    const sockets: Raw[] = []
    for (let i = 0; i < 3; i++) {
      const s = await rawSync(server.wsUrl, '/sync/abuse-sv')
      s.send(syncMessage(0, sv))
      await Promise.race([s.waitFor((f) => f[0] === MessageType.sync && f[1] === 1, 60_000), s.closed])
      sockets.push(s)
    }
    const note = `${(sv.byteLength / 1048576).toFixed(1)} MiB each: ${await closeSummary(sockets, 100)}`
    for (const s of sockets) s.ws.terminate()
    return note
  },
  /** 40 documents, each given 150 awareness states of 100 KB by one socket that then closes. */
  async 'awareness flood, 40 rooms'(server, begin) {
    // The review's shape: the first 65 entries for one id, then 85 of 100 KB.
    const frame = awarenessMessage(Array.from({ length: 150 }, (_, i) => (i < 65 ? [1, i + 1, '{"user":{"name":"x"}}'] : [1000 + i, 1, JSON.stringify({ pad: 'x'.repeat(100_000) })]) as [number, number, string]))
    begin()
    const sockets: Raw[] = []
    for (let r = 0; r < 40; r++) {
      const s = await rawSync(server.wsUrl, `/sync/abuse-aw-${r}`)
      s.send(frame)
      s.send(uintMessage(MessageType.durableQuery, 1))
      await Promise.race([s.waitFor((f) => f[0] === MessageType.durableAck, 60_000), s.closed])
      sockets.push(s)
    }
    const note = await closeSummary(sockets, 100)
    for (const s of sockets) s.ws.close()
    return note
  },
  /** One socket re-sending a valid ~1 MiB update of 90,000 structs (it adds nothing after the first) for 5 s. */
  async 'byte flood 5 s'(server, begin) {
    const { update } = manyStructs(90_000, true)
    begin()
    const s = await rawSync(server.wsUrl, '/sync/abuse-bytes')
    const end = Date.now() + 5000
    let sent = 0
    while (Date.now() < end && s.ws.readyState === s.ws.OPEN) {
      if (s.ws.bufferedAmount < 4 * update.byteLength) {
        s.send(syncMessage(2, update))
        sent++
      } else await sleep(5)
    }
    s.send(uintMessage(MessageType.durableQuery, 1))
    const t0 = Date.now()
    await Promise.race([s.waitFor((f) => f[0] === MessageType.durableAck, 180_000), s.closed])
    const note = `${sent} × ${(update.byteLength / 1048576).toFixed(1)} MiB sent; server read the last ${((Date.now() - t0) / 1000).toFixed(1)} s later`
    s.ws.terminate()
    return note
  },
  /** One socket storing new 256 KiB updates as fast as it can for 8 s. */
  async 'storage flood 8 s'(server, begin) {
    begin()
    const s = await rawSync(server.wsUrl, '/sync/abuse-store')
    const doc = new Y.Doc()
    const text = doc.getText('text')
    let bytes = 0
    doc.on('update', (u: Uint8Array) => {
      if (s.ws.readyState === s.ws.OPEN) s.send(syncMessage(2, u))
      bytes += u.byteLength
    })
    const end = Date.now() + 8000
    while (Date.now() < end && s.ws.readyState === s.ws.OPEN) {
      if (s.ws.bufferedAmount < 2 * 1048576) text.insert(text.length, 's'.repeat(256 * 1024))
      else await sleep(5)
    }
    s.send(uintMessage(MessageType.durableQuery, 1))
    await Promise.race([s.waitFor((f) => f[0] === MessageType.durableAck, 120_000), s.closed])
    const note = `${(bytes / 1048576).toFixed(0)} MiB offered, ${diskMiB(server.dataDir).toFixed(0)} MiB on disk; ${await closeSummary([s], 100)}`
    s.ws.terminate()
    return note
  },
  /** One address opening 6,000 documents (a socket each, closed at once; at most 40 s). */
  async 'document-open flood ×6000'(server, begin) {
    begin()
    const end = Date.now() + 40_000
    let opened = 0
    const codes = new Map<number, number>()
    const tiny = (() => {
      const d = new Y.Doc()
      d.getText('text').insert(0, 'x'.repeat(1000))
      return Y.encodeStateAsUpdate(d)
    })()
    while (Date.now() < end && opened < 6000) {
      await Promise.all(
        Array.from({ length: 32 }, async () => {
          const s = await rawSync(server.wsUrl, `/sync/abuse-open-${opened++}`)
          s.send(syncMessage(1, tiny))
          s.ws.close()
          const { code } = await s.closed
          codes.set(code, (codes.get(code) ?? 0) + 1)
        }),
      )
    }
    const loaded = (await (await fetch(`${server.url}/metrics`)).text()).match(/^murmur_rooms_loaded (\d+)/m)?.[1]
    return `${opened} opened, ${loaded ?? '?'} loaded at the end; ${[...codes].map(([c, n]) => `${c}×${n}`).join(' ')}`
  },
  /** 32 sockets of one address that never read, in a room where a writer sends 64 MiB. */
  async 'slow readers ×32'(server, begin) {
    begin()
    const readers: Raw[] = []
    for (let i = 0; i < 32; i++) {
      const r = await rawSync(server.wsUrl, '/sync/abuse-slow')
      ;(r.ws as unknown as { _socket: { pause(): void } })._socket.pause()
      readers.push(r)
    }
    const writer = await rawSync(server.wsUrl, '/sync/abuse-slow', { localAddress: '127.0.0.3' })
    const doc = new Y.Doc()
    const text = doc.getText('text')
    doc.on('update', (u: Uint8Array) => writer.ws.readyState === writer.ws.OPEN && writer.send(syncMessage(2, u)))
    for (let i = 0; i < 256 && writer.ws.readyState === writer.ws.OPEN; i++) {
      text.insert(text.length, 'r'.repeat(256 * 1024))
      writer.send(uintMessage(MessageType.durableQuery, i + 1))
      await Promise.race([writer.waitFor((f) => f[0] === MessageType.durableAck && f.length > 1, 60_000), writer.closed])
      writer.frames.length = 0
    }
    const closed = (await (await fetch(`${server.url}/metrics`)).text()).match(/murmur_closed_by_server_total\{endpoint="sync",code="1013"\} (\d+)/)?.[1] ?? '0'
    for (const r of readers) r.ws.terminate()
    writer.ws.close()
    return `${closed} of 32 closed with 1013`
  },
}

/** The attack names, in run order. */
export const attackNames = Object.keys(attacks)

/** Starts the bystander process; `start()` begins timing, `stop()` returns the worst round trip. */
async function startBystander(wsUrl: string) {
  const child = spawn(process.execPath, ['--import', 'tsx', resolve(import.meta.dirname, 'abuse-bystander.ts'), wsUrl], { stdio: ['pipe', 'pipe', 'inherit'] })
  const lines = createInterface({ input: child.stdout! })
  const next = () => new Promise<string>((res) => lines.once('line', res))
  if ((await next()) !== 'ready') throw new Error('bystander did not start')
  return {
    start: () => child.stdin!.write('start\n'),
    async stop(): Promise<number> {
      const reply = next()
      child.stdin!.write('stop\n')
      return (JSON.parse(await reply) as { worstMs: number }).worstMs
    },
    kill: () => child.kill('SIGKILL'),
  }
}

/**
 * Runs one attack against a fresh server from `root` (a checkout) and
 * measures the bystander, RSS and outcome. The attack's payloads are built
 * before the clock starts (`begin`), so building them is not measured.
 */
export async function runAttack(name: string, root?: string): Promise<AbuseResult> {
  const server = await startServer({ root, env: { LOG_LEVEL: 'error' } })
  const pid = server.child.pid!
  const bystander = await startBystander(server.wsUrl)
  try {
    await sleep(500)
    const rssBeforeMiB = rssMiB(pid)
    let rssPeakMiB = rssBeforeMiB
    const sampler = setInterval(() => (rssPeakMiB = Math.max(rssPeakMiB, rssMiB(pid) || 0)), 50)
    let t0 = Date.now()
    const begin = () => {
      bystander.start()
      t0 = Date.now()
    }
    let outcome: string
    try {
      outcome = await attacks[name]!(server, begin)
    } catch (err) {
      outcome = `attack failed: ${(err as Error).message.slice(0, 80)}`
    }
    const durationMs = Date.now() - t0
    const worstRoundTripMs = await bystander.stop()
    await sleep(3000)
    clearInterval(sampler)
    const alive = server.child.exitCode === null
    return { attack: name, worstRoundTripMs, rssBeforeMiB, rssPeakMiB, rssAfterMiB: rssMiB(pid), outcome: alive ? outcome : `server died (${server.output().slice(-200)})`, durationMs }
  } finally {
    bystander.kill()
    await server.stop()
  }
}
