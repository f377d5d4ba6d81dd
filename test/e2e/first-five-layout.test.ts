/**
 * The first five minutes (issue #12, layout and editor half): the document
 * page fits a phone, unknown paths get the app's own not-found page, Markdown
 * editing keys, find and replace, a sanitised preview loaded on first use,
 * presence labels and markers, identity controls by keyboard, an axe scan,
 * and screenshots of home and a document at desktop and phone sizes.
 */
import { afterAll, afterEach, beforeAll, describe, expect, test } from 'vitest'
import AxeBuilder from '@axe-core/playwright'
import type { Browser, Page } from 'playwright-core'
import type { ServerProcess } from '../helpers/server.ts'
import {
  diagnostics,
  docText,
  editorText,
  focusEditor,
  launchBrowser,
  newUser,
  openDoc,
  screenshot,
  startE2EServer,
  testDocId,
  typeText,
  waitForText,
  waitLoaded,
  waitPeer,
  waitServiceWorker,
  type User,
} from './harness.ts'

let browser: Browser
let server: ServerProcess
let users: User[] = []

beforeAll(async () => {
  ;[browser, server] = await Promise.all([launchBrowser(), startE2EServer()])
})

afterEach(async () => {
  for (const u of users) await u.close().catch(() => {})
  users = []
})

afterAll(async () => {
  await browser?.close()
  await server?.stop()
})

async function user(name: string, viewport?: { width: number; height: number }): Promise<User> {
  const u = await newUser(browser, { name })
  users.push(u)
  if (viewport) await u.page.setViewportSize(viewport)
  return u
}

/** Puts `text` into the shared document directly (test setup, not typing). */
async function setText(page: Page, text: string): Promise<void> {
  await page.evaluate((t) => {
    const s = (window as any).__murmur.session
    s.doc.transact(() => {
      s.text.delete(0, s.text.length)
      s.text.insert(0, t)
    })
  }, text)
  await waitForText(page, (t) => t === text)
}

/** The element's box, asserted to lie inside the viewport. */
async function expectInViewport(page: Page, selector: string, what: string): Promise<{ x: number; y: number; width: number; height: number }> {
  const vp = page.viewportSize()!
  const box = await page.locator(selector).first().boundingBox()
  expect(box, `${what} is rendered`).not.toBeNull()
  const b = box!
  expect(b.width, `${what} has a width`).toBeGreaterThan(0)
  expect(b.x, `${what} left edge`).toBeGreaterThanOrEqual(0)
  expect(b.y, `${what} top edge`).toBeGreaterThanOrEqual(0)
  expect(b.x + b.width, `${what} right edge (viewport ${vp.width})`).toBeLessThanOrEqual(vp.width + 0.5)
  expect(b.y + b.height, `${what} bottom edge (viewport ${vp.height})`).toBeLessThanOrEqual(vp.height + 0.5)
  return b
}

/** Serious and critical axe violations on the page as it is now, as readable lines. */
async function axeProblems(page: Page, include?: string): Promise<string[]> {
  let builder = new AxeBuilder({ page: page as any })
  if (include) builder = builder.include(include)
  const result = await builder.analyze()
  return result.violations
    .filter((v) => v.impact === 'serious' || v.impact === 'critical')
    .map((v) => `${v.impact} ${v.id}: ${v.help} — ${v.nodes.map((n) => n.target.join(' ')).slice(0, 5).join(' | ')}`)
}

describe('the first five minutes', () => {
  test('unknown paths get the app’s own not-found page (status 404) with a way home; missing files stay a plain 404', async () => {
    const u = await user('Alice')
    const res = await u.page.goto(server.url + '/settings/foo')
    expect(res?.status()).toBe(404)
    await u.page.locator('[data-testid=not-found]').waitFor({ state: 'visible' })
    expect(await u.page.locator('[data-testid=not-found] h1').textContent()).toBe('Nothing here')
    // The page is styled by the app (its stylesheet applied), not a bare text response.
    expect(await u.page.evaluate(() => getComputedStyle(document.body).fontFamily)).toMatch(/Inter|sans-serif/)
    await screenshot(u.page, 'not-found')
    await u.page.getByRole('link', { name: 'Go to your documents' }).click()
    await u.page.locator('[data-testid=new-doc]').waitFor({ state: 'visible' })
    expect(new URL(u.page.url()).pathname).toBe('/')

    // Offline, the service worker answers any page path with the app shell, so the same page shows.
    await waitServiceWorker(u.page)
    await u.context.setOffline(true)
    await u.page.goto(server.url + '/another/missing/page')
    await u.page.locator('[data-testid=not-found]').waitFor({ state: 'visible' })
    expect(await u.page.locator('[data-testid=not-found] code').first().textContent()).toBe('/another/missing/page')
    await u.context.setOffline(false)

    const asset = await fetch(server.url + '/assets/missing-0000.js')
    expect(asset.status).toBe(404)
    expect(asset.headers.get('content-type')).toContain('text/plain')
  })

  for (const size of [
    { width: 390, height: 844 },
    { width: 360, height: 740 },
  ]) {
    test(`the document page fits a ${size.width}×${size.height} phone: title, status and actions inside the viewport`, async () => {
      const alice = await user('Alice', size)
      const bob = await user('Bob')
      const url = `${server.url}/d/${testDocId('phone')}`
      await openDoc(alice.page, url)
      await setText(alice.page, '# Meeting notes\n\nAgenda: budget, hiring, the offsite.\n')
      await openDoc(bob.page, url)
      await waitPeer(alice.page, 'Bob')
      const page = alice.page

      // Nothing makes the page scroll sideways.
      expect(await page.evaluate(() => document.documentElement.scrollWidth)).toBeLessThanOrEqual(size.width)
      const title = await expectInViewport(page, '[data-testid=doc-title]', 'title')
      expect(title.width, 'title keeps room for some text').toBeGreaterThanOrEqual(40)
      for (const [sel, what] of [
        ['[data-testid=status-local]', 'status: this device'],
        ['[data-testid=status-peers]', 'status: peers'],
        ['[data-testid=status-server]', 'status: backup'],
        ['[data-testid=copy-link]', 'Copy link'],
        ['[data-testid=preview-toggle]', 'Preview'],
        ['[data-testid=history-button]', 'History'],
        ['[data-testid=doc-menu]', 'More actions'],
        ['[data-testid=user-name]', 'your name'],
        ['[data-testid=peer] button', 'peer chip'],
      ]) {
        await expectInViewport(page, sel, what)
      }
      // The status items are not clipped: each shows its whole text.
      for (const id of ['status-local', 'status-peers', 'status-server']) {
        const clipped = await page.locator(`[data-testid=${id}]`).evaluate((el) => el.scrollWidth > el.clientWidth + 1)
        expect(clipped, `${id} text is clipped`).toBe(false)
      }
      // Export is in the menu, reachable and inside the viewport.
      await page.locator('[data-testid=doc-menu]').click()
      await expectInViewport(page, '[data-testid=export]', 'Export .md')
      await expectInViewport(page, '[data-testid=export-txt]', 'Export .txt')
      const download = page.waitForEvent('download')
      await page.locator('[data-testid=export]').click()
      expect((await download).suggestedFilename()).toBe('meeting-notes.md')
      if (size.width === 390) await screenshot(page, 'doc-390x844')
      // Preview replaces the editor on a phone (no room for both), and toggles back.
      await page.locator('[data-testid=preview-toggle]').click()
      await page.locator('[data-testid=preview] h1', { hasText: 'Meeting notes' }).waitFor({ state: 'visible' })
      await expectInViewport(page, '[data-testid=preview] h1', 'preview heading')
      expect(await page.locator('.cm-content').isVisible()).toBe(false)
      await page.locator('[data-testid=preview-toggle]').click()
      await page.locator('.cm-content').waitFor({ state: 'visible' })
    })
  }

  test('screenshots: home and a document page at 1280×800 and 390×844', async () => {
    for (const size of [
      { width: 1280, height: 800 },
      { width: 390, height: 844 },
    ]) {
      const u = await user('Alice', size)
      await u.page.goto(server.url + '/')
      await u.page.locator('[data-testid=new-doc]').waitFor({ state: 'visible' })
      expect(await u.page.evaluate(() => document.documentElement.scrollWidth)).toBeLessThanOrEqual(size.width)
      await screenshot(u.page, `home-${size.width}x${size.height}`)
      await openDoc(u.page, `${server.url}/d/${testDocId('shot')}`)
      await setText(u.page, '# Trip plan\n\n- Day 1: arrive in Lisbon\n- Day 2: tram 28, then the castle\n\n> Pack light.\n')
      await screenshot(u.page, `doc-${size.width}x${size.height}`)
      await u.close()
    }
  })

  test('Markdown editing: Enter continues lists and quotes, Tab/Shift-Tab indent, Escape then Tab leaves, Ctrl-B and Ctrl-I', async () => {
    const u = await user('Alice')
    const page = u.page
    await openDoc(page, `${server.url}/d/${testDocId('keys')}`)
    await focusEditor(page)
    await typeText(page, '- one')
    await page.keyboard.press('Enter')
    await typeText(page, 'two')
    expect(await docText(page)).toBe('- one\n- two')
    // Tab indents the item, Shift-Tab takes it back.
    await page.keyboard.press('Tab')
    expect(await docText(page)).toMatch(/^- one\n\s+- two$/)
    await page.keyboard.press('Shift+Tab')
    expect(await docText(page)).toBe('- one\n- two')
    // Enter on an empty item ends the list (the empty item's marker goes).
    await page.keyboard.press('Enter')
    expect(await docText(page)).toBe('- one\n- two\n- ')
    await page.keyboard.press('Enter')
    expect(await docText(page)).toBe('- one\n- two\n')
    await typeText(page, '> quoted')
    await page.keyboard.press('Enter')
    await typeText(page, 'more')
    expect(await docText(page)).toBe('- one\n- two\n> quoted\n> more')
    // Ordered lists count on.
    await setText(page, '')
    await focusEditor(page)
    await typeText(page, '1. first')
    await page.keyboard.press('Enter')
    await typeText(page, 'second')
    expect(await docText(page)).toBe('1. first\n2. second')

    // Bold and italic around a selection, and off again.
    await page.keyboard.press('Enter')
    await page.keyboard.press('Enter')
    await typeText(page, 'word')
    await page.keyboard.press('Shift+Home')
    await page.keyboard.press('Control+b')
    expect(await docText(page)).toMatch(/\n\*\*word\*\*$/)
    await page.keyboard.press('Control+b')
    expect(await docText(page)).toMatch(/\nword$/)
    await page.keyboard.press('Control+i')
    expect(await docText(page)).toMatch(/\n\*word\*$/)

    // Escape then Tab moves focus out of the editor (keyboard users are not trapped).
    // (With a selection, the first Escape only collapses it: CodeMirror's defaultKeymap.)
    await page.keyboard.press('End')
    const before = await docText(page)
    await page.keyboard.press('Escape')
    await page.keyboard.press('Tab')
    expect(await page.evaluate(() => !!document.activeElement?.closest('.cm-content'))).toBe(false)
    expect(await docText(page)).toBe(before)
    expect(await editorText(page)).toBe(before)
  })

  test('find and replace: Ctrl-F opens the search panel, replace all changes every match (also from the menu)', async () => {
    const u = await user('Alice')
    const page = u.page
    await openDoc(page, `${server.url}/d/${testDocId('find')}`)
    await setText(page, 'cat and cat\n'.repeat(3) + 'dog\n')
    await focusEditor(page, 'start')
    await page.keyboard.press('Control+f')
    const panel = page.locator('.cm-search')
    await panel.waitFor({ state: 'visible' })
    await panel.locator('input[name=search]').fill('cat')
    await panel.locator('input[name=replace]').fill('owl')
    await panel.locator('button[name=replaceAll]').click()
    expect(await waitForText(page, (t) => !t.includes('cat'))).toBe('owl and owl\n'.repeat(3) + 'dog\n')
    await page.keyboard.press('Escape')
    await panel.waitFor({ state: 'detached' })

    // The menu opens the same panel (no keyboard shortcut needed, e.g. on a phone).
    await page.locator('[data-testid=doc-menu]').click()
    await page.locator('[data-testid=find]').click()
    await panel.waitFor({ state: 'visible' })
    expect(await page.evaluate(() => (document.activeElement as HTMLInputElement | null)?.name)).toBe('search')
  })

  test('preview: rendered Markdown, loaded on first open; a <script>, an event handler and a javascript: link never run', async () => {
    const u = await user('Alice')
    const page = u.page
    const dialogs: string[] = []
    page.on('dialog', (d) => {
      dialogs.push(d.message())
      void d.dismiss()
    })
    await openDoc(page, `${server.url}/d/${testDocId('preview')}`)
    const rendererLoaded = () => page.evaluate(() => performance.getEntriesByType('resource').some((e) => /\/assets\/render-[^/]*\.js$/.test(e.name)))
    expect(await rendererLoaded(), 'the Markdown renderer is not part of the first paint').toBe(false)
    await setText(
      page,
      [
        '# Heading',
        '',
        'Some **bold** text and a [good link](https://example.test/x).',
        '',
        '<script>window.__pwned = "script"; alert("script")</script>',
        '',
        '<img src="x" onerror="window.__pwned = \'img\'; alert(\'img\')">',
        '',
        '[click me](javascript:window.__pwned="link";alert("link"))',
        '',
        '<a href="javascript:alert(1)">raw link</a>',
        '',
      ].join('\n'),
    )
    await page.locator('[data-testid=preview-toggle]').click()
    const preview = page.locator('[data-testid=preview]')
    await preview.locator('h1', { hasText: 'Heading' }).waitFor({ state: 'visible' })
    expect(await rendererLoaded()).toBe(true)
    expect(await preview.locator('strong').textContent()).toBe('bold')
    expect(await preview.locator('a', { hasText: 'good link' }).getAttribute('href')).toBe('https://example.test/x')
    // Nothing executable made it into the DOM.
    expect(await preview.locator('script').count()).toBe(0)
    expect(await preview.locator('[onerror], [onclick], [onload]').count()).toBe(0)
    const hrefs = await preview.locator('a').evaluateAll((as) => as.map((a) => a.getAttribute('href') ?? ''))
    expect(hrefs.filter((h) => /^\s*javascript:/i.test(h))).toEqual([])
    // Clicking what was written as links runs nothing.
    await preview.getByText('click me').click()
    await preview.getByText('raw link').click()
    // Typing updates the preview; then let the page settle and check nothing ran.
    await page.locator('[data-testid=preview-toggle]').click()
    await focusEditor(page)
    await typeText(page, '\nAdded *later*')
    await page.locator('[data-testid=preview-toggle]').click()
    await preview.locator('em', { hasText: 'later' }).waitFor({ state: 'visible' })
    expect(await page.evaluate(() => (window as any).__pwned ?? null)).toBeNull()
    expect(dialogs).toEqual([])
    expect(u.errors.filter((e) => /pageerror/.test(e))).toEqual([])
    await screenshot(page, 'preview')

    // A long document is not re-rendered on every change (that would block typing); it offers an update instead.
    const long = '# Long\n\n' + 'A paragraph of a long document, with **bold** text.\n\n'.repeat(2500)
    await setText(page, long)
    await page.locator('[data-testid=preview-refresh]').click()
    await preview.locator('h1', { hasText: 'Long' }).waitFor({ state: 'visible' })
    await page.locator('[data-testid=preview-refresh]').waitFor({ state: 'detached' })
    await page.evaluate(() => (window as any).__murmur.session.text.insert(0, '# Longer\n\n'))
    await page.locator('[data-testid=preview-refresh]').click()
    await preview.locator('h1', { hasText: 'Longer' }).waitFor({ state: 'visible' })
  })

  test('presence: labels only while active or hovered, a marker when a collaborator edits off-screen, the chip scrolls to their caret and is keyboard-reachable', async () => {
    const alice = await user('Alice')
    const bob = await user('Bob')
    const url = `${server.url}/d/${testDocId('presence')}`
    await openDoc(alice.page, url)
    const lines = Array.from({ length: 150 }, (_, i) => `Line ${i + 1} of a long document.`).join('\n') + '\n'
    await setText(alice.page, lines)
    await openDoc(bob.page, url)
    await waitForText(bob.page, (t) => t === lines)
    await waitPeer(alice.page, 'Bob')
    await focusEditor(alice.page, 'start')

    // Bob writes at the end, far below Alice's view: a marker says so, pointing down.
    await focusEditor(bob.page, 'end')
    await typeText(bob.page, 'Bob was here.')
    await waitForText(alice.page, 'Bob was here.')
    const marker = alice.page.locator('[data-testid=offscreen-peer]', { hasText: 'Bob' })
    await marker.waitFor({ state: 'visible' }).catch(async (e) => {
      throw new Error(`${(e as Error).message}\n${await diagnostics([alice, bob])}`)
    })
    expect(await marker.getAttribute('data-direction')).toBe('down')

    // While Bob keeps typing, clicking the marker brings his caret into Alice's view.
    const bobTyping = typeText(bob.page, ' And more, and more, and more.', 80)
    await marker.click()
    await alice.page.waitForFunction(
      () => {
        const info = [...document.querySelectorAll('.cm-ySelectionInfo')].find((e) => e.textContent === 'Bob')
        const scroller = document.querySelector('.cm-scroller')
        if (!info || !scroller) return false
        const c = info.parentElement!.getBoundingClientRect()
        const s = scroller.getBoundingClientRect()
        return c.top >= s.top && c.bottom <= s.bottom
      },
      null,
      { timeout: 10_000, polling: 50 },
    )
    await bobTyping
    await focusEditor(alice.page, 'start')

    // Once Bob is quiet the marker goes (his caret is out of view, so no label is drawn either).
    await marker.waitFor({ state: 'detached', timeout: 20_000 })
    const label = alice.page.locator('.cm-ySelectionInfo', { hasText: 'Bob' })
    expect(await label.count()).toBe(0)

    // Pressing Bob's chip (by keyboard; its name says how he is connected) brings his caret into view, named.
    const chip = alice.page.getByRole('button', { name: /^Bob, (direct|via server|via a peer)\. Show their cursor$/ })
    await chip.focus()
    await alice.page.keyboard.press('Enter')
    const labelOpacity = (want: number, timeout: number) =>
      alice.page.waitForFunction(
        (want) => {
          const el = [...document.querySelectorAll('.cm-ySelectionInfo')].find((e) => e.textContent === 'Bob')
          const scroller = document.querySelector('.cm-scroller')
          if (!el || !scroller) return false
          const c = el.parentElement!.getBoundingClientRect()
          const s = scroller.getBoundingClientRect()
          return c.top >= s.top && c.bottom <= s.bottom && Number(getComputedStyle(el).opacity) === want
        },
        want,
        { timeout, polling: 50 },
      )
    await labelOpacity(1, 10_000)
    // The label fades once Bob stays quiet; hovering his caret shows it again.
    await alice.page.mouse.move(1, 1)
    await labelOpacity(0, 20_000)
    await alice.page.locator('.cm-ySelectionCaret', { has: label }).hover()
    await labelOpacity(1, 5_000)
    await screenshot(alice.page, 'presence')
  })

  test('identity and controls: the name field looks editable, the palette works with arrow keys and names its colours, Import is one control Enter and Space open', async () => {
    const u = await user('Alice')
    const page = u.page
    // Intercept file choosers from the start: enabling interception is asynchronous in Playwright,
    // and a chooser opened before it is on is lost.
    page.on('filechooser', () => {})
    await page.goto(server.url + '/')
    await page.locator('[data-testid=new-doc]').waitFor({ state: 'visible' })

    // The name field has a visible edge (not a bare line of text).
    const border = await page.locator('[data-testid=user-name]').evaluate((el) => {
      const s = getComputedStyle(el)
      return { style: s.borderBottomStyle, width: parseFloat(s.borderBottomWidth), cursor: s.cursor }
    })
    expect(border.style).not.toBe('none')
    expect(border.width).toBeGreaterThanOrEqual(1)
    expect(border.cursor).toBe('text')

    // Palette: keyboard only. Opening focuses the current colour; arrows move and pick; names, not hex codes.
    const before = await page.evaluate(() => JSON.parse(localStorage.getItem('murmur:user')!).color as string)
    await page.locator('[data-testid=user-colour]').focus()
    await page.keyboard.press('Enter')
    const radios = page.locator('[data-testid=palette] [role=radio]')
    await radios.first().waitFor({ state: 'visible' })
    const names = await radios.evaluateAll((rs) => rs.map((r) => r.getAttribute('aria-label') ?? ''))
    expect(names.length).toBeGreaterThan(4)
    for (const n of names) expect(n).toMatch(/^[A-Z][a-z]+$/)
    expect(await page.evaluate(() => document.activeElement?.getAttribute('aria-checked'))).toBe('true')
    await page.keyboard.press('ArrowRight')
    const after = await page.evaluate(() => JSON.parse(localStorage.getItem('murmur:user')!).color as string)
    expect(after).not.toBe(before)
    expect(await page.evaluate(() => document.activeElement?.getAttribute('aria-checked'))).toBe('true')
    await page.keyboard.press('ArrowLeft')
    expect(await page.evaluate(() => JSON.parse(localStorage.getItem('murmur:user')!).color as string)).toBe(before)
    await page.keyboard.press('Escape')
    await radios.first().waitFor({ state: 'detached' })
    expect(await page.evaluate(() => document.activeElement?.getAttribute('data-testid'))).toBe('user-colour')

    // Import: exactly one focusable control, a button, and both Enter and Space open the file chooser.
    const importStops = await page.evaluate(() => {
      const all = [...document.querySelectorAll<HTMLElement>('button, input, a[href], [tabindex]')]
      return all.filter((el) => el.tabIndex >= 0 && /import/i.test(el.textContent + ' ' + (el.getAttribute('data-testid') ?? ''))).length
    })
    expect(importStops).toBe(1)
    const button = page.getByRole('button', { name: 'Import a file' })
    for (const key of ['Enter', 'Space']) {
      await button.focus()
      const chooser = page.waitForEvent('filechooser', { timeout: 5_000 }).catch((e: Error) => {
        throw new Error(`${key} did not open the file chooser: ${e.message}`)
      })
      await page.keyboard.press(key)
      expect((await chooser).isMultiple()).toBe(false)
    }
    // And a chosen file is imported.
    await button.focus()
    const chooser = page.waitForEvent('filechooser')
    await page.keyboard.press('Enter')
    await (await chooser).setFiles({ name: 'notes.md', mimeType: 'text/markdown', buffer: Buffer.from('# Imported notes\n\nhello\n') })
    await waitLoaded(page)
    await waitForText(page, 'hello')
  })

  test('accessibility: no serious or critical axe violations on home (and its palette), not-found, a document page, its search panel, preview, menu and history panel', async () => {
    const u = await user('Alice')
    const page = u.page
    await page.goto(server.url + '/')
    await page.locator('[data-testid=new-doc]').waitFor({ state: 'visible' })
    const home = await axeProblems(page)
    await page.locator('[data-testid=user-colour]').click()
    await page.locator('[data-testid=palette]').waitFor({ state: 'visible' })
    const palette = await axeProblems(page)
    await page.keyboard.press('Escape')
    await page.goto(server.url + '/no/such/page')
    await page.locator('[data-testid=not-found]').waitFor({ state: 'visible' })
    const notFound = await axeProblems(page)
    await openDoc(page, `${server.url}/d/${testDocId('axe')}`)
    await setText(page, '# Notes\n\n- a list\n- with **bold**\n\n> a quote\n\n[a link](https://example.test/)\n')
    const doc = await axeProblems(page)
    await focusEditor(page)
    await page.keyboard.press('Control+f')
    await page.locator('.cm-search').waitFor({ state: 'visible' })
    const search = await axeProblems(page)
    await page.keyboard.press('Escape')
    await page.locator('[data-testid=preview-toggle]').click()
    await page.locator('[data-testid=preview] h1').waitFor({ state: 'visible' })
    const preview = await axeProblems(page, '[data-testid=preview]')
    await page.locator('[data-testid=doc-menu]').click()
    const menu = await axeProblems(page)
    await page.keyboard.press('Escape')
    await page.locator('[data-testid=history-button]').click()
    await page.locator('[data-testid=history-panel]').waitFor({ state: 'visible' })
    await page.locator('[data-testid=version-save]').click()
    await page.locator('[data-testid=version] button[aria-pressed]').first().click()
    await page.locator('[data-testid=version-diff] .cm-editor').waitFor({ state: 'visible' })
    const history = await axeProblems(page, '[data-testid=history-panel]')
    expect({ home, palette, notFound, doc, search, preview, menu, history }).toEqual({ home: [], palette: [], notFound: [], doc: [], search: [], preview: [], menu: [], history: [] })
  })
})
