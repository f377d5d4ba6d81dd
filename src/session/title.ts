/**
 * A document's title is its first line. Reading it must not cost time
 * proportional to the document: `firstLine` walks Y.Text items from the start
 * and stops at the first newline or after `max` characters.
 */
import * as Y from 'yjs'
import type { FirstSync } from './first-sync.ts'

/** Longest title extracted. */
export const TITLE_CHARS = 120

/**
 * The first line of `text`, trimmed, with leading markdown heading/list/quote
 * markers removed, at most `max` characters. Cost: O(items before the first
 * newline), not O(document).
 */
export function firstLine(text: Y.Text, max = TITLE_CHARS): string {
  let out = ''
  // Y.Text items are a linked list from `_start`; deleted and non-text items (formats, embeds) are skipped.
  let item = (text as unknown as { _start: Y.Item | null })._start
  while (item !== null && out.length < max * 2) {
    if (!item.deleted && item.countable && item.content instanceof Y.ContentString) {
      const str = item.content.str
      const nl = str.indexOf('\n')
      if (nl >= 0) {
        out += str.slice(0, nl)
        break
      }
      out += str
    }
    item = item.right
  }
  return cleanTitle(out, max)
}

/** Hides markup characters from the inline rules below (code span content, backslash escapes); `restore` brings them back. */
const protect = (str: string) => str.replace(/[!-/:-@[-`{-~]/g, (c) => String.fromCharCode(0xe000 + c.charCodeAt(0)))
const restore = (str: string) => str.replace(/[\ue000-\ue07f]/g, (c) => String.fromCharCode(c.charCodeAt(0) - 0xe000))

/**
 * A first line as a title: without Markdown markup (`# Meeting **notes**` →
 * "Meeting notes") — line markers (headings, quotes, list items, task boxes),
 * closing heading hashes, emphasis, strikethrough, code spans, links and
 * images (their text), HTML tags and backslash escapes — trimmed and capped.
 */
export function cleanTitle(line: string, max = TITLE_CHARS): string {
  const t = line
    .replace(/\\([!-/:-@[-`{-~])/g, (_, c: string) => protect(c))
    .replace(/(`+)(.+?)\1/g, (_, _ticks: string, code: string) => protect(code.trim()))
    .replace(/^\s*((#{1,6}(\s+|$))|>\s*|([-*+]|\d{1,9}[.)])\s+(\[[ xX]\]\s+)?)*/, '')
    .replace(/\s+#+\s*$/, '')
    .replace(/!?\[([^\]]*)\]\([^)]*\)/g, '$1')
    .replace(/<\/?[A-Za-z][^>]*>/g, '')
    .replace(/(\*\*|__|~~)(?=\S)(.+?)(?<=\S)\1/g, '$2')
    .replace(/\*(?=\S)(.+?)(?<=\S)\*/g, '$1')
    .replace(/(^|[^\p{L}\p{N}])_(?=\S)(.+?)(?<=\S)_(?![\p{L}\p{N}])/gu, '$1$2')
  return restore(t).replace(/\s+/g, ' ').trim().slice(0, max)
}

/** What the document page's heading shows: the title, or a greyed placeholder that never claims "Untitled" before the text is here. */
export function displayTitle(s: { title: string; loaded: boolean; firstSync: FirstSync }): { text: string; placeholder: boolean } {
  if (!s.loaded) return { text: 'Opening…', placeholder: true }
  if (s.firstSync === 'waiting') return { text: 'Waiting for the document…', placeholder: true }
  if (s.title) return { text: s.title, placeholder: false }
  return { text: 'Untitled document', placeholder: true }
}
