/**
 * Presence: who you are (name + colour, kept in localStorage) and who else is
 * here (awareness states classified by how they reach us). Pure functions;
 * awareness states from other peers are untrusted input and are sanitized.
 */
import type { KeyValueStorage } from './storage.ts'

/** What a user publishes in awareness under `user` (the shape y-codemirror.next reads). */
export interface UserIdentity {
  /** Display name. */
  name: string
  /** Caret colour, `#rrggbb`. */
  color: string
  /** Selection background, `#rrggbbaa`. */
  colorLight: string
}

/** How a peer reaches us: a WebRTC connection, another tab of this browser, the backup server, or only through another peer. */
export type PeerVia = 'direct' | 'browser' | 'server' | 'relay'

/** One remote participant, ready to render. */
export interface PeerInfo {
  /** Yjs client id (awareness key). */
  clientId: number
  /** Sanitized display name. */
  name: string
  /** Sanitized `#rrggbb`. */
  color: string
  /** How this peer reaches us. */
  via: PeerVia
}

/** localStorage key of the identity. */
export const IDENTITY_KEY = 'murmur:user'

/** Longest accepted name. */
export const NAME_MAX = 40

/** Caret colours that stay readable on white. */
export const PALETTE = ['#d9480f', '#e8590c', '#c2255c', '#a61e4d', '#9c36b5', '#6741d9', '#3b5bdb', '#1971c2', '#0c8599', '#099268', '#2b8a3e', '#5c940d', '#e67700', '#862e9c'] as const

const ADJECTIVES = ['Amber', 'Brisk', 'Calm', 'Deft', 'Eager', 'Fern', 'Gentle', 'Hazel', 'Ivory', 'Jade', 'Keen', 'Lucid', 'Mellow', 'Nimble', 'Olive', 'Plum', 'Quiet', 'Rustic', 'Sunny', 'Teal', 'Umber', 'Vivid', 'Witty', 'Zesty']
const ANIMALS = ['Otter', 'Heron', 'Lynx', 'Finch', 'Badger', 'Panda', 'Gecko', 'Koala', 'Marten', 'Newt', 'Orca', 'Puffin', 'Quail', 'Raven', 'Stoat', 'Tapir', 'Wren', 'Yak', 'Ibis', 'Moth']

const HEX = /^#[0-9a-f]{6}$/i

/** `#rrggbb` → the same colour at ~20% opacity (`#rrggbb33`), for selection backgrounds. */
export function lightColor(color: string): string {
  return (HEX.test(color) ? color : PALETTE[0]) + '33'
}

/** A fresh random identity, e.g. "Calm Otter" in a palette colour. */
export function randomIdentity(rand: () => number = Math.random): UserIdentity {
  const pick = <T>(xs: readonly T[]) => xs[Math.floor(rand() * xs.length) % xs.length]
  const color = pick(PALETTE)
  return { name: `${pick(ADJECTIVES)} ${pick(ANIMALS)}`, color, colorLight: lightColor(color) }
}

/** Trims and caps a name; control characters are removed. Empty stays empty. */
export function cleanName(name: unknown): string {
  if (typeof name !== 'string') return ''
  // eslint-disable-next-line no-control-regex
  return name.replace(/[\u0000-\u001f\u007f]/g, '').trim().slice(0, NAME_MAX)
}

/** `color` when it is `#rrggbb`, else `fallback`. Keeps peer-supplied values out of style attributes. */
export function cleanColor(color: unknown, fallback: string = PALETTE[7]): string {
  return typeof color === 'string' && HEX.test(color) ? color.toLowerCase() : fallback
}

/** Loads the identity from storage, creating and storing a random one on first visit. */
export function loadIdentity(storage: KeyValueStorage, rand: () => number = Math.random): UserIdentity {
  try {
    const raw = JSON.parse(storage.getItem(IDENTITY_KEY) ?? 'null') as Partial<UserIdentity> | null
    const name = cleanName(raw?.name)
    if (raw && name && HEX.test(raw.color ?? '')) {
      const color = cleanColor(raw.color)
      return { name, color, colorLight: lightColor(color) }
    }
  } catch {
    // corrupt: replace below
  }
  const fresh = randomIdentity(rand)
  saveIdentity(storage, fresh)
  return fresh
}

/** Stores the identity (name cleaned; an empty name is not stored). */
export function saveIdentity(storage: KeyValueStorage, identity: UserIdentity): void {
  const name = cleanName(identity.name)
  if (!name) return
  try {
    storage.setItem(IDENTITY_KEY, JSON.stringify({ name, color: cleanColor(identity.color) }))
  } catch {
    // disabled storage: identity lasts for this page only
  }
}

/**
 * Rewrites a remote awareness state's `user` in place so that every consumer
 * (the peer list and y-codemirror.next's carets, which puts `color` and
 * `colorLight` into style attributes) only ever sees a clean name and
 * `#rrggbb`/`#rrggbbaa` colours.
 */
export function sanitizeRemoteState(state: Record<string, unknown> | undefined | null): void {
  if (!state || typeof state !== 'object') return
  const u = state.user
  if (u === undefined) return
  if (typeof u !== 'object' || u === null) {
    delete state.user
    return
  }
  const user = u as Record<string, unknown>
  const color = cleanColor(user.color)
  state.user = { name: cleanName(user.name) || 'Anonymous', color, colorLight: lightColor(color) }
  if (state.peerId !== undefined && typeof state.peerId !== 'string') delete state.peerId
}

/** What is known about connections when classifying peers. */
export interface PeerRoutes {
  /** y-webrtc peer ids with an open WebRTC connection. */
  direct: ReadonlySet<string>
  /** y-webrtc peer ids of other tabs of this browser (BroadcastChannel). */
  browser: ReadonlySet<string>
  /** Awareness client ids whose state arrived over the backup server. */
  server: ReadonlySet<number>
}

/**
 * Lists remote participants from awareness `states` (excluding `selfId` and
 * states without `user`), labelled by route: direct beats browser beats
 * server; a peer known only second-hand through another peer is `relay`.
 * Sorted by name, then client id, so the order is stable.
 */
export function classifyPeers(states: ReadonlyMap<number, Record<string, unknown>>, selfId: number, routes: PeerRoutes): PeerInfo[] {
  const out: PeerInfo[] = []
  for (const [clientId, state] of states) {
    if (clientId === selfId || !state || typeof state.user !== 'object' || state.user === null) continue
    const user = state.user as Record<string, unknown>
    const peerId = typeof state.peerId === 'string' ? state.peerId : null
    const via: PeerVia =
      peerId && routes.direct.has(peerId) ? 'direct' : peerId && routes.browser.has(peerId) ? 'browser' : routes.server.has(clientId) ? 'server' : 'relay'
    out.push({ clientId, name: cleanName(user.name) || 'Anonymous', color: cleanColor(user.color), via })
  }
  return out.sort((a, b) => a.name.localeCompare(b.name) || a.clientId - b.clientId)
}

/** True when two peer lists render the same. */
export function samePeers(a: readonly PeerInfo[], b: readonly PeerInfo[]): boolean {
  return a.length === b.length && a.every((p, i) => p.clientId === b[i].clientId && p.name === b[i].name && p.color === b[i].color && p.via === b[i].via)
}
