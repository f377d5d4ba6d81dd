/** Human names of the caret palette's colours, for accessible names and tooltips (hex codes mean nothing read aloud). */
import { PALETTE } from '../session/presence.ts'

const NAMES: Record<(typeof PALETTE)[number], string> = {
  '#d9480f': 'Rust',
  '#e8590c': 'Orange',
  '#c2255c': 'Raspberry',
  '#a61e4d': 'Wine',
  '#9c36b5': 'Grape',
  '#6741d9': 'Violet',
  '#3b5bdb': 'Indigo',
  '#1971c2': 'Blue',
  '#0c8599': 'Cyan',
  '#099268': 'Teal',
  '#2b8a3e': 'Green',
  '#5c940d': 'Olive',
  '#e67700': 'Amber',
  '#862e9c': 'Plum',
}

/** The name of a palette colour ("Indigo"), or "Custom colour" for anything else. */
export function colourName(color: string): string {
  return NAMES[color.toLowerCase() as keyof typeof NAMES] ?? 'Custom colour'
}
