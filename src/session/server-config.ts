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

let configPromise: Promise<LoadedConfig> | null = null

/**
 * The server configuration, fetched once per page. A failed fetch (served
 * from cache or nothing) is retried the next time a document is opened.
 */
export function getConfig(): Promise<LoadedConfig> {
  if (!configPromise) {
    const p = loadConfig({ base: currentServerBase(), fetch: (...a) => fetch(...a), storage: safeLocalStorage() })
    configPromise = p
    void p.then((c) => {
      if (c.source !== 'server' && configPromise === p) configPromise = null
    })
  }
  return configPromise
}
