/**
 * Cross-instance fan-out: what one murmur instance accepted (document
 * updates after commit, awareness, signaling messages) reaches the other
 * instances serving the same channel. A single instance uses `localFanout`,
 * which publishes nowhere; `--redis` swaps in `server/fanout/redis.ts`.
 */

/** Origin of Yjs updates and awareness changes that came from another instance: applied and relayed, never stored or published again. */
export const REMOTE_ORIGIN = Symbol('murmur: another instance')

/** A subscription to one channel; `close()` leaves it (idempotent). */
export interface FanoutSubscription {
  close(): void
}

/** Handlers of one subscription. */
export interface FanoutHandlers {
  /** A payload another instance published on the channel (never this instance's own), and that instance's id. */
  message(payload: Buffer, from: string): void
  /** The link to the other instances came back after a gap: messages may have been missed, so catch up (e.g. reload from storage). */
  resync?(): void
}

/** The fan-out between instances. */
export interface Fanout {
  /** True when other instances may exist (rooms then catch up from storage before compacting). */
  readonly shared: boolean
  /** Subscribes to `channel`; several subscriptions to one channel are fine. */
  subscribe(channel: string, handlers: FanoutHandlers): FanoutSubscription
  /** Sends `payload` to every other instance subscribed to `channel`; dropped (not queued) while the link is down. */
  publish(channel: string, payload: Uint8Array): void
  /**
   * Calls `listener` with the id of an instance that was heard and has then
   * been silent for longer than its heartbeat allows (killed, or cut off from
   * Redis): what it spoke for is gone. Returns a function that stops listening.
   */
  onInstanceGone(listener: (from: string) => void): () => void
  /** Whether the link to the other instances is up (for `/healthz`). */
  healthy(): boolean
  /** Leaves every channel and disconnects. */
  close(): Promise<void>
}

/** The single-instance fan-out: nobody else to tell. */
export const localFanout: Fanout = {
  shared: false,
  subscribe: () => ({ close() {} }),
  publish() {},
  onInstanceGone: () => () => {},
  healthy: () => true,
  close: async () => {},
}
