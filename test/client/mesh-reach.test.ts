import { EventEmitter } from 'node:events'
import { describe, expect, it } from 'vitest'
import * as Y from 'yjs'
import * as encoding from 'lib0/encoding'
import { Awareness, encodeAwarenessUpdate } from 'y-protocols/awareness'
import type { WebrtcProvider } from 'y-webrtc'
import { awarenessClients, MESH_REACH_MS, MeshReach } from '../../src/session/mesh-reach.ts'
import { SignalWatch } from '../../src/session/signal-watch.ts'

/** A y-webrtc data-channel awareness message carrying the states of `ids`. */
function awarenessMessage(ids: number[], clock = 1): Uint8Array {
  const doc = new Y.Doc()
  const aw = new Awareness(doc)
  for (const id of ids) {
    aw.states.set(id, { user: { name: `u${id}` } })
    aw.meta.set(id, { clock, lastUpdated: 0 })
  }
  const e = encoding.createEncoder()
  encoding.writeVarUint(e, 1)
  encoding.writeVarUint8Array(e, encodeAwarenessUpdate(aw, ids))
  return encoding.toUint8Array(e)
}

describe('mesh reach: whose awareness comes over the mesh', () => {
  it('reads the client ids of awareness messages and nothing else', () => {
    expect(awarenessClients(awarenessMessage([7, 123456789]))).toEqual([7, 123456789])
    expect(awarenessClients(new Uint8Array([0, 0, 1]))).toEqual([]) // a sync message
    expect(awarenessClients(new Uint8Array([1, 200, 1]))).toEqual([]) // truncated
    expect(awarenessClients(new Uint8Array([]))).toEqual([])
  })

  it('remembers each client for MESH_REACH_MS after its last message, duplicates included', () => {
    let now = 1000
    const reach = new MeshReach(() => now)
    const peer = new EventEmitter()
    reach.observe(peer as never)
    reach.observe(peer as never) // once per connection
    peer.emit('data', awarenessMessage([5]))
    expect(reach.reaches(5, now)).toBe(true)
    expect(reach.reaches(6, now)).toBe(false)
    now += MESH_REACH_MS - 1
    peer.emit('data', awarenessMessage([5])) // the same state again: still counts
    expect(reach.reaches(5, now + MESH_REACH_MS - 1)).toBe(true)
    expect(reach.reaches(5, now + MESH_REACH_MS)).toBe(false)
  })

  it('forgets what came over a connection once it closes; another connection that carried it still counts', () => {
    const reach = new MeshReach(() => 0)
    const [one, two] = [new EventEmitter(), new EventEmitter()]
    reach.observe(one as never)
    reach.observe(two as never)
    one.emit('data', awarenessMessage([5]))
    one.emit('data', awarenessMessage([6]))
    two.emit('data', awarenessMessage([6]))
    one.emit('close')
    expect(reach.reaches(5, 0)).toBe(false)
    expect(reach.reaches(6, 0)).toBe(true)
    two.emit('close')
    expect(reach.reaches(6, 0)).toBe(false)
  })

  it('an echo of a state this device passed on from the server does not count; a newer state of that client does', () => {
    const reach = new MeshReach(() => 0)
    const peer = new EventEmitter()
    reach.observe(peer as never)
    reach.passedOn(5, 3)
    peer.emit('data', awarenessMessage([5], 3))
    expect(reach.reaches(5, 0)).toBe(false)
    peer.emit('data', awarenessMessage([5], 4))
    expect(reach.reaches(5, 0)).toBe(true)
  })

  it('a message with every state the sender knows (y-webrtc on connect, or when asked) marks no one: it may hold states from the server', () => {
    const reach = new MeshReach(() => 0)
    const peer = new EventEmitter()
    reach.observe(peer as never)
    peer.emit('data', awarenessMessage([1, 2, 3]))
    for (const id of [1, 2, 3]) expect(reach.reaches(id, 0)).toBe(false)
  })
})

describe('signal watch: who is heard on signaling', () => {
  const setup = (key: CryptoKey | null) => {
    const conn = new EventEmitter()
    const provider = { signalingConns: [conn], room: { name: 'doc', peerId: 'me', key } } as unknown as WebrtcProvider
    const heard: string[] = []
    const watch = new SignalWatch(provider, (id) => heard.push(id))
    watch.watch()
    watch.watch() // once per connection
    return { conn, heard, watch }
  }

  it('hears announces and signals to this peer on the room topic, and ignores the rest', () => {
    const { conn, heard, watch } = setup(null)
    conn.emit('message', { type: 'publish', topic: 'doc', data: { type: 'announce', from: 'a' } })
    conn.emit('message', { type: 'publish', topic: 'doc', data: { type: 'signal', from: 'b', to: 'me', signal: {} } })
    conn.emit('message', { type: 'publish', topic: 'doc', data: { type: 'signal', from: 'c', to: 'someone-else', signal: {} } })
    conn.emit('message', { type: 'publish', topic: 'other', data: { type: 'announce', from: 'd' } })
    conn.emit('message', { type: 'publish', topic: 'doc', data: { type: 'announce', from: 'me' } })
    conn.emit('message', { type: 'publish', topic: 'doc', data: { type: 'announce', from: 42 } })
    conn.emit('message', { type: 'publish', topic: 'doc', data: null })
    conn.emit('message', 'junk')
    expect(heard).toEqual(['a', 'b'])
    watch.stop()
    conn.emit('message', { type: 'publish', topic: 'doc', data: { type: 'announce', from: 'e' } })
    expect(heard).toEqual(['a', 'b'])
  })

  it('reads signaling encrypted with the room password as y-webrtc writes it; garbage is ignored', async () => {
    // y-webrtc's own signaling encryption (not in its package exports), so the watcher is checked against the real format.
    const crypto = '../../node_modules/y-webrtc/src/crypto.js'
    const { deriveKey, encryptJson } = (await import(/* @vite-ignore */ crypto)) as {
      deriveKey(secret: string, room: string): Promise<CryptoKey>
      encryptJson(data: unknown, key: CryptoKey): Promise<Uint8Array>
    }
    const key = await deriveKey('secret', 'doc')
    const { conn, heard } = setup(key)
    const sealed = await encryptJson({ type: 'announce', from: 'a' }, key)
    conn.emit('message', { type: 'publish', topic: 'doc', data: Buffer.from(sealed).toString('base64') })
    conn.emit('message', { type: 'publish', topic: 'doc', data: Buffer.from('not a sealed message').toString('base64') })
    const wrong = await encryptJson({ type: 'announce', from: 'b' }, await deriveKey('other', 'doc'))
    conn.emit('message', { type: 'publish', topic: 'doc', data: Buffer.from(wrong).toString('base64') })
    await expect.poll(() => heard).toEqual(['a'])
    await new Promise((r) => setTimeout(r, 50))
    expect(heard).toEqual(['a'])
  })
})
