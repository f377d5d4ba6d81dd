import WebSocket from 'ws'
import { SessionCore, type SessionFacts, type SessionOptions } from '../../src/session/core.ts'
import { loadConfig } from '../../src/session/config.ts'
import { memoryStorage } from '../../src/session/storage.ts'
import type { ServerProcess } from './server.ts'

const identity = { name: 'Backup tester', color: '#2b8a3e', colorLight: '#2b8a3e33' }

/**
 * A client session (backup path only, no WebRTC) against a real server; the
 * caller imports `fake-indexeddb/auto` first and destroys it.
 */
export function backupSession(server: ServerProcess, docId: string, opts: Partial<SessionOptions> = {}): SessionCore {
  return new SessionCore(docId, {
    config: loadConfig({ base: server.url, fetch, storage: memoryStorage() }),
    identity,
    webrtc: false,
    WebSocketPolyfill: WebSocket,
    ...opts,
  })
}

/** Resolves with the facts once `check` holds, re-checking on every change (no polling). */
export function untilFacts(s: SessionCore, check: (f: SessionFacts) => boolean, what: string, ms = 20_000): Promise<SessionFacts> {
  if (check(s.facts)) return Promise.resolve(s.facts)
  return new Promise((res, rej) => {
    const timer = setTimeout(() => (off(), rej(new Error(`timed out waiting for ${what}; facts: ${JSON.stringify(s.facts)}`))), ms)
    const off = s.onChange((f) => {
      if (check(f)) {
        clearTimeout(timer)
        off()
        res(f)
      }
    })
  })
}

/** `GET /healthz` status, 0 when it does not answer within 5 s. */
export function healthz(server: ServerProcess): Promise<number> {
  return fetch(`${server.url}/healthz`, { signal: AbortSignal.timeout(5000) }).then((r) => r.status, () => 0)
}
