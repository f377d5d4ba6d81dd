/** Entry point: global styles, then mount the app. */
import { mount } from 'svelte'
import './app.css'
import App from './App.svelte'
import { registerOfflineShell } from './offline-shell.ts'
import { getConfig } from './session/server-config.ts'
import { tokenFromHash } from './session/token.ts'

const target = document.getElementById('app')
if (!target) throw new Error('#app missing from index.html')

// Test hook: the document page sets `session`; elsewhere it is null.
window.__murmur ??= { session: null }

// A document link: ask for the server's config now, while the document code is still arriving.
if (location.pathname.startsWith('/d/')) void getConfig(tokenFromHash(location.hash))
registerOfflineShell()

export default mount(App, { target })
