import { describe, expect, it } from 'vitest'
import * as Y from 'yjs'
import { analyzeUpdate, checkUpdate, MalformedUpdateError, stateVectorOf, statusOf, unmet } from '../../server/updates.ts'
import { prng as rng } from '../convergence/plan.ts'

/**
 * Random editing histories of several clients, delivered to a fresh document
 * in a random order, as the server receives them: every verdict of the
 * decode-once analysis must agree with what Yjs itself does with the update.
 */
describe('update analysis (decode once, hold, retry without decoding)', () => {
  const seeds = process.env.MURMUR_UPDATES_SEED ? [Number(process.env.MURMUR_UPDATES_SEED)] : [1, 2, 3, 4, 5, 6, 7, 8]

  for (const seed of seeds) {
    it(`agrees with Yjs on a shuffled delivery (seed ${seed}; re-run with MURMUR_UPDATES_SEED=${seed})`, () => {
      const random = rng(seed)
      const peers = Array.from({ length: 2 + Math.floor(random() * 3) }, () => new Y.Doc())
      const updates: Uint8Array[] = []
      peers.forEach((d) => d.on('update', (u: Uint8Array) => updates.push(u)))
      for (let step = 0; step < 120; step++) {
        const d = peers[Math.floor(random() * peers.length)]
        const text = d.getText('text')
        if (text.length > 0 && random() < 0.3) text.delete(Math.floor(random() * text.length), 1 + Math.floor(random() * Math.min(3, text.length)))
        else text.insert(Math.floor(random() * (text.length + 1)), 'abcdefgh'.slice(0, 1 + Math.floor(random() * 4)))
        if (random() < 0.3) {
          // some merged updates too (they contain Skips and several clients)
          if (random() < 0.2 && updates.length > 2) updates.push(Y.mergeUpdates(updates.slice(-3)))
          const [a, b] = [peers[Math.floor(random() * peers.length)], peers[Math.floor(random() * peers.length)]]
          Y.applyUpdate(b, Y.encodeStateAsUpdate(a, Y.encodeStateVector(b)))
        }
      }
      for (let i = updates.length - 1; i > 0; i--) {
        const j = Math.floor(random() * (i + 1))
        ;[updates[i], updates[j]] = [updates[j], updates[i]]
      }

      const target = new Y.Doc()
      const held: { update: Uint8Array; needs: ReturnType<typeof analyzeUpdate>; next: number }[] = []
      const applyChecked = (update: Uint8Array, expected: 'ready' | 'empty') => {
        const before = Y.encodeStateVector(target)
        Y.applyUpdate(target, update)
        expect(target.store.pendingStructs, `seed ${seed}: a "${expected}" update left pending structs`).toBeNull()
        expect(target.store.pendingDs, `seed ${seed}: a "${expected}" update left pending deletes`).toBeNull()
        if (expected === 'empty') expect(Y.encodeStateVector(target)).toEqual(before)
      }
      for (const update of updates) {
        const needs = analyzeUpdate(update)
        const sv = stateVectorOf(target)
        const status = statusOf(needs, sv)
        expect(status).toBe(checkUpdate(update, sv))
        if (status === 'missing') {
          // Yjs would leave something pending: check on a copy.
          const copy = new Y.Doc()
          Y.applyUpdate(copy, Y.encodeStateAsUpdate(target))
          Y.applyUpdate(copy, update)
          expect(copy.store.pendingStructs !== null || copy.store.pendingDs !== null, `seed ${seed}: "missing" but Yjs applied it cleanly`).toBe(true)
          held.push({ update, needs, next: unmet(needs, sv) })
          continue
        }
        applyChecked(update, status)
        // retry what was held, using only the remembered needs
        for (let progressed = true; progressed; ) {
          progressed = false
          for (let i = 0; i < held.length; i++) {
            const h = held[i]
            h.next = unmet(h.needs, stateVectorOf(target), h.next)
            if (h.next !== -1) continue
            held.splice(i--, 1)
            applyChecked(h.update, 'ready')
            progressed = true
          }
        }
      }
      expect(held, `seed ${seed}: updates still held after everything arrived`).toEqual([])
      const merged = new Y.Doc()
      for (const d of peers) Y.applyUpdate(merged, Y.encodeStateAsUpdate(d))
      expect(target.getText('text').toString()).toBe(merged.getText('text').toString())
    })
  }

  it('needs the missing prefix of a client and the items it references', () => {
    const a = new Y.Doc()
    const updates: Uint8Array[] = []
    a.on('update', (u: Uint8Array) => updates.push(u))
    a.getText('text').insert(0, 'abc')
    a.getText('text').insert(1, 'X') // references 'a' and 'b' of the first update
    const needs = analyzeUpdate(updates[1])
    expect(needs.needs).toEqual([[a.clientID, 3]])
    expect(statusOf(needs, new Map())).toBe('missing')
    expect(statusOf(needs, new Map([[a.clientID, 3]]))).toBe('ready')
    expect(statusOf(needs, new Map([[a.clientID, 4]]))).toBe('empty')
  })

  it('rejects undecodable bytes and self-references', () => {
    expect(() => analyzeUpdate(new Uint8Array([1, 2, 3, 250]))).toThrow(MalformedUpdateError)
  })
})
