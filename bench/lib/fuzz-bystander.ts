/**
 * The bystander: two stock y-websocket clients (`disableBc: true`) in their own
 * room, in their own process (so the fuzzer's work does not delay them), that
 * keep typing at each other while the fuzzer runs. Each edit carries a
 * sequence number; the other client notes when it arrives.
 *
 * Run as a child with an IPC channel: argv = wsUrl room intervalMs. It sends
 * `{type:'ready'}` once both clients synced, and answers `{type:'stop'}` with
 * `{type:'result', ...}` after a short grace period for edits in flight.
 */
import { yClient } from '../../test/helpers/clients.ts'

const [wsUrl, room, intervalArg] = process.argv.slice(2)
const intervalMs = Number(intervalArg ?? 100)
const clients = [yClient(wsUrl, room), yClient(wsUrl, room)]
const sentAt = new Map<number, number>()
const latencies: number[] = []
let seq = 0
let disconnects = 0

for (const [i, c] of clients.entries()) {
  c.provider.on('status', ({ status }: { status: string }) => {
    if (status === 'disconnected') disconnects++
  })
  c.text.observe((e) => {
    if (e.transaction.local) return
    for (const d of e.delta) {
      if (typeof d.insert !== 'string') continue
      for (const m of d.insert.matchAll(/<(\d+)>/g)) {
        const n = Number(m[1])
        const t = sentAt.get(n)
        if (t !== undefined && n % 2 !== i) {
          latencies.push(performance.now() - t)
          sentAt.delete(n)
        }
      }
    }
  })
}

await Promise.all(clients.map((c) => c.synced))
process.send!({ type: 'ready' })

const timer = setInterval(() => {
  const n = seq++
  const c = clients[n % 2]
  sentAt.set(n, performance.now())
  // Keep the text short: drop the oldest markers now and then.
  if (c.text.length > 4000) c.text.delete(0, 2000)
  c.text.insert(c.text.length, `<${n}>`)
}, intervalMs)

process.on('message', async (msg: { type: string }) => {
  if (msg.type !== 'stop') return
  clearInterval(timer)
  // Edits in flight get a grace period to arrive.
  const deadline = Date.now() + 5000
  while (sentAt.size > 0 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50))
  const sorted = latencies.slice().sort((a, b) => a - b)
  const q = (p: number) => (sorted.length ? sorted[Math.min(sorted.length - 1, Math.floor(p * sorted.length))] : NaN)
  const converged = clients[0].text.toString() === clients[1].text.toString()
  process.send!({ type: 'result', sent: seq, received: latencies.length, lost: sentAt.size, p50: q(0.5), p99: q(0.99), max: sorted[sorted.length - 1] ?? NaN, disconnects, converged })
  for (const c of clients) c.destroy()
  setTimeout(() => process.exit(0), 100)
})
