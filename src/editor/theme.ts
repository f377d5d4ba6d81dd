/**
 * murmur's light editor theme: a centred, readable column, calm colours,
 * and remote carets whose name labels are always visible.
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
    '.cm-placeholder': { color: '#8c959f', fontStyle: 'italic' },
    // Remote carets (y-codemirror.next): thicker caret, name label always shown.
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
    '.cm-ySelectionInfo': {
      opacity: '1',
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
  },
  { dark: false },
)
