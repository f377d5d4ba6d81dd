/**
 * murmur's light editor theme: a centred, readable column, calm colours,
 * remote carets whose name labels show while that person is active or on
 * hover, markers for collaborators editing out of sight, and the search panel.
 */
import { EditorView } from '@codemirror/view'
import type { Extension } from '@codemirror/state'

/** The editor chrome: fonts, spacing, selection, cursor and remote-caret labels. */
export const murmurTheme: Extension = EditorView.theme(
  {
    '&': {
      color: '#1f2328',
      backgroundColor: 'transparent',
      fontSize: '17px',
      height: '100%',
    },
    '&.cm-focused': { outline: 'none' },
    '.cm-scroller': {
      fontFamily: 'var(--font-text)',
      lineHeight: '1.65',
      overflow: 'auto',
    },
    '.cm-content': {
      maxWidth: '46rem',
      margin: '0 auto',
      padding: '2.5rem 1.5rem 40vh',
      caretColor: 'var(--accent)',
    },
    '.cm-line': { padding: '0' },
    '.cm-cursor, .cm-dropCursor': { borderLeftColor: 'var(--accent)', borderLeftWidth: '2px' },
    '&.cm-focused > .cm-scroller > .cm-selectionLayer .cm-selectionBackground, .cm-selectionBackground, ::selection': {
      backgroundColor: '#cfe3ff !important',
    },
    '.cm-activeLine': { backgroundColor: 'transparent' },
    '.cm-placeholder': { color: 'var(--ink-faint)', fontStyle: 'italic' },
    // Remote carets (y-codemirror.next): thicker caret; the name label only while active (see remote-carets.ts) or hovered.
    '.cm-ySelectionCaret': {
      display: 'inline-block',
      position: 'relative',
      width: '0',
      height: '1.2em',
      verticalAlign: 'text-bottom',
      borderLeftWidth: '2px',
      borderLeftStyle: 'solid',
      borderRightWidth: '0',
      marginLeft: '-1px',
      marginRight: '-1px',
    },
    '.cm-ySelectionCaret::before': {
      content: '""',
      position: 'absolute',
      top: '0',
      bottom: '0',
      left: '-4px',
      width: '8px',
    },
    '.cm-ySelectionCaret-active > .cm-ySelectionInfo, .cm-ySelectionCaret:hover > .cm-ySelectionInfo': { opacity: '1' },
    '.cm-ySelectionInfo': {
      opacity: '0',
      transition: 'opacity 0.2s',
      top: '-1.45em',
      left: '-2px',
      padding: '1px 6px',
      borderRadius: '4px 4px 4px 0',
      fontFamily: 'var(--font-ui)',
      fontSize: '11px',
      fontWeight: '600',
      letterSpacing: '0.01em',
      lineHeight: '1.4',
      boxShadow: '0 1px 2px rgba(0,0,0,.15)',
      color: '#fff',
      backgroundColor: 'inherit',
      whiteSpace: 'nowrap',
      pointerEvents: 'none',
    },
    '.cm-ySelectionCaretDot': { display: 'none' },
    '.cm-remoteOffscreen-marker': {
      position: 'absolute',
      right: '16px',
      zIndex: '5',
      border: '0',
      borderRadius: '999px',
      padding: '3px 10px',
      color: '#fff',
      fontFamily: 'var(--font-ui)',
      fontSize: '12px',
      fontWeight: '600',
      boxShadow: '0 1px 3px rgba(0,0,0,.25)',
      cursor: 'pointer',
    },
    '.cm-remoteOffscreen-marker:focus-visible': { outline: '2px solid var(--accent)', outlineOffset: '2px' },
    '.cm-panels': { backgroundColor: 'var(--bg)', fontFamily: 'var(--font-ui)', fontSize: '14px' },
    '.cm-panels-top': { borderBottom: '1px solid var(--line)' },
    '.cm-search': { padding: '6px 10px', display: 'flex', flexWrap: 'wrap', alignItems: 'center', gap: '4px 6px' },
    '.cm-search input, .cm-search button, .cm-search label': { fontSize: '13px' },
    '.cm-textfield': { border: '1px solid var(--line-strong)', borderRadius: '6px', padding: '3px 6px', backgroundColor: 'var(--surface)' },
    '.cm-button': { border: '1px solid var(--line-strong)', borderRadius: '6px', backgroundImage: 'none', backgroundColor: 'var(--surface)', padding: '3px 8px' },
  },
  { dark: false },
)
