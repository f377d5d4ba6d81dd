/**
 * Links and server questions about private documents, for the pages.
 */

/** The full shareable link of a private document: `/d/<id>#key=<key>`, keeping other fragment parameters (`token=`) after `&`. */
export function privateShareLink(origin: string, docId: string, hash: string, key: string): string {
  const params = new URLSearchParams(hash.startsWith('#') ? hash.slice(1) : hash)
  params.delete('key')
  const rest = params.toString()
  return `${origin}/d/${docId}#key=${key}${rest ? `&${rest}` : ''}`
}

/**
 * Asks the server whether `docId` is a private document (`GET /log/<docId>`;
 * it answers that and nothing else). Null when the server cannot be asked.
 */
export async function isPrivateOnServer(base: string, docId: string, fetchFn: typeof fetch = fetch): Promise<boolean | null> {
  try {
    const res = await fetchFn(`${base}/log/${encodeURIComponent(docId)}`, { cache: 'no-store', signal: AbortSignal.timeout(10_000) })
    if (!res.ok) return null
    const body = (await res.json()) as { private?: unknown }
    return typeof body.private === 'boolean' ? body.private : null
  } catch {
    return null
  }
}
