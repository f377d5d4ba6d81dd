/**
 * Work a WebSocket endpoint defers to the end of the event-loop turn
 * (`setImmediate`, which runs right after the poll phase that read the
 * messages).
 *
 * Writes: fan-out costs system calls, not encoding. A socket corked here keeps
 * everything sent to it during the turn (several relayed messages from one
 * read or from several sockets read in the same poll phase, acks released by
 * one commit) and writes it with one `writev` when the turn ends.
 *
 * Counts: prom-client hashes a counter's labels on every `inc`, so message
 * and byte counts are added up here and reported once per turn.
 */

/** A socket that can hold writes back (`net.Socket`). */
export interface Corkable {
  cork(): void
  uncork(): void
}

/** The endpoint's message and byte counters, labels bound. */
export interface TurnCounters {
  messagesIn: { inc(n: number): void }
  bytesIn: { inc(n: number): void }
  messagesOut: { inc(n: number): void }
  bytesOut: { inc(n: number): void }
}

/** One endpoint's per-turn batch. */
export interface TurnBatch {
  /** Holds `socket`'s writes until the end of this turn (idempotent within a turn). */
  cork(socket: Corkable): void
  /** Counts one received message of `bytes`. */
  received(bytes: number): void
  /** Counts `messages` sent, `bytes` in all. */
  sent(messages: number, bytes: number): void
}

/** Creates the per-turn batch of one endpoint, reporting to `counters`. */
export function turnBatch(counters: TurnCounters): TurnBatch {
  const corked = new Set<Corkable>()
  let messagesIn = 0
  let bytesIn = 0
  let messagesOut = 0
  let bytesOut = 0
  let scheduled = false

  const schedule = () => {
    if (scheduled) return
    scheduled = true
    setImmediate(end)
  }
  function end(): void {
    scheduled = false
    for (const socket of corked) socket.uncork()
    corked.clear()
    if (messagesIn) {
      counters.messagesIn.inc(messagesIn)
      counters.bytesIn.inc(bytesIn)
    }
    if (messagesOut) {
      counters.messagesOut.inc(messagesOut)
      counters.bytesOut.inc(bytesOut)
    }
    messagesIn = bytesIn = messagesOut = bytesOut = 0
  }

  return {
    cork(socket) {
      if (corked.has(socket)) return
      socket.cork()
      corked.add(socket)
      schedule()
    },
    received(bytes) {
      messagesIn++
      bytesIn += bytes
      schedule()
    },
    sent(messages, bytes) {
      messagesOut += messages
      bytesOut += bytes
      schedule()
    },
  }
}
