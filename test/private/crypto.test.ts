/** Link keys, key derivation and sealing of private documents (WebCrypto in Node). */
import { describe, expect, it } from 'vitest'
import { isLinkKey, keyFromHash, newLinkKey } from '../../src/private/key.ts'
import { DecryptError, deriveDocKeys, open, seal, SEAL_OVERHEAD } from '../../src/private/crypto.ts'
import { privateShareLink } from '../../src/private/link.ts'
import { forgetKey, rememberedKey, rememberKey } from '../../src/private/key-store.ts'
import { memoryStorage } from '../../src/session/storage.ts'

describe('private document keys', () => {
  it('a link key is 32 random bytes as 43 base64url characters, read from #key= with other parameters after &', () => {
    const k = newLinkKey()
    expect(k).toMatch(/^[A-Za-z0-9_-]{43}$/)
    expect(newLinkKey()).not.toBe(k)
    expect(keyFromHash(`#key=${k}&token=abc`)).toBe(k)
    expect(keyFromHash(`#token=abc&key=${k}`)).toBe(k)
    expect(keyFromHash('#token=abc')).toBeNull()
    expect(keyFromHash(`#key=${k.slice(1)}`)).toBeNull()
    expect(isLinkKey(k + 'A')).toBe(false)
    expect(privateShareLink('https://m.example', 'doc', '#token=t', k)).toBe(`https://m.example/d/doc#key=${k}&token=t`)
    expect(privateShareLink('https://m.example', 'doc', `#key=${k}`, k)).toBe(`https://m.example/d/doc#key=${k}`)
  })

  it('derives distinct values per purpose and per document; seals with fresh nonces; a wrong key or a flipped bit cannot open', async () => {
    const k = newLinkKey()
    const a = await deriveDocKeys(k, 'doc-a')
    const a2 = await deriveDocKeys(k, 'doc-a')
    const b = await deriveDocKeys(k, 'doc-b')
    expect(a.writeProof).toEqual(a2.writeProof)
    expect(a.writeProof).not.toEqual(b.writeProof)
    expect(a.signalingPassword).toBe(a2.signalingPassword)
    expect(a.signalingPassword).not.toBe(b.signalingPassword)
    const plain = new TextEncoder().encode('hello private world')
    const box1 = await seal(a.content, plain)
    const box2 = await seal(a.content, plain)
    expect(box1.length).toBe(plain.length + SEAL_OVERHEAD)
    expect(box1).not.toEqual(box2)
    expect(await open(a2.content, box1)).toEqual(plain)
    await expect(open(b.content, box1)).rejects.toBeInstanceOf(DecryptError)
    await expect(open(a.awareness, box1)).rejects.toBeInstanceOf(DecryptError)
    const flipped = box1.slice()
    flipped[20]! ^= 1
    await expect(open(a.content, flipped)).rejects.toBeInstanceOf(DecryptError)
    await expect(open(a.content, new Uint8Array(5))).rejects.toBeInstanceOf(DecryptError)
  })

  it('this device remembers a private document\'s key (recent list, reload without the fragment) until it forgets the document', () => {
    const storage = memoryStorage()
    const k = newLinkKey()
    expect(rememberedKey(storage, 'doc')).toBeNull()
    rememberKey(storage, 'doc', k)
    expect(rememberedKey(storage, 'doc')).toBe(k)
    expect(rememberedKey(storage, 'other')).toBeNull()
    forgetKey(storage, 'doc')
    expect(rememberedKey(storage, 'doc')).toBeNull()
    storage.setItem('murmur:private-keys', 'not json')
    expect(rememberedKey(storage, 'doc')).toBeNull()
  })
})
