/**
 * The session layer's public face: the reactive `DocSession`, its
 * framework-free core, and the pure helpers the UI and tests use.
 */
export { DocSession } from './DocSession.svelte.ts'
export { SessionCore, type SessionFacts, type SessionOptions } from './core.ts'
export { DurabilityTracker, type DurabilityState } from './durability.ts'
export { loadConfig, resolveConfig, parseServerConfig, toWebSocketUrl, withToken, serverBase, type ServerConfig, type ResolvedConfig, type LoadedConfig, type ConfigSource } from './config.ts'
export { readRecent, touchRecent, setRecentTitle, removeRecent, type RecentDoc } from './recent.ts'
export { serverState, localLabel, peersLabel, serverLabel, shouldWarnBeforeUnload, formatTime, type LocalState, type ServerLink, type ServerState, type SignalingState } from './status.ts'
export { classifyPeers, loadIdentity, saveIdentity, randomIdentity, type PeerInfo, type PeerVia, type UserIdentity } from './presence.ts'
export { firstLine } from './title.ts'
export { tokenFromHash, shareLink } from './token.ts'
export { safeLocalStorage, memoryStorage, type KeyValueStorage } from './storage.ts'
