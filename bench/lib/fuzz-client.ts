/**
 * Runs one fuzz session against a live server and reports, per frame, what
 * the server did: kept the socket open and answered (`ok`), closed it
 * (`close:<code>`), dropped TCP without a close frame (`eof`), or did not
 * answer in time (`timeout` — the server stalled or lost a reply).
 *
 * After every fuzz frame the client sends a ping (sync step 1 on /sync, a
 * signaling ping on /signal) and waits for the replies that frame and the ping
 * should produce, so each close is attributed to the frame that caused it.
 * Delayed closes (a held update timing out, a room reset by another socket)
 * land on whatever frame is in flight; the table says so.
 *
 * Every frame the server sends is checked too: it must decode (binary
 * y-websocket messages on /sync, JSON objects on /signal).
 */
import { connect, type Socket } from 'node:net'
import WebSocket from 'ws'
import * as Y from 'yjs'
import * as decoding from 'lib0/decoding'
import { SIGNAL_PING, SYNC_PING, type Session } from './fuzz-frames.ts'
import { readStateAck, readStateDelta } from '../../src/protocol/hybrid.ts'

/** Result of one frame (or of a whole wire/path session). */
export interface FrameOutcome {
  endpoint: string
  kind: string
  result: string
}

export interface SessionResult {
  outcomes: FrameOutcome[]
  /** Server frames that did not decode, or other broken promises. */
  violations: string[]
  framesSent: number
}

export interface ClientOptions {
  host: string
  port: number
  /** How long to wait for the replies to one frame. */
  replyTimeoutMs: number
}

const PONG = '{"type":"pong"}'

/** Checks one frame the server sent on /sync; returns a violation or null. */
function checkSyncReply(f: Uint8Array): string | null {
  try {
    const dec = decoding.createDecoder(f)
    const type = decoding.readVarUint(dec)
    if (type === 0) {
      const sub = decoding.readVarUint(dec)
      const payload = decoding.readVarUint8Array(dec)
      if (sub === 0) Y.decodeStateVector(payload)
      else if (sub === 1 || sub === 2) Y.decodeUpdate(payload)
      else return `sync reply with subtype ${sub}`
    } else if (type === 1) {
      const upd = decoding.readVarUint8Array(decoding.createDecoder(f.subarray(1)))
      const d = decoding.createDecoder(upd)
      for (let n = decoding.readVarUint(d); n > 0; n--) {
        decoding.readVarUint(d)
        decoding.readVarUint(d)
        JSON.parse(decoding.readVarString(d))
      }
    } else if (type === 2) {
      decoding.readVarUint(dec)
    } else if (type === 101) {
      decoding.readVarUint(dec)
    } else if (type === 104) {
      readStateAck(dec) // the answer to a (fuzzed) state query: nonce, state vector, delete-set digest
    } else if (type === 105) {
      readStateDelta(dec) // the compact answer to a (fuzzed) state query that carried a state-vector digest
    } else return `unexpected message type ${type} from server`
    return null
  } catch (err) {
    return `undecodable server frame (${(err as Error).message}): ${Buffer.from(f.subarray(0, 32)).toString('hex')}`
  }
}

/** Checks one text frame the server sent on /signal. */
function checkSignalReply(text: string): string | null {
  if (text === PONG) return null
  try {
    const m = JSON.parse(text)
    if (typeof m !== 'object' || m === null || Array.isArray(m)) return `signal reply is not an object: ${text.slice(0, 60)}`
    if (m.type === 'publish' && typeof m.clients !== 'number') return `published message without a numeric clients field: ${text.slice(0, 80)}`
    return null
  } catch {
    return `signal reply is not JSON: ${JSON.stringify(text.slice(0, 80))}`
  }
}

/** Runs a /sync or /signal session with the `ws` client. */
async function runWsSession(s: Session, o: ClientOptions): Promise<SessionResult> {
  const isSync = s.endpoint === 'sync'
  const res: SessionResult = { outcomes: [], violations: [], framesSent: 0 }
  const ws = new WebSocket(`ws://${o.host}:${o.port}${s.path}`, { perMessageDeflate: false, maxPayload: 256 * 1024 * 1024 })
  let replies = 0
  let closeCode: number | null = null
  let wake: (() => void) | null = null
  const notify = () => {
    const w = wake
    wake = null
    w?.()
  }
  ws.on('message', (data: Buffer, isBinary: boolean) => {
    if (isSync) {
      const f = new Uint8Array(data.buffer, data.byteOffset, data.byteLength)
      if (!isBinary) res.violations.push('text frame from /sync')
      else {
        const v = checkSyncReply(f)
        if (v && res.violations.length < 5) res.violations.push(v)
        if (f[0] === 0 && f[1] === 1) replies++
      }
    } else {
      const text = data.toString('utf8')
      if (isBinary) res.violations.push('binary frame from /signal')
      else {
        const v = checkSignalReply(text)
        if (v && res.violations.length < 5) res.violations.push(v)
        if (text === PONG) replies++
      }
    }
    notify()
  })
  ws.on('close', (code) => {
    closeCode = code
    notify()
  })
  let httpStatus: number | null = null
  ws.on('unexpected-response', (_req, resp) => {
    httpStatus = resp.statusCode ?? 0
    resp.resume()
    ws.terminate()
  })
  ws.on('error', () => notify())
  const opened = await new Promise<boolean>((resolve) => {
    ws.once('open', () => resolve(true))
    ws.once('close', () => resolve(false))
    setTimeout(() => resolve(false), o.replyTimeoutMs).unref()
  })
  if (!opened) {
    ws.terminate()
    res.outcomes.push({ endpoint: s.endpoint, kind: 'connect', result: httpStatus !== null ? `http:${httpStatus}` : closeCode !== null ? `close:${closeCode}` : 'timeout' })
    return res
  }
  const ping = isSync ? SYNC_PING : SIGNAL_PING
  let expected = 0
  for (const f of s.frames) {
    if (closeCode !== null) break
    const times = f.repeat ?? 1
    for (let i = 0; i < times && ws.readyState === ws.OPEN; i++) ws.send(f.data, { binary: typeof f.data !== 'string' && !f.text })
    if (ws.readyState === ws.OPEN) ws.send(ping, { binary: isSync })
    res.framesSent += times
    expected += f.replies + 1
    const deadline = Date.now() + o.replyTimeoutMs
    while (replies < expected && closeCode === null && Date.now() < deadline) {
      await new Promise<void>((r) => {
        wake = r
        setTimeout(r, Math.max(1, deadline - Date.now())).unref()
      })
    }
    const result = closeCode !== null ? `close:${closeCode}` : replies >= expected ? 'ok' : 'timeout'
    res.outcomes.push({ endpoint: s.endpoint, kind: f.kind, result })
    if (result === 'timeout') {
      res.violations.push(`no reply within ${o.replyTimeoutMs} ms to ${s.endpoint} frame kind ${f.kind} (session ${s.index})`)
      break
    }
  }
  if (ws.readyState === ws.OPEN) {
    ws.close(1000)
    await new Promise<void>((r) => {
      ws.once('close', () => r())
      setTimeout(r, 1000).unref()
    })
  }
  ws.terminate()
  return res
}

/** Reads server WebSocket frames off a raw socket: data frames and the close code, if any. */
function frameReader() {
  let buf = Buffer.alloc(0)
  const frames: { opcode: number; payload: Buffer }[] = []
  return {
    frames,
    push(chunk: Buffer) {
      buf = Buffer.concat([buf, chunk])
      for (;;) {
        if (buf.length < 2) return
        let len = buf[1] & 0x7f
        let off = 2
        if (len === 126) {
          if (buf.length < 4) return
          len = buf.readUInt16BE(2)
          off = 4
        } else if (len === 127) {
          if (buf.length < 10) return
          len = Number(buf.readBigUInt64BE(2))
          off = 10
        }
        if (buf.length < off + len) return
        frames.push({ opcode: buf[0] & 0x0f, payload: buf.subarray(off, off + len) })
        buf = buf.subarray(off + len)
      }
    },
  }
}

/**
 * Opens a raw TCP connection, writes `request` (and, after a 101, each of
 * `after`), and resolves with what the server did.
 */
function rawExchange(o: ClientOptions, request: Uint8Array, after: Uint8Array[], waitForReply: (frames: { opcode: number; payload: Buffer }[]) => boolean, settleMs: number): Promise<string> {
  return new Promise((resolve) => {
    const sock: Socket = connect({ host: o.host, port: o.port })
    let head: Buffer | null = Buffer.alloc(0)
    const reader = frameReader()
    let done = false
    const finish = (r: string) => {
      if (done) return
      done = true
      clearTimeout(timer)
      sock.destroy()
      resolve(r)
    }
    const verdict = () => {
      const close = reader.frames.find((f) => f.opcode === 8)
      if (close) return `close:${close.payload.length >= 2 ? close.payload.readUInt16BE(0) : 1005}`
      if (waitForReply(reader.frames)) return 'ok'
      return null
    }
    let timer = setTimeout(() => finish(head ? 'no-answer' : 'open'), o.replyTimeoutMs)
    sock.on('error', () => finish(head ? 'eof' : verdict() ?? 'eof'))
    sock.on('close', () => finish(head ? 'eof' : verdict() ?? 'eof'))
    sock.on('data', (chunk: Buffer) => {
      if (head) {
        head = Buffer.concat([head, chunk])
        const end = head.indexOf('\r\n\r\n')
        if (end < 0) return
        const code = /^HTTP\/1\.1 (\d+)/.exec(head.subarray(0, 20).toString())?.[1] ?? '?'
        const rest = head.subarray(end + 4)
        head = null
        if (code !== '101') return finish(`http:${code}`)
        ;(async () => {
          for (const part of after) {
            if (done) return
            sock.write(part)
            await new Promise((r) => setTimeout(r, 5))
          }
          clearTimeout(timer)
          timer = setTimeout(() => finish(verdict() ?? 'open'), settleMs)
        })()
        if (rest.length) reader.push(rest)
      } else reader.push(chunk)
      const v = verdict()
      if (v) finish(v)
    })
    sock.on('connect', () => sock.write(request))
  })
}

function upgradeBytes(path: string): Uint8Array {
  return new TextEncoder().encode(`GET ${path} HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n`)
}

/** Runs a session of any endpoint. */
export async function runSession(s: Session, o: ClientOptions): Promise<SessionResult> {
  if (s.endpoint === 'sync' || s.endpoint === 'signal') return runWsSession(s, o)
  if (s.endpoint === 'wire') {
    const isSync = s.path.startsWith('/sync/')
    const replied = (frames: { opcode: number; payload: Buffer }[]) => frames.some((f) => (isSync ? f.opcode === 2 && f.payload[0] === 0 && f.payload[1] === 1 : f.opcode === 1 && f.payload.toString() === PONG))
    const result = await rawExchange(o, upgradeBytes(s.path), s.raw ?? [], s.expectReply ? replied : () => false, s.expectReply ? o.replyTimeoutMs : 600)
    // 1012: the room was reset meanwhile because another socket's update failed inside Yjs (documented).
    const violations = s.expectReply && result !== 'ok' && result !== 'close:1012' ? [`valid ${s.kind} framing on ${s.path} got ${result} instead of a reply (session ${s.index})`] : []
    return { outcomes: [{ endpoint: 'wire', kind: s.kind!, result }], violations, framesSent: 1 }
  }
  // path: the request itself is the fuzz input; a 101 then waits briefly for a close frame.
  const result = await rawExchange(o, s.raw![0], [], () => false, 500)
  return { outcomes: [{ endpoint: 'http', kind: s.kind!, result }], violations: [], framesSent: 1 }
}
