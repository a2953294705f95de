// Keys for the graphical console: X11 keysyms with the physical key (KeyboardEvent.code).
// QEMU's VNC server takes the physical key as a scancode (QEMU extended key events), so what
// the guest sees does not depend on QEMU's keymap; text is typed as a US keyboard would.

export interface Key {
  keysym: number;
  code: string;
}

export const K = {
  ctrl: { keysym: 0xffe3, code: 'ControlLeft' },
  alt: { keysym: 0xffe9, code: 'AltLeft' },
  shift: { keysym: 0xffe1, code: 'ShiftLeft' },
  super: { keysym: 0xffeb, code: 'MetaLeft' },
  del: { keysym: 0xffff, code: 'Delete' },
  backspace: { keysym: 0xff08, code: 'Backspace' },
  tab: { keysym: 0xff09, code: 'Tab' },
  enter: { keysym: 0xff0d, code: 'Enter' },
  escape: { keysym: 0xff1b, code: 'Escape' },
  print: { keysym: 0xff61, code: 'PrintScreen' },
  sysrq: { keysym: 0xff15, code: 'PrintScreen' },
  space: { keysym: 0x20, code: 'Space' },
} satisfies Record<string, Key>;

export function fkey(n: number): Key {
  return { keysym: 0xffbe + n - 1, code: `F${n}` };
}

/** A key combination: the keys are pressed in order and released in reverse. */
export interface Combo {
  id: string;
  label: string;
  keys: Key[];
  hint?: string;
}

export const COMBOS: Combo[] = [
  { id: 'ctrl-alt-del', label: 'Ctrl+Alt+Del', keys: [K.ctrl, K.alt, K.del], hint: 'Reboot, or the login screen (also Ctrl+Alt+End)' },
  {
    id: 'ctrl-alt-backspace',
    label: 'Ctrl+Alt+Backspace',
    keys: [K.ctrl, K.alt, K.backspace],
    hint: 'Restart the X server (where enabled)',
  },
  { id: 'print', label: 'PrintScreen', keys: [K.print] },
  { id: 'alt-sysrq', label: 'Alt+SysRq', keys: [K.alt, K.sysrq] },
  { id: 'super', label: 'Super', keys: [K.super], hint: 'The Windows key' },
  { id: 'alt-tab', label: 'Alt+Tab', keys: [K.alt, K.tab] },
  { id: 'alt-f4', label: 'Alt+F4', keys: [K.alt, fkey(4)] },
  { id: 'escape', label: 'Escape', keys: [K.escape] },
];

/** Ctrl+Alt+F1 … F7: switch the guest's virtual terminal. */
export const VT_COMBOS: Combo[] = [1, 2, 3, 4, 5, 6, 7].map((n) => ({
  id: `ctrl-alt-f${n}`,
  label: `F${n}`,
  keys: [K.ctrl, K.alt, fkey(n)],
  hint: `Ctrl+Alt+F${n}`,
}));

// ---- text -----------------------------------------------------------------------------

/** US layout: the character a key gives without and with Shift. */
const US_ROWS: Array<[string, string, string]> = [
  ['Backquote', '`', '~'],
  ['Digit1', '1', '!'],
  ['Digit2', '2', '@'],
  ['Digit3', '3', '#'],
  ['Digit4', '4', '$'],
  ['Digit5', '5', '%'],
  ['Digit6', '6', '^'],
  ['Digit7', '7', '&'],
  ['Digit8', '8', '*'],
  ['Digit9', '9', '('],
  ['Digit0', '0', ')'],
  ['Minus', '-', '_'],
  ['Equal', '=', '+'],
  ['BracketLeft', '[', '{'],
  ['BracketRight', ']', '}'],
  ['Backslash', '\\', '|'],
  ['Semicolon', ';', ':'],
  ['Quote', "'", '"'],
  ['Comma', ',', '<'],
  ['Period', '.', '>'],
  ['Slash', '/', '?'],
  ['Space', ' ', ' '],
];

interface Stroke {
  key: Key;
  shift: boolean;
}

const US = new Map<string, Stroke>();
for (const [code, plain, shifted] of US_ROWS) {
  US.set(plain, { key: { keysym: plain.charCodeAt(0), code }, shift: false });
  if (shifted !== plain) US.set(shifted, { key: { keysym: shifted.charCodeAt(0), code }, shift: true });
}
for (let c = 0; c < 26; c++) {
  const lower = String.fromCharCode(97 + c);
  const upper = String.fromCharCode(65 + c);
  const code = `Key${upper}`;
  US.set(lower, { key: { keysym: lower.charCodeAt(0), code }, shift: false });
  US.set(upper, { key: { keysym: upper.charCodeAt(0), code }, shift: true });
}
US.set('\n', { key: K.enter, shift: false });
US.set('\t', { key: K.tab, shift: false });

/** How to type one character on a US keyboard, or null if it has no key there. */
export function strokeOf(ch: string): Stroke | null {
  return US.get(ch) ?? null;
}

/** Normalizes pasted text: CRLF/CR line ends become Enter presses. */
export function normalizeText(text: string): string {
  return text.replace(/\r\n?/g, '\n');
}

/** Characters of the text that a US keyboard cannot type (shown, then skipped). */
export function untypeable(text: string): string[] {
  const bad = new Set<string>();
  for (const ch of normalizeText(text)) if (!US.has(ch)) bad.add(ch);
  return [...bad];
}
