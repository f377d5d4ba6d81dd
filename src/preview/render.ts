/**
 * Markdown → safe HTML for the preview panel. markdown-it renders (inline
 * HTML included, as GitHub does) with its own link validation; DOMPurify then
 * removes anything executable (scripts, event handlers, `javascript:` URLs).
 * Loaded with `import()` the first time a preview opens, so the editor's
 * first paint does not pay for it.
 */
import MarkdownIt from 'markdown-it'
import DOMPurify from 'dompurify'

const md = new MarkdownIt({ html: true, linkify: true, typographer: false })

/** Links open in a new tab without handing it this page. */
DOMPurify.addHook('afterSanitizeAttributes', (node) => {
  if (node.tagName === 'A' && node.hasAttribute('href')) {
    node.setAttribute('target', '_blank')
    node.setAttribute('rel', 'noopener noreferrer nofollow')
  }
})

/** Renders `markdown` to sanitised HTML (a string safe to assign to `innerHTML`). */
export function renderMarkdown(markdown: string): string {
  return DOMPurify.sanitize(md.render(markdown), { USE_PROFILES: { html: true }, ADD_ATTR: ['target'] })
}
