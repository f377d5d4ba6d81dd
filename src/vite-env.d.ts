/// <reference types="svelte" />
/// <reference types="vite/client" />
/// <reference types="vite-plugin-pwa/client" />

interface ImportMetaEnv {
  /** Base URL of the murmur server when the client is hosted elsewhere (build time). */
  readonly VITE_MURMUR_SERVER?: string
}

interface ImportMeta {
  readonly env: ImportMetaEnv
}

interface Window {
  /** Test hook: the open document session (null on other pages). */
  __murmur?: { session: import('./session/DocSession.svelte.ts').DocSession | null }
}
