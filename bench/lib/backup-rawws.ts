/**
 * A minimal binary WebSocket client over a raw TCP socket, for the backup
 * benchmark's throughput runs. With 16 sockets on one document every update
 * comes back as 15 relayed frames; with the `ws` package on a busy core the
 * load generator, not the server, became the bottleneck (≈5–8k frames/s).
 * This client parses frames in place from each TCP chunk (no per-frame
 * allocation or event), answers pings, and writes many frames in one call.
 *
 * Client frames are masked with a zero key, so payloads go out unchanged.
 */
import { connect, type Socket } from 'node:net'
import { readFrames, upgradeRequest } from './raw-ws.ts'

/** One client socket. */
export interface BinWs {
  /** Called with the payload of every binary frame (a view into the chunk: copy it to keep it). */
  onFrame: (payload: Uint8Array) => void
  /** Called once when the server closes (close frame or end of stream), with its close code when it sent one. */
  onClose: (code: number | null, reason: string) => void
  /** Writes binary frames (one TCP write for all of them). */
  send(...payloads: Uint8Array[]): void
  /** Bytes handed to the socket but not yet written. */
  readonly buffered: number
  destroy(): void
}

/** A masked (client → server) binary frame carrying `payload`, with a zero mask key. */
export function binaryFrame(payload: Uint8Array): Buffer {
  const len = payload.byteLength
  let header: Buffer
  if (len < 126) header = Buffer.from([0x82, 0x80 | len, 0, 0, 0, 0])
  else if (len < 65536) header = Buffer.from([0x82, 0x80 | 126, len >> 8, len & 0xff, 0, 0, 0, 0])
  else {
    header = Buffer.alloc(14)
    header[0] = 0x82
    header[1] = 0x80 | 127
    header.writeBigUInt64BE(BigInt(len), 2)
  }
  return Buffer.concat([header, payload])
}

/** Opens `ws://host:port<path>` with a hand-written upgrade; `handlers` are in place before the first frame. */
export function openBin(host: string, port: number, path: string, handlers: Pick<BinWs, 'onFrame' | 'onClose'>): Promise<BinWs> {
  return new Promise((resolve, reject) => {
    const socket: Socket = connect({ host, port, noDelay: true })
    let head: Buffer | null = Buffer.alloc(0)
    let pending: Buffer | null = null
    let closed = false
    const ws: BinWs = {
      ...handlers,
      send: (...payloads) => void socket.write(payloads.length === 1 ? binaryFrame(payloads[0]!) : Buffer.concat(payloads.map(binaryFrame))),
      get buffered() {
        return socket.writableLength
      },
      destroy: () => {
        closed = true
        socket.destroy()
      },
    }
    const close = (code: number | null, reason: string) => {
      if (closed) return
      closed = true
      ws.onClose(code, reason)
      socket.destroy()
    }
    const frames = (chunk: Buffer) => {
      const buf = pending ? Buffer.concat([pending, chunk]) : chunk
      let closedBy = false
      const off = readFrames(buf, (opcode, payload) => {
        if (opcode === 2) ws.onFrame(payload)
        else if (opcode === 9) socket.write(Buffer.concat([Buffer.from([0x8a, 0x80 | payload.length, 0, 0, 0, 0]), payload]))
        else if (opcode === 8) {
          close(payload.length >= 2 ? payload.readUInt16BE(0) : null, payload.subarray(2).toString())
          closedBy = true
          return false
        }
      })
      if (!closedBy) pending = off < buf.length ? Buffer.from(buf.subarray(off)) : null
    }
    socket.on('data', (chunk: Buffer) => {
      if (head) {
        head = Buffer.concat([head, chunk])
        const end = head.indexOf('\r\n\r\n')
        if (end < 0) return
        const status = head.subarray(0, head.indexOf('\r\n')).toString()
        if (!/^HTTP\/1\.1 101/.test(status)) {
          closed = true
          socket.destroy()
          return reject(new Error(`upgrade refused: ${status}`))
        }
        const rest = head.subarray(end + 4)
        head = null
        resolve(ws)
        if (rest.length) frames(rest)
        return
      }
      frames(chunk)
    })
    socket.on('error', (err) => (head ? reject(err) : close(null, err.message)))
    socket.on('end', () => (head ? reject(new Error('connection ended during the upgrade')) : close(null, 'end of stream')))
    socket.write(upgradeRequest(host, port, path))
  })
}
