// Shortcuts of the console area. Like the app's own (lib/shortcuts), they are Ctrl+Shift
// combinations, which neither Chromium nor a guest's shell uses, so they work while a console
// has the keyboard; they are taken before the terminal or the display sees them.

export type ConsoleShortcut =
  { kind: 'show'; console: 'serial' | 'display' | 'terminal' | 'monitor' } | { kind: 'split' } | { kind: 'fullscreen' };

export const CONSOLE_KEYS = {
  serial: 'Ctrl+Shift+1',
  display: 'Ctrl+Shift+2',
  terminal: 'Ctrl+Shift+3',
  monitor: 'Ctrl+Shift+4',
  split: 'Ctrl+Shift+L',
  fullscreen: 'Ctrl+Shift+F',
  ctrlAltDel: 'Ctrl+Alt+End',
} as const;

const BY_DIGIT = { Digit1: 'serial', Digit2: 'display', Digit3: 'terminal', Digit4: 'monitor' } as const;

/** The console shortcut a key press means, if any (keydown only). */
export function consoleShortcutOf(e: KeyboardEvent): ConsoleShortcut | null {
  if (e.type !== 'keydown' || !e.ctrlKey || !e.shiftKey || e.altKey || e.metaKey || e.isComposing) return null;
  // by physical key: Shift+1 is "!" on one layout and "1" on another
  const c = BY_DIGIT[e.code as keyof typeof BY_DIGIT];
  if (c) return { kind: 'show', console: c };
  if (e.code === 'KeyL') return { kind: 'split' };
  if (e.code === 'KeyF') return { kind: 'fullscreen' };
  return null;
}

export function isConsoleShortcut(e: KeyboardEvent): boolean {
  return consoleShortcutOf(e) !== null;
}

/** Ctrl+Alt+End in the display sends Ctrl+Alt+Del (which the host's own desktop would take). */
export function isCtrlAltEnd(e: KeyboardEvent): boolean {
  return e.type === 'keydown' && e.ctrlKey && e.altKey && !e.metaKey && e.code === 'End';
}
