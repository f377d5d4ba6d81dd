/**
 * Where the server is for this page, and its configuration fetched once per
 * page. No Yjs here: the app entry starts this fetch on a document link
 * before the document code has arrived.
 */
import { loadConfig, serverBase, type LoadedConfig } from './config.ts'
import { safeLocalStorage } from './storage.ts'

/** The server base URL for this build/page. */
export function currentServerBase(): string {
  return serverBase(import.meta.env.VITE_MURMUR_SERVER, location.origin)
}

const configPromises = new Map<string, Promise<LoadedConfig>>()

/**
 * The server configuration for an access token (or none), fetched once per
 * page and token. A failed fetch (served from cache or nothing) is retried the
 * next time a document is opened.
 */
export function getConfig(token: string | null = null): Promise<LoadedConfig> {
  const key = token ?? ''
  let p = configPromises.get(key)
  if (!p) {
    const loading = loadConfig({ base: currentServerBase(), fetch: (...a) => fetch(...a), storage: safeLocalStorage(), token })
    configPromises.set(key, (p = loading))
    void loading.then((c) => {
      if (c.source !== 'server' && configPromises.get(key) === loading) configPromises.delete(key)
    })
  }
  return p
}
