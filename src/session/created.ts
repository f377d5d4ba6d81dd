/**
 * Document ids this page created (New document), so opening one does not
 * wait for a server or peer that cannot have it yet (see `first-sync.ts`).
 * In memory: a reload of a new, never-edited document is an unknown link.
 */
const created = new Set<string>()

/** Remembers that this page just created `docId`. */
export function markCreatedHere(docId: string): void {
  created.add(docId)
}

/** True when this page created `docId`. */
export function wasCreatedHere(docId: string): boolean {
  return created.has(docId)
}
