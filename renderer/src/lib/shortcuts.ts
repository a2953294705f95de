// Keyboard shortcuts. Ctrl+Shift+letter combinations are free in Chromium, Electron's default
// menu and terminals alike, so they also work while the serial console has focus.

export type ShortcutAction = 'new' | 'start' | 'stop' | 'pause' | 'kill' | 'edit' | 'delete';

export const SHORTCUT_LABEL: Record<ShortcutAction, string> = {
  new: 'Ctrl+N',
  start: 'Ctrl+Shift+S',
  stop: 'Ctrl+Shift+E',
  pause: 'Ctrl+Shift+P',
  kill: 'Ctrl+Shift+K',
  edit: 'F2',
  delete: 'Delete',
};

function inTerminal(e: KeyboardEvent): boolean {
  return e.target instanceof Element && e.target.closest('.xterm') !== null;
}

function inField(e: KeyboardEvent): boolean {
  const t = e.target;
  if (!(t instanceof HTMLElement)) return false;
  return t.isContentEditable || ['INPUT', 'TEXTAREA', 'SELECT'].includes(t.tagName) || inTerminal(e);
}

/** Which app action a key press means, if any. */
export function shortcutOf(e: KeyboardEvent): ShortcutAction | null {
  if (e.altKey || e.metaKey || e.isComposing) return null;
  const key = e.key.toLowerCase();
  if (e.ctrlKey && e.shiftKey) {
    if (key === 's') return 'start';
    if (key === 'e') return 'stop';
    if (key === 'p') return 'pause';
    if (key === 'k') return 'kill';
    return null;
  }
  // Ctrl+N belongs to the guest (e.g. shell history) while typing in the console
  if (e.ctrlKey && key === 'n' && !inTerminal(e)) return 'new';
  if (!e.ctrlKey && !e.shiftKey && !inField(e)) {
    if (e.key === 'F2') return 'edit';
    if (e.key === 'Delete') return 'delete';
  }
  return null;
}

/** For xterm's key handler: true when the key is ours, not the guest's. */
export function isAppShortcut(e: KeyboardEvent): boolean {
  return e.ctrlKey && e.shiftKey && !e.altKey && !e.metaKey && ['s', 'e', 'p', 'k'].includes(e.key.toLowerCase());
}

/** A modal dialog is open: shortcuts are off. */
export function dialogOpen(): boolean {
  return document.querySelector('dialog[open]') !== null;
}
