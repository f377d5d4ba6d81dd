/**
 * The local user's identity as runes state, persisted in localStorage.
 * One instance per page (`user`); edits are published to the open session
 * by whoever owns it.
 */
import { cleanColor, cleanName, lightColor, loadIdentity, saveIdentity, type UserIdentity } from './presence.ts'
import type { KeyValueStorage } from './storage.ts'

/** Reactive name + colour of this user. */
export class UserStore {
  /** Display name. */
  name = $state('')
  /** Caret colour `#rrggbb`. */
  color = $state('#1971c2')
  /** Selection colour derived from `color`. */
  readonly colorLight: string = $derived(lightColor(this.color))

  #storage: KeyValueStorage

  constructor(storage: KeyValueStorage) {
    this.#storage = storage
    const id = loadIdentity(storage)
    this.name = id.name
    this.color = id.color
  }

  /** The identity as published in awareness. */
  get identity(): UserIdentity {
    return { name: cleanName(this.name) || 'Anonymous', color: this.color, colorLight: this.colorLight }
  }

  /** Updates and stores name and/or colour (an empty name is kept in the field but not stored). */
  update(patch: { name?: string; color?: string }): UserIdentity {
    if (patch.name !== undefined) this.name = patch.name.slice(0, 40)
    if (patch.color !== undefined) this.color = cleanColor(patch.color, this.color)
    const id = this.identity
    saveIdentity(this.#storage, id)
    return id
  }
}
