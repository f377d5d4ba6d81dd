/**
 * A document's title is its first line. Reading it must not cost time
 * proportional to the document: `firstLine` walks Y.Text items from the start
 * and stops at the first newline or after `max` characters.
 */
import * as Y from 'yjs'

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

/** Strips markdown line markers (`# `, `> `, `- `) and whitespace from a line and caps its length. */
export function cleanTitle(line: string, max = TITLE_CHARS): string {
  return line
    .replace(/^\s*(#{1,6}\s+|>\s*|[-*+]\s+(\[[ xX]\]\s+)?)/, '')
    .trim()
    .slice(0, max)
}
