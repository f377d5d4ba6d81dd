/**
 * "Where is my work?" — pure derivations from raw session facts to the
 * states and words the status bar shows.
 */

/** This device's copy: IndexedDB still loading, writing, all stored, or not available at all. */
export type LocalState = 'loading' | 'saving' | 'saved' | 'unavailable'

/** The backup connection itself: not configured, trying, synced, or not reachable. */
export type ServerLink = 'off' | 'connecting' | 'synced' | 'offline'

/** What the status bar shows for the server (the `data-state` of `[data-testid=status-server]`). */
export type ServerState = 'off' | 'connecting' | 'backed-up' | 'not-backed-up' | 'offline'

/** Signaling (finding peers): no servers configured, first attempt under way, at least one connected, every server failed at least once (still retrying), WebRTC unavailable in this browser, or a read-only link (no mesh: the server relays). */
export type SignalingState = 'none' | 'connecting' | 'connected' | 'unreachable' | 'no-webrtc' | 'read-only'

/** Combines the link state with the durability tracker's verdict. */
export function serverState(link: ServerLink, backedUp: boolean): ServerState {
  if (link === 'synced') return backedUp ? 'backed-up' : 'not-backed-up'
  return link
}

/** `hh:mm:ss` in local time, preceded by the date (`2026-11-29 hh:mm:ss`) when `ms` is not on the same day as `now`. */
export function formatTime(ms: number, now: number = ms): string {
  const d = new Date(ms)
  const n = new Date(now)
  const p = (x: number) => String(x).padStart(2, '0')
  const time = `${p(d.getHours())}:${p(d.getMinutes())}:${p(d.getSeconds())}`
  const sameDay = d.getFullYear() === n.getFullYear() && d.getMonth() === n.getMonth() && d.getDate() === n.getDate()
  return sameDay ? time : `${d.getFullYear()}-${p(d.getMonth() + 1)}-${p(d.getDate())} ${time}`
}

/** Status-bar words for this device's copy. */
export function localLabel(local: LocalState): string {
  switch (local) {
    case 'loading':
      return 'Opening from this device…'
    case 'saving':
      return 'Saving on this device…'
    case 'saved':
      return 'Saved on this device'
    case 'unavailable':
      return 'Not saved on this device (browser storage unavailable)'
  }
}

/** Status-bar words for peers: the direct WebRTC count always appears as a number. */
export function peersLabel(direct: number, browserTabs: number, signaling: SignalingState): string {
  const base = `${direct} ${direct === 1 ? 'peer' : 'peers'} connected`
  const tabs = browserTabs > 0 ? ` · ${browserTabs} other ${browserTabs === 1 ? 'tab' : 'tabs'}` : ''
  const sig =
    signaling === 'none'
      ? ' (this browser only)'
      : signaling === 'no-webrtc'
        ? ' (WebRTC unavailable in this browser)'
        : signaling === 'read-only'
          ? ' (read-only link: changes arrive through the server)'
          : direct > 0
            ? ''
            : signaling === 'connecting'
              ? ' (looking for peers…)'
              : signaling === 'unreachable'
                ? ' (server not reachable: cannot look for peers)'
                : ''
  return base + tabs + sig
}

/** Status-bar words for the backup server. `detail` explains an `offline` state when known; `now` decides whether the last backup needs its date. */
export function serverLabel(state: ServerState, lastBackupAt: number | null, detail?: string | null, now: number = Date.now()): string {
  const last = lastBackupAt !== null ? ` · last backup ${formatTime(lastBackupAt, now)}` : ''
  switch (state) {
    case 'off':
      return 'Backup off'
    case 'connecting':
      return 'Backup: connecting…' + last
    case 'backed-up':
      return 'Backed up' + last
    case 'not-backed-up':
      return 'Not yet backed up' + last
    case 'offline':
      return `Backup server not reachable${detail ? ` (${detail})` : ''}` + last
  }
}

/** Words for edits the server has not confirmed yet, by when they began (the change count is in Yjs updates, which mean nothing to a person). */
export function unbackedLabel(unbackedSince: number | null, now: number = Date.now()): string {
  if (unbackedSince === null) return 'Every edit is confirmed by the backup server'
  return `Edits since ${formatTime(unbackedSince, now)} are not yet confirmed by the backup server`
}

/** Inputs of `shouldWarnBeforeUnload`. */
export interface UnloadFacts {
  /** Local changes never confirmed durable by the server. */
  unbacked: number
  /** Open direct WebRTC connections. */
  peers: number
  /** Server confirmed everything. */
  backedUp: boolean
}

/** True when leaving now would leave local changes nowhere but this device. */
export function shouldWarnBeforeUnload(f: UnloadFacts): boolean {
  return f.unbacked > 0 && f.peers === 0 && !f.backedUp
}
