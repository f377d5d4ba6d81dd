/**
 * Markdown language support (GitHub flavour) with a quiet highlight style:
 * headings larger and bold, emphasis styled, syntax marks (`#`, `**`, list
 * bullets) greyed.
 */
import { markdownKeymap, markdownLanguage, pasteURLAsLink } from '@codemirror/lang-markdown'
import { HighlightStyle, LanguageSupport, syntaxHighlighting } from '@codemirror/language'
import { tags as t } from '@lezer/highlight'
import { Prec, type Extension } from '@codemirror/state'
import { keymap, type Command } from '@codemirror/view'

/** How markdown tokens look. */
export const markdownHighlight = HighlightStyle.define([
  { tag: t.heading1, fontSize: '1.6em', fontWeight: '700', lineHeight: '1.3' },
  { tag: t.heading2, fontSize: '1.35em', fontWeight: '700' },
  { tag: t.heading3, fontSize: '1.15em', fontWeight: '650' },
  { tag: [t.heading4, t.heading5, t.heading6], fontWeight: '650' },
  { tag: t.strong, fontWeight: '700' },
  { tag: t.emphasis, fontStyle: 'italic' },
  { tag: t.strikethrough, textDecoration: 'line-through' },
  { tag: t.link, color: '#0969da' },
  { tag: t.url, color: '#0969da', textDecoration: 'underline' },
  { tag: t.monospace, fontFamily: 'var(--font-mono)', fontSize: '0.9em', backgroundColor: '#f3f4f6', borderRadius: '3px' },
  { tag: t.quote, color: '#57606a', fontStyle: 'italic' },
  { tag: [t.processingInstruction, t.meta, t.contentSeparator], color: '#9aa3ad' },
])

/** `run`, except in a read-only editor (lang-markdown's commands do not check). */
const editable =
  (run: Command): Command =>
  (view) =>
    !view.state.readOnly && run(view)

/**
 * Markdown parsing (GitHub flavour) plus `markdownHighlight`, pasting a URL
 * over a selection makes a link, and lang-markdown's keymap: Enter continues
 * a list or quote (and ends it on an empty item), Backspace removes list and
 * quote markup; neither acts in a read-only editor. The language alone, not
 * `markdown()`: that one also brings HTML, CSS and JavaScript parsers and
 * HTML tag completion for HTML inside Markdown (40% of this chunk) that a
 * quiet highlight style never shows.
 */
export function markdownSupport(): Extension {
  return [
    new LanguageSupport(markdownLanguage),
    pasteURLAsLink,
    Prec.high(keymap.of(markdownKeymap.map((b) => ({ ...b, run: b.run && editable(b.run) })))),
    syntaxHighlighting(markdownHighlight),
  ]
}
