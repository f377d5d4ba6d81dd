/**
 * Page-wide session state: the local user and the factory that opens a
 * document with the browser's real storage, config and token.
 */
import { wasCreatedHere } from './created.ts'
import { DocSession } from './DocSession.svelte.ts'
import { getConfig } from './runtime.ts'
import { safeLocalStorage } from './storage.ts'
import { tokenFromHash } from './token.ts'
import { user } from './me.svelte.ts'

/** Opens `docId` with the page's config, the token from `hash`, and the current user. */
export function openSession(docId: string, hash: string): DocSession {
  const token = tokenFromHash(hash)
  return new DocSession(docId, {
    config: getConfig(token),
    reloadConfig: () => getConfig(token),
    createdHere: wasCreatedHere(docId),
    token,
    identity: user.identity,
    recent: safeLocalStorage(),
  })
}
