/**
 * History's public face: `openHistory` gives an open document its version
 * list (IndexedDB on this device, backed up through the session's `/sync`
 * server when it has one) and the recorder that fills it. Loaded after
 * first paint; the panel (`HistoryPanel.svelte`) and the diff view load
 * only when opened.
 */
import { IndexeddbPersistence } from 'y-indexeddb'
import { WebsocketProvider } from 'y-websocket'
import { historyDocId } from '../protocol/ids.ts'
import type { SessionCore } from '../session/core.ts'
import { HistoryLog } from './log.ts'
import { Recorder, type RecorderOptions } from './recorder.ts'

export { HistoryLog } from './log.ts'
export { Recorder } from './recorder.ts'
export { restoreInEditor } from './restore.ts'
export { DEFAULT_RETENTION, prunable } from './retention.ts'
export type { Version } from './versions.ts'

/** A document's history while it is open. */
export interface History {
  log: HistoryLog
  /** Null until `loaded`. */
  recorder: Recorder | null
  /** Resolves when the document and the versions stored on this device are loaded and recording has started. */
  loaded: Promise<void>
  /** The backup link of the version list, once the session has one. */
  backup: WebsocketProvider | null
  /** Takes a last version if needed, then closes storage and network. */
  destroy(): Promise<void>
}

/** Opens the history of `core`'s document. */
export function openHistory(core: SessionCore, opts: RecorderOptions = {}): History {
  const log = new HistoryLog()
  const idb = new IndexeddbPersistence(historyDocId(core.docId), log.doc)
  let destroyed = false
  const history: History = {
    log,
    recorder: null,
    backup: null,
    loaded: Promise.resolve(),
    async destroy() {
      destroyed = true
      history.recorder?.flush()
      history.recorder?.destroy()
      history.backup?.destroy()
      await idb.destroy()
      log.doc.destroy()
    },
  }
  // Recording starts once both local copies are loaded (so the first version's size of change is
  // measured against the last stored one); a read-only link makes no local changes, so it records nothing by itself.
  history.loaded = Promise.all([core.loaded, idb.whenSynced.catch(() => undefined)]).then(() => {
    if (!destroyed && !core.destroyed) history.recorder = new Recorder(core.text, log, core.awareness, opts)
  })
  void core.ready.then(() => {
    if (destroyed || core.destroyed) return
    const ws = core.websocket as (WebsocketProvider & { _WS?: typeof WebSocket }) | null
    if (ws) {
      history.backup = new WebsocketProvider(ws.serverUrl, historyDocId(core.docId), log.doc, {
        params: { ...ws.params },
        disableBc: true,
        ...(ws._WS ? { WebSocketPolyfill: ws._WS } : {}),
      })
    }
  })
  return history
}
