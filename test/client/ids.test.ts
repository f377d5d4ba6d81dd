import { describe, expect, it } from 'vitest'
import { isValidDocId, newDocId, DOC_ID_PATTERN } from '../../src/protocol/ids.ts'

describe('document ids', () => {
  it('accepts 1–64 URL-safe characters and nothing else', () => {
    expect(isValidDocId('a')).toBe(true)
    expect(isValidDocId('A-z_09')).toBe(true)
    expect(isValidDocId('x'.repeat(64))).toBe(true)
    expect(isValidDocId('x'.repeat(65))).toBe(false)
    expect(isValidDocId('')).toBe(false)
    for (const bad of ['a/b', 'a b', 'a.b', 'a%41', 'é', '../x', 'a\n', 'a+b', 'a=b']) expect(isValidDocId(bad), bad).toBe(false)
    for (const bad of [undefined, null, 42, {}, ['a']]) expect(isValidDocId(bad)).toBe(false)
  })

  it('newDocId is 22 base64url characters carrying 128 random bits', () => {
    const seen = new Set<string>()
    for (let i = 0; i < 2000; i++) {
      const id = newDocId()
      expect(id).toMatch(/^[A-Za-z0-9_-]{22}$/)
      expect(DOC_ID_PATTERN.test(id)).toBe(true)
      const bytes = Buffer.from(id, 'base64url')
      expect(bytes.length).toBe(16)
      expect(bytes.toString('base64url')).toBe(id)
      seen.add(id)
    }
    expect(seen.size).toBe(2000)
  })

  it('newDocId uses every bit position (not a constant or truncated source)', () => {
    let or = 0n
    let and = (1n << 128n) - 1n
    for (let i = 0; i < 200; i++) {
      const v = BigInt('0x' + Buffer.from(newDocId(), 'base64url').toString('hex'))
      or |= v
      and &= v
    }
    expect(or).toBe((1n << 128n) - 1n)
    expect(and).toBe(0n)
  })
})
