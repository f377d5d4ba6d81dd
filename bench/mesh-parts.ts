/**
 * Big y-webrtc messages on a real data channel (`npm run bench -- mesh-parts
 * [--quick]`): two simple-peer connections joined by @roamhq/wrtc in this
 * process (`iceServers: []`). For each message size, the time from y-webrtc's
 * `peer.send` to the whole message reaching y-webrtc's data listener on the
 * other side, sent whole (stock y-webrtc: works only up to the channel's
 * 256 KiB maximum) and in 16 KiB parts (`MeshPort.adopt` hooks
 * `session/mesh-parts.ts`). Prints a table; asserts nothing.
 */
import { cpus, loadavg } from 'node:os'
import { rtcPair, type TestConn } from '../test/helpers/rtc-pair.ts'
import { MeshPort } from '../src/session/mesh-port.ts'
import { MeshMessage } from '../src/protocol/messages.ts'
import { stats } from '../test/e2e/harness.ts'

const quick = process.argv.includes('--quick')
const reps = quick ? 3 : 9
const sizes = [64 * 1024, 200 * 1024, 1024 * 1024, 4 * 1024 * 1024, 16 * 1024 * 1024 - 64]
const WHOLE_MAX = 256 * 1024

async function pair(parts: boolean) {
  const p = rtcPair()
  if (parts) {
    new MeshPort(MeshMessage.history).adopt('b', p.a as never)
    new MeshPort(MeshMessage.history).adopt('a', p.b as never)
  }
  await p.connect()
  return p
}

/** Milliseconds until `to` has seen one more message than now, after `send()`. */
function timeOne(to: TestConn, send: () => void): Promise<number> {
  const n = to.seenByYWebrtc.length
  const t0 = performance.now()
  send()
  return new Promise((res, rej) => {
    const check = () => {
      if (to.seenByYWebrtc.length > n) res(performance.now() - t0)
      else if (to.closed) rej(new Error('the connection closed'))
      else setImmediate(check)
    }
    check()
  })
}

const results: { size: number; mode: string; ms: ReturnType<typeof stats> | null }[] = []
for (const parts of [false, true]) {
  const p = await pair(parts)
  for (const size of sizes) {
    if (!parts && size > WHOLE_MAX) {
      results.push({ size, mode: 'whole', ms: null })
      continue
    }
    const m = new Uint8Array(size) // starts with 0: a y-webrtc sync message
    const times: number[] = []
    for (let i = 0; i < reps; i++) {
      times.push(await timeOne(p.b, () => p.a.peer.send(m)))
      p.b.seenByYWebrtc.length = 0
    }
    results.push({ size, mode: parts ? 'parts' : 'whole', ms: stats(times) })
  }
  p.close()
}

const fmt = (n: number) => (n < 10 ? n.toFixed(1) : n.toFixed(0))
const label = (n: number) => (n >= 1024 * 1024 ? `${(n / 1024 / 1024).toFixed(0)} MiB` : `${n / 1024} KiB`)
console.log(`\nmesh-parts: a y-webrtc message on a real data channel (@roamhq/wrtc), ${reps} runs each; load ${loadavg().map((l) => l.toFixed(1)).join(' ')} on ${cpus().length} cores\n`)
console.log('| message | sent whole: median / max | in 16 KiB parts: median / max | parts throughput |')
console.log('| --- | ---: | ---: | ---: |')
for (const size of sizes) {
  const whole = results.find((r) => r.size === size && r.mode === 'whole')!.ms
  const parts = results.find((r) => r.size === size && r.mode === 'parts')!.ms!
  const w = whole ? `${fmt(whole.median)} / ${fmt(whole.max)} ms` : 'not possible (> 256 KiB)'
  console.log(`| ${label(size)} | ${w} | ${fmt(parts.median)} / ${fmt(parts.max)} ms | ${((size / 1024 / 1024) / (parts.median / 1000)).toFixed(0)} MiB/s |`)
}
process.exit(0)
