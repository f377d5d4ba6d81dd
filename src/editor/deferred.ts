/**
 * An extension whose code arrives after the editor is shown: it starts as an
 * empty compartment and is filled in once its module has loaded. A module
 * that fails to load (offline without the service worker's copy) leaves the
 * editor working as plain text; the error is logged.
 */
import { Compartment, type Extension } from '@codemirror/state'
import type { EditorView } from '@codemirror/view'

/** A placeholder extension and the function that loads the real one into a view. */
export interface Deferred {
  extension: Extension
  load(view: EditorView): Promise<void>
}

/** Wraps `load` (e.g. `() => import('./extras.ts').then((m) => m.editorExtras())`) as a `Deferred`. */
export function deferred(what: string, load: () => Promise<Extension>): Deferred {
  const slot = new Compartment()
  return {
    extension: slot.of([]),
    async load(view) {
      try {
        const ext = await load()
        if (view.dom.isConnected) view.dispatch({ effects: slot.reconfigure(ext) }) // not after destroy()
      } catch (err) {
        console.error(`[murmur] could not load ${what}`, err)
      }
    },
  }
}
