/** This browser's user (name + colour), persisted in localStorage: one instance per page. */
import { safeLocalStorage } from './storage.ts'
import { UserStore } from './user.svelte.ts'

/** The local user. */
export const user = new UserStore(safeLocalStorage())
