/**
 * `<link rel="modulepreload">` in index.html for chunks the entry imports
 * dynamically (the document page), so a document link fetches its code in
 * parallel with the entry instead of after it. Their CSS gets
 * `<link rel="preload" as="style">` (applied when the chunk is imported).
 */
import type { HtmlTagDescriptor, Plugin } from 'vite'
import type { OutputChunk } from 'rolldown'

/** Vite plugin: preloads the chunks whose entry module path ends with one of `modules`, and their static imports. */
export function preloadDynamic(modules: string[]): Plugin {
  let base = '/'
  return {
    name: 'murmur:preload-dynamic',
    apply: 'build',
    configResolved(config) {
      base = config.base
    },
    transformIndexHtml: {
      order: 'post',
      handler(_html, ctx) {
        const bundle = ctx.bundle
        if (!bundle || !ctx.chunk) return []
        const chunks = Object.values(bundle).filter((c): c is OutputChunk => c.type === 'chunk')
        const byName = new Map(chunks.map((c) => [c.fileName, c]))
        const wanted = new Set<string>()
        const add = (c: OutputChunk) => {
          if (c.fileName === ctx.chunk!.fileName || wanted.has(c.fileName)) return
          wanted.add(c.fileName)
          for (const dep of c.imports) if (byName.has(dep)) add(byName.get(dep)!)
        }
        for (const c of chunks) if (c.facadeModuleId && modules.some((m) => c.facadeModuleId!.endsWith(m))) add(c)
        if (!wanted.size) throw new Error(`preloadDynamic: no chunk for ${modules.join(', ')}`)
        const tags: HtmlTagDescriptor[] = []
        for (const file of wanted) {
          tags.push({ tag: 'link', attrs: { rel: 'modulepreload', crossorigin: true, href: base + file }, injectTo: 'head' })
          const css = (byName.get(file) as OutputChunk & { viteMetadata?: { importedCss: Set<string> } }).viteMetadata?.importedCss ?? []
          for (const f of css) tags.push({ tag: 'link', attrs: { rel: 'preload', as: 'style', href: base + f }, injectTo: 'head' })
        }
        return tags
      },
    },
  }
}
