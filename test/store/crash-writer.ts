/**
 * Child process of `crash.test.ts`: appends to the SQLite store in `argv[2]`
 * as fast as it can, on several documents at once, compacting now and then,
 * and prints every acknowledged operation on stdout:
 *
 *   `ready`            store opened
 *   `A <doc> <seq>`    append resolved: row `seq` is durable
 *   `C <doc> <seq>`    compaction up to `seq` resolved
 *
 * stdout is a pipe, and pipe writes are synchronous on Linux, so a printed
 * line means the operation resolved before the line left the process. Row
 * contents are a pure function of (doc, seq) — see `crashPayload` — so the
 * parent can check every byte after a `kill -9`.
 */
import pino from 'pino'
import { openSqliteStore } from '../../server/store/sqlite.ts'
import { crashPayload, crashSnapshot, CRASH_DOCS } from './crash-payload.ts'

const [dir, seedArg] = process.argv.slice(2)
const store = openSqliteStore(dir!, { log: pino({ level: 'warn' }, process.stderr) })
let rand = Number(seedArg) >>> 0
const next = () => {
  rand = (Math.imul(rand, 1664525) + 1013904223) >>> 0
  return rand / 4294967296
}

const write = (line: string) => process.stdout.write(line + '\n')

async function writer(doc: string): Promise<never> {
  let last = (await store.load(doc)).lastSeq
  for (;;) {
    if (next() < 0.02 && last > 0) {
      await store.compact(doc, last, crashSnapshot(doc, last))
      write(`C ${doc} ${last}`)
      continue
    }
    const n = 1 + Math.floor(next() * 8)
    const batch = Array.from({ length: n }, (_, i) => crashPayload(doc, last + 1 + i))
    const seq = await store.append(doc, batch)
    if (seq !== last + n) throw new Error(`${doc}: expected seq ${last + n}, got ${seq}`)
    last = seq
    write(`A ${doc} ${seq}`)
  }
}

write('ready')
await Promise.all(CRASH_DOCS.map(writer))
