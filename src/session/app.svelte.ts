/**
 * Page-wide session state: the local user and the factory that opens a
 * document with the browser's real storage, config and token.
 */
import { wasCreatedHere } from './created.ts'
import { DocSession } from './DocSession.svelte.ts'
import { getConfig } from './server-config.ts'
import { safeLocalStorage } from './storage.ts'
import { tokenFromHash } from './token.ts'
import { user } from './me.svelte.ts'
import { keyFromHash } from '../private/key.ts'
import { rememberedKey, rememberKey } from '../private/key-store.ts'

/**
 * Opens `docId` with the page's config, the token from `hash`, and the current
 * user. A private document's key comes from `hash` (and is remembered on this
 * device) or, for a link without it, from what this device remembers.
 */
export function openSession(docId: string, hash: string): DocSession {
  const token = tokenFromHash(hash)
  const storage = safeLocalStorage()
  const fromLink = keyFromHash(hash)
  if (fromLink) rememberKey(storage, docId, fromLink)
  const linkKey = fromLink ?? rememberedKey(storage, docId)
  return new DocSession(docId, {
    linkKey,
    config: getConfig(token),
    reloadConfig: () => getConfig(token),
    createdHere: wasCreatedHere(docId),
    token,
    identity: user.identity,
    recent: safeLocalStorage(),
  })
}
