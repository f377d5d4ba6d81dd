/**
 * The server's part in history (issue 11): a document's versions live in its
 * history companion (`<docId>.history`, an ordinary `/sync` document, see
 * `src/history/log.ts`). When such a room is opened the server applies the
 * retention policy itself, so the stored history stays bounded even if no
 * client ever prunes; the deletions are stored and relayed like any update.
 */
import type * as Y from 'yjs'
import { HISTORY_SUFFIX } from '../src/protocol/ids.ts'
import { pruneVersions } from '../src/history/log.ts'

/** True for the id of a history companion. */
export function isHistoryRoom(id: string): boolean {
  return id.endsWith(HISTORY_SUFFIX)
}

/** Applies the retention policy to a history companion's document at `now`; returns how many versions were dropped. */
export function pruneHistoryDoc(doc: Y.Doc, now = Date.now()): number {
  return pruneVersions(doc.getArray('versions'), now)
}
