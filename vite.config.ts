import { defineConfig } from 'vitest/config'
import { svelte } from '@sveltejs/vite-plugin-svelte'
import { VitePWA } from 'vite-plugin-pwa'
import { precompress } from './build/precompress.ts'
import { preloadDynamic } from './build/preload.ts'

const devServer = process.env.MURMUR_DEV_SERVER ?? 'http://localhost:4444'

export default defineConfig({
  plugins: [
    svelte(),
    // Offline app shell: precache the built client; every page path (no file extension) falls back to it,
    // so /, /d/<id> and the app's own not-found page work offline.
    // Server endpoints are never answered by the service worker.
    VitePWA({
      strategies: 'generateSW',
      registerType: 'autoUpdate',
      injectRegister: false, // src/offline-shell.ts registers it once the page has shown its content
      includeManifestIcons: false, // public/ files are already in globPatterns
      manifest: {
        name: 'murmur',
        short_name: 'murmur',
        description: 'Local-first, peer-to-peer collaborative text editor.',
        start_url: '/',
        scope: '/',
        display: 'standalone',
        background_color: '#fbfaf8',
        theme_color: '#fbfaf8',
        icons: [
          { src: '/icon-192.png', sizes: '192x192', type: 'image/png' },
          { src: '/icon-512.png', sizes: '512x512', type: 'image/png' },
          { src: '/favicon.svg', sizes: 'any', type: 'image/svg+xml' },
        ],
      },
      workbox: {
        globPatterns: ['**/*.{js,css,html,svg,png,ico,webmanifest}'],
        navigateFallback: '/index.html',
        navigateFallbackAllowlist: [/^\/(?!assets\/)[^.]*$/],
        navigateFallbackDenylist: [/^\/sync/, /^\/log\//, /^\/signal/, /^\/config\.json/, /^\/healthz/, /^\/metrics/],
        cleanupOutdatedCaches: true,
        clientsClaim: true,
        skipWaiting: true,
        maximumFileSizeToCacheInBytes: 5 * 1024 * 1024,
      },
    }),
    // A document link fetches the document page's code together with the entry, not after it.
    preloadDynamic(['/src/routes/DocPage.svelte']),
    // Brotli + gzip siblings of every text file, served by Accept-Encoding (server/encoding.ts).
    precompress(),
  ],
  build: { outDir: 'dist', emptyOutDir: true, target: 'es2022' },
  // `npx vite` (dev): forward the server endpoints to a locally running murmur server
  // (MURMUR_DEV_SERVER, default http://localhost:4444) so the dev client syncs too.
  server: {
    port: 5173,
    proxy: {
      '/config.json': devServer,
      '/signal': { target: devServer.replace(/^http/, 'ws'), ws: true },
      '/sync': { target: devServer.replace(/^http/, 'ws'), ws: true },
    },
  },
  test: {
    // y-indexeddb leaves the rejection of a failed IndexedDB open unhandled (a browser only logs it);
    // test/client/session.test.ts injects exactly that failure, marked with this text.
    onUnhandledError: (err) => (String(err?.message).includes('murmur test: IndexedDB refused') ? false : undefined),
    projects: [
      {
        extends: true,
        test: {
          name: 'unit',
          include: ['test/**/*.test.ts'],
          exclude: ['test/e2e/**', 'node_modules/**'],
          // The slowest test without its own timeout takes ~3 s idle and ~9 s on a loaded 2-core
          // machine (measured); 30 s leaves 3x for a slower CI box, yet a real slowdown still fails.
          testTimeout: 30_000,
          hookTimeout: 30_000,
        },
      },
      {
        extends: true,
        test: {
          name: 'e2e',
          include: ['test/e2e/**/*.test.ts'],
          testTimeout: 180_000,
          hookTimeout: 120_000,
          fileParallelism: false,
        },
      },
    ],
  },
})
