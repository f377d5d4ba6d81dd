/**
 * A minimal WebSocket client over a raw TCP socket, for load generation: the
 * load generator must be much cheaper per message than the server it measures,
 * so it does not parse messages — it frames them by length and counts them.
 */
import { randomBytes } from 'node:crypto'
import { connect, type Socket } from 'node:net'

/** One client socket that counts the text frames it receives. */
export interface RawWs {
  socket: Socket
  /** Text frames received so far. */
  received: number
  /** Called after every chunk that completed at least one text frame. */
  onFrames: ((n: number) => void) | null
  /** Writes one or more pre-built frames. */
  write(frames: Buffer): void
  destroy(): void
}

/** The HTTP request that opens a WebSocket to `ws://host:port<path>` (a fresh 16-byte key, as RFC 6455 requires; ws refuses shorter ones with 400). */
export function upgradeRequest(host: string, port: number, path: string): string {
  return (
    `GET ${path} HTTP/1.1\r\nHost: ${host}:${port}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n` +
    `Sec-WebSocket-Key: ${randomBytes(16).toString('base64')}\r\nSec-WebSocket-Version: 13\r\n\r\n`
  )
}

/**
 * Calls `each` with the opcode and payload (a view into `buf`) of every whole
 * unmasked (server → client) frame at the start of `buf`, in order; stops
 * early when `each` returns false. Returns the bytes consumed, so the caller
 * keeps the rest for the next chunk.
 */
export function readFrames(buf: Buffer, each: (opcode: number, payload: Buffer) => boolean | void): number {
  let off = 0
  for (;;) {
    const avail = buf.length - off
    if (avail < 2) return off
    let len = buf[off + 1]! & 0x7f
    let hdr = 2
    if (len === 126) {
      if (avail < 4) return off
      len = buf.readUInt16BE(off + 2)
      hdr = 4
    } else if (len === 127) {
      if (avail < 10) return off
      len = Number(buf.readBigUInt64BE(off + 2))
      hdr = 10
    }
    if (avail < hdr + len) return off
    const opcode = buf[off]! & 0x0f
    const payload = buf.subarray(off + hdr, off + hdr + len)
    off += hdr + len
    if (each(opcode, payload) === false) return off
  }
}

/** A masked (client → server) text frame of `text`. The mask key is zero, so the payload stays readable and can be reused. */
export function textFrame(text: string): Buffer {
  const payload = Buffer.from(text)
  const len = payload.length
  const header = len < 126 ? Buffer.from([0x81, 0x80 | len]) : len < 65536 ? Buffer.from([0x81, 0x80 | 126, len >> 8, len & 0xff]) : null
  if (!header) throw new Error('frame too large for this client')
  return Buffer.concat([header, Buffer.alloc(4), payload])
}

/** Opens a WebSocket to `ws://host:port/path` with a hand-written upgrade. */
export function openRaw(host: string, port: number, path: string): Promise<RawWs> {
  return new Promise((resolve, reject) => {
    const socket = connect({ host, port, noDelay: true })
    let head: Buffer | null = Buffer.alloc(0)
    let pending: Buffer | null = null
    const ws: RawWs = {
      socket,
      received: 0,
      onFrames: null,
      write: (frames) => void socket.write(frames),
      destroy: () => socket.destroy(),
    }
    const frames = (chunk: Buffer) => {
      const buf = pending ? Buffer.concat([pending, chunk]) : chunk
      let n = 0
      const off = readFrames(buf, (opcode) => {
        if (opcode === 1) n++
      })
      pending = off < buf.length ? buf.subarray(off) : null
      if (n) {
        ws.received += n
        ws.onFrames?.(n)
      }
    }
    socket.on('data', (chunk: Buffer) => {
      if (head) {
        head = Buffer.concat([head, chunk])
        const end = head.indexOf('\r\n\r\n')
        if (end < 0) return
        const status = head.subarray(0, head.indexOf('\r\n')).toString()
        if (!/^HTTP\/1\.1 101/.test(status)) return reject(new Error(`upgrade refused: ${status}`))
        const rest = head.subarray(end + 4)
        head = null
        resolve(ws)
        if (rest.length) frames(rest)
        return
      }
      frames(chunk)
    })
    socket.on('error', reject)
    socket.write(upgradeRequest(host, port, path))
  })
}
