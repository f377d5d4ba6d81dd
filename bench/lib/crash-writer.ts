/**
 * A writing client for the crash driver: one raw y-websocket socket on
 * `/sync/<docId>`, its own Y.Doc synced with the server first, then appending
 * marked chunks `<id|filler>` (keystroke-sized, sometimes an 8–64 KiB paste)
 * to `Y.Text('text')` as fast as a window of
 * unconfirmed durable queries allows. Each chunk is sent as its update
 * followed by `[100, nonce]`; `[101, n]` confirms every chunk up to nonce n,
 * whose id then goes into `acked`. Chunks are appended after whatever the
 * client has seen of the others, so they depend on other clients' items (a
 * lost dependency shows up as pending structs on reload).
 */
import WebSocket from 'ws'
import * as Y from 'yjs'
import * as decoding from 'lib0/decoding'
import * as encoding from 'lib0/encoding'
import * as syncProtocol from 'y-protocols/sync'
import { MessageType } from '../../src/protocol/messages.ts'

/** Matches one chunk written by a crash writer; group 1 is its id. */
export const CHUNK_RE = /<([^|>]+)\|[^>]*>/g

/** Options of `CrashWriter`. */
export interface CrashWriterOptions {
  wsUrl: string
  docId: string
  /** Prefix of every chunk id, unique per writer and round (e.g. `r3w1`). */
  tag: string
  /** Seeded random source for filler lengths and letters. */
  rand: () => number
  /** Unconfirmed durable queries allowed in flight. Default 16. */
  window?: number
  /** Longest filler per chunk. Default 48 characters. */
  fillerMax?: number
}

const REMOTE = Symbol('remote')

/** One writing socket; see the module comment. */
export class CrashWriter {
  readonly doc = new Y.Doc()
  /** Ids of chunks the server confirmed as durable. */
  readonly acked: string[] = []
  /** Chunks sent (confirmed or not). */
  sent = 0
  /** Resolves once the server's state has arrived (sync step 2). */
  readonly synced: Promise<void>
  /** Resolves when the socket has closed. */
  readonly closed: Promise<void>
  private readonly ws: WebSocket
  private readonly text = this.doc.getText('text')
  private readonly inFlight: { nonce: number; id: string }[] = []
  private nonce = 0
  private writing = false
  private readonly window: number
  private readonly fillerMax: number
  private onAck: (() => void) | null = null

  constructor(private readonly opts: CrashWriterOptions) {
    this.window = opts.window ?? 16
    this.fillerMax = opts.fillerMax ?? 48
    this.ws = new WebSocket(`${opts.wsUrl}/sync/${opts.docId}`)
    this.ws.binaryType = 'nodebuffer'
    this.closed = new Promise((res) => this.ws.once('close', () => res()))
    this.ws.on('error', () => {}) // a kill -9 resets the socket; the close event is what counts
    this.doc.on('update', (u: Uint8Array, origin: unknown) => {
      if (origin !== REMOTE) this.send(syncFrame(2, u))
    })
    this.synced = new Promise((resolve, reject) => {
      this.ws.once('open', () => {
        const enc = encoding.createEncoder()
        encoding.writeVarUint(enc, MessageType.sync)
        syncProtocol.writeSyncStep1(enc, this.doc)
        this.ws.send(encoding.toUint8Array(enc))
      })
      this.ws.once('close', () => reject(new Error(`${opts.tag}: socket closed before sync`)))
      this.ws.on('message', (data: Buffer) => {
        const dec = decoding.createDecoder(new Uint8Array(data))
        const type = decoding.readVarUint(dec)
        if (type === MessageType.sync) {
          const enc = encoding.createEncoder()
          encoding.writeVarUint(enc, MessageType.sync)
          const sub = syncProtocol.readSyncMessage(dec, enc, this.doc, REMOTE)
          if (encoding.length(enc) > 1) this.send(encoding.toUint8Array(enc))
          if (sub === syncProtocol.messageYjsSyncStep2) resolve()
        } else if (type === MessageType.durableAck) {
          const n = decoding.readVarUint(dec)
          while (this.inFlight.length && this.inFlight[0]!.nonce <= n) this.acked.push(this.inFlight.shift()!.id)
          this.onAck?.()
          this.pump()
        }
      })
    })
    this.synced.catch(() => {})
  }

  /** Starts writing (after sync); `onAck` is called after every confirmation. */
  start(onAck?: () => void): void {
    this.onAck = onAck ?? null
    this.writing = true
    this.pump()
  }

  /** Stops sending new chunks (what is in flight stays unconfirmed unless an ack arrives). */
  stop(): void {
    this.writing = false
  }

  /** Closes the socket (if still open) and frees the document. */
  async destroy(): Promise<void> {
    this.writing = false
    this.ws.terminate()
    await this.closed
    this.doc.destroy()
  }

  private send(frame: Uint8Array): void {
    if (this.ws.readyState === WebSocket.OPEN) this.ws.send(frame)
  }

  private pump(): void {
    while (this.writing && this.ws.readyState === WebSocket.OPEN && this.inFlight.length < this.window) {
      const id = `${this.opts.tag}.${this.sent++}`
      // Mostly keystroke-sized chunks; 2% are pastes of 8–64 KiB, whose commits span many WAL frames.
      const paste = this.opts.rand() < 0.02
      const len = Math.floor(this.opts.rand() * (this.fillerMax + 1))
      let filler = ''
      for (let i = 0; i < len; i++) filler += String.fromCharCode(97 + Math.floor(this.opts.rand() * 26))
      if (paste) filler = (filler || 'x').repeat(Math.ceil((8192 + this.opts.rand() * 57344) / (filler.length || 1)))
      this.text.insert(this.text.length, `<${id}|${filler}>`) // → its update is sent by the doc listener
      this.inFlight.push({ nonce: ++this.nonce, id })
      const enc = encoding.createEncoder()
      encoding.writeVarUint(enc, MessageType.durableQuery)
      encoding.writeVarUint(enc, this.nonce)
      this.send(encoding.toUint8Array(enc))
    }
  }
}

function syncFrame(subtype: number, payload: Uint8Array): Uint8Array {
  const enc = encoding.createEncoder()
  encoding.writeVarUint(enc, MessageType.sync)
  encoding.writeVarUint(enc, subtype)
  encoding.writeVarUint8Array(enc, payload)
  return encoding.toUint8Array(enc)
}

/**
 * Fetches `docId` through the server with a fresh client: its text, and
 * whether Yjs was left holding pending structs or deletes (updates whose
 * dependencies never arrived).
 */
export async function fetchThroughServer(wsUrl: string, docId: string, timeoutMs = 15_000): Promise<{ text: string; pending: boolean }> {
  const reader = new CrashWriter({ wsUrl, docId, tag: 'reader', rand: Math.random })
  const timer = setTimeout(() => void reader.destroy(), timeoutMs)
  try {
    await reader.synced
    const store = reader.doc.store
    return { text: reader.doc.getText('text').toString(), pending: store.pendingStructs !== null || store.pendingDs !== null }
  } finally {
    clearTimeout(timer)
    await reader.destroy()
  }
}
