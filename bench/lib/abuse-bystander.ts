/**
 * The abuse table's bystander, in its own process so the attacker's work in
 * the bench process never delays it: a yClient pair on document `bystander`
 * from 127.0.0.2 typing one character every 20 ms and timing each round trip
 * through the server.
 *
 *   node --import tsx bench/lib/abuse-bystander.ts <wsUrl>
 *
 * Prints `ready` once synced; on a `start` line on stdin it resets the worst
 * round trip, on `stop` it prints `{"worstMs": n}` and exits.
 */
import { createInterface } from 'node:readline'
import { untilDoc, yClient } from '../../test/helpers/clients.ts'

const [wsUrl] = process.argv.slice(2)
const a = yClient(wsUrl, 'bystander', { localAddress: '127.0.0.2' })
const b = yClient(wsUrl, 'bystander', { localAddress: '127.0.0.2' })
await Promise.all([a.synced, b.synced])
let worst = 0
let running = true
const probe = (async () => {
  while (running) {
    const t0 = performance.now()
    a.text.insert(a.text.length, '.')
    const n = a.text.length
    await untilDoc(b.doc, () => b.text.length >= n, 'bystander round trip', 600_000)
    worst = Math.max(worst, performance.now() - t0)
    await new Promise((r) => setTimeout(r, 20))
  }
})()
process.stdout.write('ready\n')
createInterface({ input: process.stdin }).on('line', async (line) => {
  if (line === 'start') worst = 0
  if (line === 'stop') {
    running = false
    await probe
    process.stdout.write(JSON.stringify({ worstMs: worst }) + '\n')
    a.destroy()
    b.destroy()
    setTimeout(() => process.exit(0), 50)
  }
})
