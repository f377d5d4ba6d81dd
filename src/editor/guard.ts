/**
 * A crashing plugin must not take the editor down: CodeMirror reports
 * exceptions from plugins and listeners to `exceptionSink`, where we log them
 * (once per message) instead of rethrowing.
 */
import { EditorView } from '@codemirror/view'
import type { Extension } from '@codemirror/state'

/** Logs editor-internal exceptions, deduplicated by message. */
export function crashGuard(log: (msg: string, err: unknown) => void = (m, e) => console.error(m, e)): Extension {
  const seen = new Set<string>()
  return EditorView.exceptionSink.of((err: unknown) => {
    const key = err instanceof Error ? err.message : String(err)
    if (seen.has(key)) return
    seen.add(key)
    log('[murmur] editor extension failed (disabled, editor keeps running):', err)
  })
}
