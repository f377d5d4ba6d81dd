/**
 * Has this document reached this device yet? A link opened for the first
 * time holds nothing locally, and an empty editor there would look like a
 * new document (text typed into it lands as a stray first line of the real
 * one). Pure state: `core.ts` feeds it events, the document page shows it.
 */

/**
 * `done`: the text is here (it was on this device, was created here, arrived
 * from the server or a peer, or the user chose to start writing).
 * `waiting`: nothing on this device and no server or peer has answered yet.
 * `empty`: a server or peer answered and no one has written anything under
 * this link (often a truncated or mistyped link).
 */
export type FirstSync = 'done' | 'waiting' | 'empty'

/** What can move the first-sync state. */
export type FirstSyncEvent =
  /** The document now holds content that came from storage, the server or a peer. */
  | { type: 'content' }
  /** The backup server, or every connected peer, finished syncing; `empty`: nothing was written under this id. */
  | { type: 'answered'; empty: boolean }
  /** The user wrote into the document. */
  | { type: 'edit' }
  /** The user chose to start writing without waiting. */
  | { type: 'start' }

/** The state right after this device's copy loaded: `hasContent` means anything was stored; `createdHere` means this device just made the id. */
export function initialFirstSync(hasContent: boolean, createdHere: boolean): FirstSync {
  return hasContent || createdHere ? 'done' : 'waiting'
}

/** The state after `event`. `done` is final. */
export function nextFirstSync(state: FirstSync, event: FirstSyncEvent): FirstSync {
  if (state === 'done') return 'done'
  if (event.type === 'answered') return event.empty ? 'empty' : 'done'
  return 'done'
}
