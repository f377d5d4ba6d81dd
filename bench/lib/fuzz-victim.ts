/**
 * The victim oracle: decides which frames may be sent to the victim room
 * without being able to change it legitimately.
 *
 * A mutated update is sometimes still a *valid* update (a flipped bit inside
 * inserted text is just different text), and the server must accept valid
 * updates. So "the victim is unchanged" is only a sound check if nothing sent
 * to it could change it when handled correctly. The filter applies every
 * candidate update with the reference implementation (Yjs, the same version
 * the server runs) to a fresh copy of the victim's content plus every update
 * already let through that Yjs is holding as pending, and lets the frame
 * through only if the visible state (text, state vector, delete set) stays
 * exactly the same. Updates that Yjs rejects (throws) are let through as long
 * as they changed nothing before throwing. Since every frame that reached the
 * victim leaves the reference unchanged — alone and together with all pending
 * ones — a correct server must end with the victim unchanged; a changed
 * victim is a server bug.
 */
import * as Y from 'yjs'
import { checkUpdate } from '../../server/updates.ts'
import { classifySync, type Session } from './fuzz-frames.ts'

/** Pending updates let through are capped so each check stays cheap. */
const MAX_PENDING = 64

function pendingKey(doc: Y.Doc): string {
  const { pendingStructs, pendingDs } = doc.store
  return (pendingStructs ? Buffer.from(pendingStructs.update).toString('base64') : '') + '|' + (pendingDs ? Buffer.from(pendingDs).toString('base64') : '')
}

/** A comparable fingerprint of a document: state vector, delete set, every root's content. */
export function fingerprint(doc: Y.Doc): string {
  const snap = Y.encodeSnapshot(Y.snapshot(doc))
  return Buffer.from(snap).toString('base64') + '|' + doc.getText('text').toString()
}

export function createVictimFilter(original: Uint8Array) {
  const base = new Y.Doc()
  Y.applyUpdate(base, original)
  const expected = fingerprint(base)
  base.destroy()
  // The victim as the reference sees it after every frame let through: its
  // content is `original` by construction; what it accumulates is held
  // (pending) structs and deletions. `held` are updates the server would hold
  // but Yjs rejected: they are replayed into every check as well.
  let shadow = new Y.Doc()
  Y.applyUpdate(shadow, original)
  const held: Uint8Array[] = []
  let accepted = 0
  let checked = 0
  let filtered = 0

  /** A fresh copy of the shadow, pending state included. */
  function copy(): Y.Doc {
    const doc = new Y.Doc()
    Y.applyUpdate(doc, Y.encodeStateAsUpdate(shadow))
    // Yjs keeps what it holds as v2 updates.
    const { pendingStructs, pendingDs } = shadow.store
    if (pendingStructs) Y.applyUpdateV2(doc, pendingStructs.update)
    if (pendingDs) Y.applyUpdateV2(doc, pendingDs)
    for (const u of held) {
      try {
        Y.applyUpdate(doc, u)
      } catch {
        // rejected before too
      }
    }
    return doc
  }

  /**
   * True when `update`, after everything let through so far, leaves the
   * victim unchanged. When the check itself cannot be made (Yjs throws while
   * copying a shadow that holds a hostile pending delete set, e.g. a length
   * its encoder refuses), the frame counts as possibly harmful and is not sent.
   */
  function harmless(update: Uint8Array): boolean {
    let doc: Y.Doc
    try {
      doc = copy()
    } catch {
      return false
    }
    let keep = false
    try {
      const pendingBefore = pendingKey(doc)
      const sv = new Map(Y.decodeStateVector(Y.encodeStateVector(doc)))
      let threw = false
      try {
        Y.applyUpdate(doc, update)
      } catch {
        // Yjs rejects it: fine, as long as nothing changed before the throw.
        threw = true
      }
      if (fingerprint(doc) !== expected) return false
      // Anything Yjs or the server would hold until its dependencies arrive
      // must be part of every later check: a later frame might complete it.
      if (pendingKey(doc) !== pendingBefore) {
        if (accepted >= MAX_PENDING) return false
        accepted++
        if (threw) held.push(update)
        // The checked copy is the new shadow (applying again could throw differently).
        shadow.destroy()
        shadow = doc
        keep = true
        return true
      }
      let serverHolds = false
      try {
        serverHolds = checkUpdate(update, sv) === 'missing'
      } catch {
        // malformed: the server rejects it outright
      }
      if (serverHolds) {
        if (held.length >= 16) return false
        held.push(update)
      }
      return true
    } finally {
      if (!keep) doc.destroy()
    }
  }

  return {
    /** Drops, in place, every frame of `session` that could change the victim; returns how many. */
    filter(session: Session): number {
      let dropped = 0
      session.frames = session.frames.filter((f) => {
        const { update } = classifySync(f.data)
        if (!update) return true
        checked++
        if (harmless(update)) return true
        dropped++
        filtered++
        return false
      })
      return dropped
    },
    get stats() {
      return { checked, filtered, pending: accepted + held.length }
    },
  }
}
