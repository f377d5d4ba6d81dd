/**
 * Bookkeeping for "is my work backed up on the server?".
 *
 * Every local change bumps `localChanges`. The client asks the server
 * `[durableQuery, nonce = localChanges]`; the server answers `[durableAck,
 * nonce]` once everything received on that socket before the query is
 * committed. Backed up = connected, synced, and an ack on *this* connection
 * with nonce ≥ localChanges. Acks are per socket, so a new connection starts
 * unacknowledged (its sync step may carry changes the server never had).
 */

/** A read-only view of a tracker's state. */
export interface DurabilityState {
  /** Local changes made in this session (the nonce of the next query). */
  localChanges: number
  /** Highest nonce acknowledged on the current connection, -1 when none yet. */
  acked: number
  /** Highest nonce ever acknowledged (any connection): that many local changes are durable. */
  durable: number
  /** Socket open. */
  connected: boolean
  /** y-websocket reported `sync` on the current connection. */
  synced: boolean
  /** Everything local is durable on the server. */
  backedUp: boolean
  /** Local changes not yet acknowledged as durable. */
  unbacked: number
  /** When the server last confirmed everything (ms since epoch), or null. */
  lastBackupAt: number | null
  /** When the oldest local change not yet confirmed durable was made (ms since epoch), or null when none is pending. */
  unbackedSince: number | null
}

/** Tracks local changes against durable acks. Pure: no I/O, time is passed in. */
export class DurabilityTracker {
  #localChanges = 0
  #acked = -1
  #durable = 0
  #connected = false
  #synced = false
  #lastBackupAt: number | null = null
  /** Times of the changes after `#durable`, oldest first (change number `#durable + 1 + i`). */
  #pendingTimes: number[] = []

  /** Records one local change made at `now`; returns the new count (the nonce to query with). */
  localChange(now = 0): number {
    this.#pendingTimes.push(now)
    return ++this.#localChanges
  }

  /** Seeds the last backup time remembered from an earlier visit (ignored once this session has its own). */
  restoreLastBackup(at: number): void {
    if (this.#lastBackupAt === null && Number.isFinite(at)) this.#lastBackupAt = at
  }

  /** The socket opened: acks from earlier connections no longer count. */
  connectionOpened(): void {
    this.#connected = true
    this.#synced = false
    this.#acked = -1
  }

  /** The socket closed. */
  connectionClosed(): void {
    this.#connected = false
    this.#synced = false
    this.#acked = -1
  }

  /** The connection finished its sync handshake; returns the nonce to query with now. */
  synced(): number {
    this.#synced = true
    return this.#localChanges
  }

  /**
   * Applies `[durableAck, nonce]`. Ignored when not connected or when the
   * nonce is larger than any query we can have sent. Returns true when the
   * state changed.
   */
  ack(nonce: number, now: number): boolean {
    if (!this.#connected || !Number.isInteger(nonce) || nonce < 0 || nonce > this.#localChanges || nonce <= this.#acked) return false
    this.#acked = nonce
    if (nonce > this.#durable) {
      this.#pendingTimes.splice(0, nonce - this.#durable)
      this.#durable = nonce
    }
    if (this.backedUp) this.#lastBackupAt = now
    return true
  }

  /** Local change count so far. */
  get localChanges(): number {
    return this.#localChanges
  }

  /** True when connected, synced and every local change is acknowledged as durable. */
  get backedUp(): boolean {
    return this.#connected && this.#synced && this.#acked >= this.#localChanges
  }

  /** Local changes never acknowledged as durable on any connection. */
  get unbacked(): number {
    return this.#localChanges - this.#durable
  }

  /** Time of the last full backup, or null. */
  get lastBackupAt(): number | null {
    return this.#lastBackupAt
  }

  /** When the oldest change not yet confirmed durable was made, or null when everything is. */
  get unbackedSince(): number | null {
    return this.#pendingTimes.length > 0 ? this.#pendingTimes[0] : null
  }

  /** A snapshot of everything above. */
  state(): DurabilityState {
    return {
      localChanges: this.#localChanges,
      acked: this.#acked,
      durable: this.#durable,
      connected: this.#connected,
      synced: this.#synced,
      backedUp: this.backedUp,
      unbacked: this.unbacked,
      lastBackupAt: this.#lastBackupAt,
      unbackedSince: this.unbackedSince,
    }
  }
}
