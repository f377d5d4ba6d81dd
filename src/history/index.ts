/**
 * History's public face: `openHistory` gives an open document its version
 * list and the recorder that fills it. The list lives in IndexedDB on this
 * device, reaches its other tabs (`tab-sync.ts`), travels to peers over the
 * document's WebRTC mesh (`mesh-sync.ts`, no server needed) and is backed up like the document itself when there is
 * a server: through `/sync`, or for a private document sealed through its
 * own encrypted `/log` (`SessionCore.backupCompanion`). Loaded after first
 * paint; the panel (`HistoryPanel.svelte`) and the diff view load only when
 * opened.
 */
import { IndexeddbPersistence } from 'y-indexeddb'
import { historyDocId } from '../protocol/ids.ts'
import type { CompanionBackup, SessionCore } from '../session/core.ts'
import type { LogMeta } from '../private/log-link.ts'
import { HistoryLog } from './log.ts'
import { HistoryMeshSync } from './mesh-sync.ts'
import { Recorder, type RecorderOptions } from './recorder.ts'
import { HistoryTabSync } from './tab-sync.ts'

export { HistoryLog } from './log.ts'
export { HistoryMeshSync } from './mesh-sync.ts'
export { Recorder } from './recorder.ts'
export { restoreInEditor } from './restore.ts'
export { DEFAULT_RETENTION, prunable } from './retention.ts'
export type { Version } from './versions.ts'

/**
 * Entries in a private document's sealed history log before a device
 * compacts it. Each entry is a whole version while the server cannot drop
 * the ones retention deleted, so the log is compacted far sooner than a
 * text's (500): it stays within the retained versions plus 20, under the
 * server's per-document limit even for long texts, at the price of one
 * snapshot of the retained history per 20 versions.
 */
const PRIVATE_COMPACT_AFTER = 20

/** A document's history while it is open. */
export interface History {
  log: HistoryLog
  /** Null until `loaded`. */
  recorder: Recorder | null
  /** Resolves when the document and the versions stored on this device are loaded and recording has started. */
  loaded: Promise<void>
  /** The version list's link to peers over the WebRTC mesh, once `loaded`. */
  mesh: HistoryMeshSync | null
  /** The backup of the version list, once the session has a backup server. */
  backup: CompanionBackup | null
  /** Resolves with `backup` once it is known (null: no backup server). */
  whenBackup: Promise<CompanionBackup | null>
  /** Takes a last version if needed, then closes storage and network. */
  destroy(): Promise<void>
}

/** Opens the history of `core`'s document. */
export function openHistory(core: SessionCore, opts: RecorderOptions = {}): History {
  const log = new HistoryLog()
  const id = historyDocId(core.docId)
  const idb = new IndexeddbPersistence(id, log.doc)
  let tabs: HistoryTabSync | null = null
  let destroyed = false
  const history: History = {
    log,
    recorder: null,
    mesh: null,
    backup: null,
    whenBackup: Promise.resolve(null),
    loaded: Promise.resolve(),
    async destroy() {
      destroyed = true
      history.recorder?.flush()
      history.recorder?.destroy()
      history.mesh?.destroy()
      tabs?.destroy()
      history.backup?.destroy()
      await idb.destroy()
      log.doc.destroy()
    },
  }
  const isProviderOrigin = (origin: unknown) => origin !== null && origin !== undefined && (origin === idb || origin === history.backup?.origin || origin === tabs)
  // Recording starts once both local copies are loaded (so the first version's size of change is
  // measured against the last stored one); a read-only link makes no local changes, so it records nothing by itself.
  // Peers get the stored versions from then on too.
  history.loaded = Promise.all([core.loaded, idb.whenSynced.catch(() => undefined)]).then(() => {
    if (destroyed || core.destroyed) return
    history.recorder = new Recorder(core.text, log, core.awareness, opts)
    history.mesh = new HistoryMeshSync(log.doc, core.historyMesh, { forward: core.meshIncomplete, isProviderOrigin })
    tabs = new HistoryTabSync(id, log.doc)
  })
  history.whenBackup = Promise.all([core.ready, history.loaded])
    .then(() =>
      destroyed || core.destroyed
        ? null
        : core.backupCompanion(id, log.doc, {
            isPeerOrigin: (origin) => origin === history.mesh || origin === tabs,
            skipOrigin: (origin) => origin === idb,
            meta: idb.db ? (idb as unknown as LogMeta) : null,
            compactAfter: PRIVATE_COMPACT_AFTER,
          }),
    )
    .then((backup) => {
      if (!destroyed) return (history.backup = backup)
      backup?.destroy()
      return null
    })
    .catch((err) => {
      console.error('[murmur] history: the backup of the versions failed to start', err)
      return null
    })
  return history
}
