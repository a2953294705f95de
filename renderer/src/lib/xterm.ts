// xterm.js as every console of Corral uses it (serial, host shell, ssh): one look, and the
// same hardening. What runs on the other side (a guest, a remote shell) is not trusted:
//   - no clipboard addon, and OSC 52 (clipboard read/write by escape codes) is swallowed;
//   - no web-links addon; OSC 8 hyperlinks open only http(s), in a new window without opener,
//     and the target shows on hover before anyone clicks;
//   - window manipulation reports (CSI t) stay off (xterm's default).
import { Terminal, type ITerminalOptions } from '@xterm/xterm';
import { isAppShortcut } from './shortcuts';
import { isConsoleShortcut } from './console-keys';

export const TERM_BG = '#16161a';

export const THEME = {
  background: TERM_BG,
  foreground: '#e4e4e8',
  cursor: '#e4e4e8',
  cursorAccent: TERM_BG,
  selectionBackground: 'rgba(120, 160, 255, 0.35)',
  black: '#2e2e35',
  red: '#f0616d',
  green: '#5fd38d',
  yellow: '#f2c45b',
  blue: '#6aa5f5',
  magenta: '#c58af0',
  cyan: '#4fd1d9',
  white: '#d4d4da',
  brightBlack: '#6c6c78',
  brightRed: '#ff8a94',
  brightGreen: '#86e8ad',
  brightYellow: '#ffd97e',
  brightBlue: '#93c0ff',
  brightMagenta: '#dcaeff',
  brightCyan: '#7eeaf0',
  brightWhite: '#ffffff',
};

/** Lines kept per terminal: bounds memory whatever the guest prints. */
export const SCROLLBACK = 5000;

/**
 * A hardened terminal. `linkTitle` is told what an OSC 8 link points to while hovered (null
 * when it leaves), so the UI can show it.
 */
export function createTerminal(linkTitle: (uri: string | null) => void, extra: ITerminalOptions = {}): Terminal {
  const t = new Terminal({
    scrollback: SCROLLBACK,
    fontFamily: "ui-monospace, 'DejaVu Sans Mono', 'Liberation Mono', Menlo, Consolas, monospace",
    fontSize: 13,
    lineHeight: 1.15,
    cursorBlink: true,
    cursorStyle: 'block',
    cursorInactiveStyle: 'outline',
    theme: THEME,
    allowProposedApi: false,
    linkHandler: {
      activate(_e, uri) {
        if (/^https?:\/\//i.test(uri)) window.open(uri, '_blank', 'noopener,noreferrer');
      },
      hover(_e, uri) {
        linkTitle(`Open ${uri}`);
      },
      leave() {
        linkTitle(null);
      },
      allowNonHttpProtocols: false,
    },
    ...extra,
  });
  // OSC 52 would let the guest read or write the clipboard: swallow it
  t.parser.registerOscHandler(52, () => true);
  t.attachCustomKeyEventHandler((e) => {
    // app and console shortcuts stay with the app (not typed into the guest)
    if (isAppShortcut(e) || isConsoleShortcut(e)) return false;
    // Ctrl+Shift+C copies the selection, as in desktop terminals (Ctrl+C goes to the guest)
    if (e.type === 'keydown' && e.ctrlKey && e.shiftKey && !e.altKey && e.key.toLowerCase() === 'c') {
      if (t.hasSelection()) void navigator.clipboard?.writeText(t.getSelection()).catch(() => {});
      return false;
    }
    return true;
  });
  return t;
}

/** The whole scrollback as text (only the viewport is in the DOM). */
export function bufferText(t: Terminal): string {
  const b = t.buffer.active;
  const lines: string[] = [];
  for (let i = 0; i < b.length; i++) {
    const line = b.getLine(i);
    if (!line) continue;
    const text = line.translateToString(true);
    if (line.isWrapped && lines.length) lines[lines.length - 1] += text;
    else lines.push(text);
  }
  return lines.join('\n');
}

/**
 * For tests, benchmarks and debugging from the devtools: the element carries `bufferText` and
 * the terminal itself (`xterm`), neither enumerable.
 */
export function exposeTerminal(el: HTMLElement, t: Terminal): void {
  Object.defineProperty(el, 'bufferText', { configurable: true, get: () => bufferText(t) });
  Object.defineProperty(el, 'xterm', { configurable: true, get: () => t });
}

/** Keys typed into xterm as bytes: text is UTF-8, binary (onBinary) is one byte per char. */
export function binaryToBytes(data: string): Uint8Array {
  const bytes = new Uint8Array(data.length);
  for (let i = 0; i < data.length; i++) bytes[i] = data.charCodeAt(i) & 0xff;
  return bytes;
}
