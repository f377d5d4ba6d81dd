/**
 * Short-lived notifications ("Link copied", import errors) as runes state.
 */

/** One notification. */
export interface Toast {
  id: number
  message: string
  kind: 'info' | 'error'
}

class Toasts {
  /** Visible notifications, oldest first. */
  items = $state<Toast[]>([])
  #next = 1

  /** Shows `message` for `ms` milliseconds. */
  push(message: string, kind: Toast['kind'] = 'info', ms = 2600): void {
    const id = this.#next++
    this.items = [...this.items, { id, message, kind }]
    setTimeout(() => this.dismiss(id), ms)
  }

  /** Hides one notification. */
  dismiss(id: number): void {
    this.items = this.items.filter((t) => t.id !== id)
  }
}

/** The app's notifications. */
export const toasts = new Toasts()
