/**
 * Glare avoidance for y-webrtc.
 *
 * y-webrtc opens a connection, as the offering side, to every peer whose
 * announcement it hears. When two peers hear each other at the same moment
 * (both join together, or both come back when signaling does), both offer.
 * y-webrtc's tie-break then passes one side's offer into a connection that
 * has already made its own: browsers roll the local offer back and answer,
 * but simple-peer keeps listening on the data channel it created while the
 * other side sends on the other channel, so the pair shows as connected and
 * exchanges nothing, forever. (libwebrtc builds without implicit rollback,
 * such as @roamhq/wrtc, fail instead and the pair never connects.)
 *
 * The rule here removes the race: of two peers, only the one whose peer id
 * sorts higher offers. A lower peer that starts offering drops that
 * connection at once, before any offer is made; y-webrtc then announces the
 * lower peer again, and the higher peer, hearing it, offers.
 */

/** The parts of a y-webrtc room this module reads. */
export interface GlareRoom {
  peerId: string
  webrtcConns: Map<string, { peer: { initiator?: boolean }; destroy(): void }>
}

/**
 * Call from y-webrtc's `peers` event with its `added` ids: drops every new
 * connection this peer started towards a peer with a higher id. Returns the
 * ids it dropped.
 */
export function yieldToHigherPeers(room: GlareRoom, added: readonly string[]): string[] {
  const dropped: string[] = []
  for (const id of added) {
    const conn = room.webrtcConns.get(id)
    if (conn?.peer.initiator && id > room.peerId) {
      conn.destroy()
      dropped.push(id)
    }
  }
  return dropped
}
