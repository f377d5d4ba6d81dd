/**
 * A read-only link must not change a document through the peer mesh: the
 * server refuses `/signal` to read-only tokens, murmur clients with a
 * read-only link stay out of the mesh (the server relays to them), and
 * read-write peers encrypt signaling with a room secret only read-write
 * holders receive. Real server process, real WebRTC (@roamhq/wrtc), the real
 * murmur client (`SessionCore`) and a stock y-webrtc attacker.
 */
import { afterAll, beforeAll, describe, expect, test } from 'vitest'
import { claimedDoc, mintToken } from '../../server/auth.ts'
import { CloseCode } from '../../src/protocol/messages.ts'
import { startServer, type ServerProcess } from '../helpers/server.ts'
import { yClient } from '../helpers/clients.ts'
import { Client, here, startReporter } from './helpers.ts'

const secret = 'read-only-mesh-secret'

interface SessionReport {
  peers: number
  signaling: string
  link: string
  backedUp: boolean
  readOnly: boolean
  text: string
}
interface StockReport {
  conns: number
  connected: number
  text: string
}

const session = (server: ServerProcess, doc: string, token: string, text: string) =>
  startReporter<SessionReport>(here('session-peer.ts'), [server.url, doc, token, text], { peers: 0, signaling: '', link: '', backedUp: false, readOnly: false, text: '' })
const stock = (server: ServerProcess, doc: string, token: string, text: string, password = '') =>
  startReporter<StockReport>(here('webrtc-peer.ts'), [`${server.wsUrl}/signal?token=${token}`, doc, text, password], { conns: 0, connected: 0, text: '' })

describe('read-only links and the peer mesh (auth on)', () => {
  let server: ServerProcess
  beforeAll(async () => {
    server = await startServer({ args: ['--auth-secret', secret, '--turn-url', 'turn:turn.invalid:3478', '--turn-secret', 'turn-secret'] })
  })
  afterAll(async () => {
    expect(await server?.stop()).toBe(0)
  })

  test('/signal refuses a read-only token with 4401', async () => {
    const reader = await Client.open(`${server.wsUrl}/signal?token=${mintToken(secret, 'ro-doc', 'r', 600)}`)
    expect((await reader.closed).code).toBe(CloseCode.unauthorized)
    const writer = await Client.open(`${server.wsUrl}/signal?token=${mintToken(secret, 'ro-doc', 'rw', 600)}`)
    await writer.subscribe('ro-doc')
    writer.close()
  })

  test('/config.json: the room secret and TURN credentials only for a valid read-write token', async () => {
    const config = async (token?: string) => (await fetch(`${server.url}/config.json${token ? `?token=${token}` : ''}`)).json()
    const turn = (c: { iceServers: { urls: unknown; username?: string }[] }) => c.iceServers.filter((s) => s.username)
    const anonymous = await config()
    expect(turn(anonymous)).toEqual([])
    expect(anonymous.roomSecret).toBeUndefined()
    const reader = await config(mintToken(secret, 'cfg-doc', 'r', 600))
    expect(reader).toMatchObject({ access: 'r' })
    expect(reader.roomSecret).toBeUndefined()
    expect(turn(reader)).toEqual([])
    expect(await config(mintToken('wrong', 'cfg-doc', 'rw', 600))).toMatchObject({ access: 'none' })
    const writer = await config(mintToken(secret, 'cfg-doc', 'rw', 120))
    expect(writer).toMatchObject({ access: 'rw' })
    expect(writer.roomSecret).toMatch(/^[A-Za-z0-9_-]{43}$/)
    expect((await config(mintToken(secret, 'other-doc', 'rw', 120))).roomSecret).not.toBe(writer.roomSecret)
    // TURN credentials never outlive the token (120 s here, --turn-ttl is 6 h).
    const [cred] = turn(writer)
    const expiry = Number(cred.username!.split(':')[0])
    expect(expiry - Date.now() / 1000).toBeLessThanOrEqual(121)
    expect(claimedDoc(mintToken(secret, 'cfg-doc', 'rw', 1))).toBe('cfg-doc')
  })

  test("a reader's edits never reach a writer or the server; the reader still sees the writer live", async () => {
    const doc = `mesh-${process.pid}`
    const writer = session(server, doc, mintToken(secret, doc, 'rw', 600), 'written by the writer. ')
    // A murmur client with a read-only link: no mesh, live through /sync, editor read-only.
    const reader = session(server, doc, mintToken(secret, doc, 'r', 600), '')
    // A stock y-webrtc peer with the read-only token (what the review's attacker used).
    const attacker = stock(server, doc, mintToken(secret, doc, 'r', 600), 'VANDALISM FROM A READER. ')
    // A stock peer with a valid read-write token but without the room secret: cannot pair with murmur peers.
    const outsider = stock(server, doc, mintToken(secret, doc, 'rw', 600), 'NO ROOM SECRET. ')
    try {
      await writer.until((r) => r.link === 'synced' && r.backedUp, 'writer backed up')
      const r = await reader.until((r) => r.text.includes('written by the writer.'), 'reader receives the text through the relay')
      expect(r.readOnly).toBe(true)
      expect(r.signaling).toBe('read-only')
      expect(r.peers).toBe(0)
      // A second writer joins: the reader sees its text live.
      const second = session(server, doc, mintToken(secret, doc, 'rw', 600), 'and a second writer. ')
      try {
        // The two read-write murmur peers pair directly (they share the room secret).
        await second.until((r) => r.peers === 1 && r.text.includes('written by the writer.'), 'writers pair directly')
        await reader.until((r) => r.text.includes('and a second writer.'), 'reader sees the second writer live')
        // Neither stock peer ever connected to anyone, and their text never arrived.
        const a = attacker.latest()
        const o = outsider.latest()
        expect(a.connected).toBe(0)
        expect(o.connected).toBe(0)
        for (const p of [writer, second, reader]) {
          expect(p.latest().text).not.toContain('VANDALISM')
          expect(p.latest().text).not.toContain('NO ROOM SECRET')
        }
        // What the server stores came from writers only.
        await second.until((r) => r.backedUp, 'second writer backed up')
        const stored = yClient(server.wsUrl, doc, { params: { token: mintToken(secret, doc, 'r', 600) } })
        await stored.synced
        const text = stored.text.toString()
        stored.destroy()
        expect(text).toContain('written by the writer.')
        expect(text).toContain('and a second writer.')
        expect(text).not.toContain('VANDALISM')
        expect(text).not.toContain('NO ROOM SECRET')
      } finally {
        await second.stop()
      }
    } catch (err) {
      console.error(`writer:\n${writer.output()}\nreader:\n${reader.output()}\nattacker:\n${attacker.output()}\noutsider:\n${outsider.output()}`)
      throw err
    } finally {
      await Promise.all([writer.stop(), reader.stop(), attacker.stop(), outsider.stop()])
    }
  })
})
