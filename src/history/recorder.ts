/**
 * Takes versions of a text automatically: once edits pause for `idleMs`
 * after a burst, during long bursts at least every `maxEveryMs`, and on
 * `flush()` (the tab is closing) — each time only if this device made
 * changes since its last version, so peers don't all record the same one.
 * `save()` takes one by hand. Each version names who edited since the
 * previous one: the presence names of the clients whose edits arrived.
 */
import type * as Y from 'yjs'
import type { Awareness } from 'y-protocols/awareness'
import type { HistoryLog } from './log.ts'
import { changeSize } from './diff.ts'
import { newVersionId, VERSION_LIMITS, type Version } from './versions.ts'

/** Options of a `Recorder`. */
export interface RecorderOptions {
  /** Quiet time after edits before a version is taken (ms, default 20 s). */
  idleMs?: number
  /** During continuous editing, a version at least this often (ms, default 3 min). */
  maxEveryMs?: number
  /** Clock, for tests. */
  now?: () => number
  /** Apply retention after each version (default true). */
  prune?: boolean
}

/** Records versions of `text` into `log`. Call `destroy()` when the document closes. */
export class Recorder {
  readonly #text: Y.Text
  readonly #log: HistoryLog
  readonly #awareness: Awareness | null
  readonly #idleMs: number
  readonly #maxEveryMs: number
  readonly #now: () => number
  readonly #prune: boolean
  #editors = new Set<string>()
  #localChanges = false
  #burstStart: number | null = null
  #timer: ReturnType<typeof setTimeout> | null = null

  constructor(text: Y.Text, log: HistoryLog, awareness: Awareness | null, opts: RecorderOptions = {}) {
    this.#text = text
    this.#log = log
    this.#awareness = awareness
    this.#idleMs = opts.idleMs ?? 20_000
    this.#maxEveryMs = opts.maxEveryMs ?? 180_000
    this.#now = opts.now ?? Date.now
    this.#prune = opts.prune ?? true
    text.doc!.on('afterTransaction', this.#onTransaction)
  }

  /** This device changed the text since its last version. */
  get pending(): boolean {
    return this.#localChanges
  }

  /** Takes a version now (by hand), optionally named. Returns it. */
  save(name = ''): Version {
    return this.#take(true, name)
  }

  /** Takes a version if this device changed the text since the last one (the tab is closing). */
  flush(): Version | null {
    return this.#localChanges ? this.#take(false, '') : null
  }

  destroy(): void {
    this.#clearTimer()
    this.#text.doc!.off('afterTransaction', this.#onTransaction)
  }

  #onTransaction = (tr: Y.Transaction) => {
    if (!tr.changed.has(this.#text as never)) return
    this.#noteEditors(tr)
    if (tr.local) this.#localChanges = true
    if (!this.#localChanges) return
    const now = this.#now()
    this.#burstStart ??= now
    if (now - this.#burstStart >= this.#maxEveryMs) {
      this.#take(false, '')
      return
    }
    this.#clearTimer()
    this.#timer = setTimeout(() => this.flush(), this.#idleMs)
  }

  // Only present clients have names, so only their clocks are compared: O(people present), not
  // O(every client that ever edited), on every keystroke.
  #noteEditors(tr: Y.Transaction) {
    const states = this.#awareness?.getStates()
    if (!states) return
    const nameOf = (client: number) => {
      const name = (states.get(client) as { user?: { name?: unknown } } | undefined)?.user?.name
      return typeof name === 'string' && name ? name : null
    }
    let found = false
    for (const client of states.keys()) {
      if ((tr.beforeState.get(client) ?? 0) === (tr.afterState.get(client) ?? 0)) continue
      const name = nameOf(client)
      if (name) this.#editors.add(name)
      found = true
    }
    // A deletion advances no clock: credit this user if it was local, else whoever else is present.
    if (found) return
    const me = this.#text.doc!.clientID
    for (const client of tr.local ? [me] : states.keys()) {
      const name = client === me && !tr.local ? null : nameOf(client)
      if (name) this.#editors.add(name)
    }
  }

  #take(manual: boolean, name: string): Version {
    this.#clearTimer()
    const text = this.#text.toString()
    const prev = this.#log.newest()
    const version: Version = {
      id: newVersionId(),
      at: this.#now(),
      by: [...this.#editors].slice(0, VERSION_LIMITS.names),
      name: name.trim().slice(0, VERSION_LIMITS.name),
      manual,
      ...changeSize(prev?.text ?? '', text),
      text,
    }
    this.#editors.clear()
    this.#localChanges = false
    this.#burstStart = null
    // An automatic version of a text already saved adds nothing.
    if (!manual && prev && prev.text === text) return prev
    this.#log.doc.transact(() => {
      this.#log.add(version)
      if (this.#prune) this.#log.prune(version.at)
    })
    return version
  }

  #clearTimer() {
    if (this.#timer !== null) clearTimeout(this.#timer)
    this.#timer = null
  }
}
