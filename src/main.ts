/** Entry point: global styles, then mount the app. */
import { mount } from 'svelte'
import './app.css'
import App from './App.svelte'

const target = document.getElementById('app')
if (!target) throw new Error('#app missing from index.html')

// Test hook: the document page sets `session`; elsewhere it is null.
window.__murmur ??= { session: null }

export default mount(App, { target })
