// The graphical console of one VM: noVNC's RFB client on the host's VNC bridge. Every
// connection needs a fresh one-shot ticket (console.ticket); the link connects while it is
// wanted (VM running and the console shown) and reconnects by itself when the connection
// drops (host restarted, VM restarted by its policy), with a new ticket each time.
import RFB from '@novnc/novnc';
import { ApiCallError, errorMessage, type ApiClient } from './api';
import { K, strokeOf, normalizeText, type Combo, type Key } from './keysyms';

export type DisplayStatus =
  | { kind: 'idle' }
  | { kind: 'connecting' }
  | { kind: 'connected' }
  | { kind: 'reconnecting'; attempt: number; reason: string; retryAt: number };

export type ScaleMode = 'fit' | 'native';

/** Delay before the n-th reconnection attempt (n from 1). */
function backoff(n: number): number {
  return Math.min(250 * 2 ** (n - 1), 4000);
}

/** How long a hidden console keeps its connection (switching tabs back is then instant). */
const HIDDEN_GRACE_MS = 15_000;
/** Pace of typed text: QEMU's PS/2 keyboard holds only a few scancodes at a time. */
const CHAR_MS = 8;

function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}

/** noVNC takes its canvas out of the page when disconnected: keep a picture of it. */
function snapshot(rfb: RFB): string | null {
  const canvas = (rfb as unknown as { _canvas?: HTMLCanvasElement })._canvas;
  try {
    return canvas && canvas.width > 1 ? canvas.toDataURL('image/png') : null;
  } catch {
    return null;
  }
}

/**
 * Opens the console's WebSocket and waits for the VNC server's greeting before noVNC gets it:
 * a bridge that is refused or closes at once (a VM that just stopped, a host restarting) is
 * then a plain retry, not a failed RFB session.
 */
function openVnc(url: string, timeoutMs = 10_000): Promise<{ ws: WebSocket; hello: unknown }> {
  return new Promise((resolve, reject) => {
    const ws = new WebSocket(url, ['binary']);
    ws.binaryType = 'arraybuffer';
    const done = () => {
      clearTimeout(timer);
      ws.onmessage = ws.onclose = ws.onerror = null;
    };
    const timer = setTimeout(() => {
      done();
      ws.close();
      reject(new Error('the display did not answer'));
    }, timeoutMs);
    ws.onmessage = (e) => {
      done();
      resolve({ ws, hello: e.data });
    };
    ws.onclose = (e) => {
      done();
      reject(new Error(e.code === 1006 ? 'the display refused the connection' : `the display closed the connection (${e.code})`));
    };
    // a 'close' always follows an 'error'
    ws.onerror = () => {};
  });
}

export function wsOrigin(): string {
  return `${location.protocol === 'https:' ? 'wss:' : 'ws:'}//${location.host}`;
}

export class DisplayLink {
  status = $state<DisplayStatus>({ kind: 'idle' });
  /** The guest's screen size, once known. */
  size = $state<{ width: number; height: number } | null>(null);
  /** Connected at least once: a reconnection keeps showing the last picture. */
  everConnected = $state(false);
  /** The last picture before the connection dropped (a data: URL), shown while reconnecting. */
  lastFrame = $state<string | null>(null);
  /** Typing text into the guest: progress, or null. */
  typing = $state<{ done: number; total: number } | null>(null);
  /** Completed framebuffer updates, for the frame rate (not reactive: it changes every frame). */
  frames = 0;

  #api: ApiClient;
  #vmId: string;
  #target: HTMLElement;
  #rfb: RFB | null = null;
  #want = false;
  #gen = 0;
  #attempt = 0;
  #retryTimer: ReturnType<typeof setTimeout> | null = null;
  #graceTimer: ReturnType<typeof setTimeout> | null = null;
  #scale: ScaleMode = 'fit';
  #sizeObserver: MutationObserver | null = null;
  #disposed = false;

  constructor(api: ApiClient, vmId: string, target: HTMLElement) {
    this.#api = api;
    this.#vmId = vmId;
    this.#target = target;
  }

  get connected(): boolean {
    return this.status.kind === 'connected';
  }

  /**
   * Connect (true) or let go (false). A console that is merely hidden keeps its connection for
   * a while; `now` drops it at once (the VM stopped).
   */
  setWanted(want: boolean, now = false): void {
    if (this.#disposed) return;
    if (want) {
      this.#clearGrace();
      if (this.#want) return;
      this.#want = true;
      if (!this.#rfb && !this.#retryTimer) {
        this.#attempt = 0;
        void this.#connect();
      }
      return;
    }
    if (!this.#want) return;
    if (now) {
      this.#drop();
    } else if (!this.#graceTimer) {
      this.#graceTimer = setTimeout(() => {
        this.#graceTimer = null;
        this.#drop();
      }, HIDDEN_GRACE_MS);
    }
  }

  /** Try again now instead of waiting for the backoff. */
  retryNow(): void {
    if (!this.#want || this.#rfb) return;
    this.#clearRetry();
    void this.#connect();
  }

  setScale(mode: ScaleMode): void {
    this.#scale = mode;
    if (this.#rfb) this.#applyScale(this.#rfb);
  }

  focus(): void {
    this.#rfb?.focus({ preventScroll: true });
  }

  /** Presses the keys in order and releases them in reverse. */
  sendCombo(combo: Combo | Key[]): void {
    const rfb = this.#rfb;
    if (!rfb || !this.connected) return;
    const keys = Array.isArray(combo) ? combo : combo.keys;
    for (const k of keys) rfb.sendKey(k.keysym, k.code, true);
    for (const k of [...keys].reverse()) rfb.sendKey(k.keysym, k.code, false);
  }

  /**
   * Types text into the guest as key presses on a US keyboard. Characters without a key there
   * are skipped. Resolves with the number of characters typed; stops early when `signal`
   * aborts or the connection drops.
   */
  async typeText(text: string, signal?: AbortSignal): Promise<number> {
    const chars = [...normalizeText(text)];
    this.typing = { done: 0, total: chars.length };
    let typed = 0;
    try {
      for (let i = 0; i < chars.length; i++) {
        if (signal?.aborted) break;
        const rfb = this.#rfb;
        if (!rfb || !this.connected) throw new Error('The display disconnected while typing');
        const s = strokeOf(chars[i]);
        if (s) {
          if (s.shift) rfb.sendKey(K.shift.keysym, K.shift.code, true);
          rfb.sendKey(s.key.keysym, s.key.code, true);
          rfb.sendKey(s.key.keysym, s.key.code, false);
          if (s.shift) rfb.sendKey(K.shift.keysym, K.shift.code, false);
          typed++;
          await sleep(chars[i] === '\n' ? CHAR_MS * 4 : CHAR_MS);
        }
        if (i % 8 === 0) this.typing = { done: i + 1, total: chars.length };
      }
      return typed;
    } finally {
      this.typing = null;
    }
  }

  /** The screen as PNG, straight from QEMU (works whether or not we are connected). */
  async screenshot(): Promise<Blob> {
    const { png } = await this.#api.call('vm.screenshot', { vm: this.#vmId });
    const bin = atob(png);
    const bytes = new Uint8Array(bin.length);
    for (let i = 0; i < bin.length; i++) bytes[i] = bin.charCodeAt(i);
    return new Blob([bytes], { type: 'image/png' });
  }

  dispose(): void {
    this.#disposed = true;
    this.#want = false;
    this.#gen++;
    this.#clearRetry();
    this.#clearGrace();
    this.#sizeObserver?.disconnect();
    const rfb = this.#rfb;
    this.#rfb = null;
    rfb?.disconnect();
  }

  #drop(): void {
    this.#want = false;
    this.#gen++;
    this.#clearRetry();
    this.#clearGrace();
    const rfb = this.#rfb;
    this.#rfb = null;
    this.status = { kind: 'idle' };
    rfb?.disconnect();
  }

  async #connect(): Promise<void> {
    const gen = ++this.#gen;
    this.#clearRetry();
    if (this.#attempt === 0) this.status = { kind: 'connecting' };
    let url: string;
    try {
      const t = await this.#api.call('console.ticket', { vm: this.#vmId });
      url = (t.base ?? wsOrigin()) + t.path;
    } catch (err) {
      if (gen !== this.#gen || !this.#want) return;
      // conflict: not running (yet, or any more); the owner follows the VM's state
      this.#retry(err instanceof ApiCallError && err.code === 'conflict' ? 'the VM is not running' : errorMessage(err));
      return;
    }
    if (gen !== this.#gen || !this.#want || this.#disposed) return;
    let opened: { ws: WebSocket; hello: unknown };
    try {
      opened = await openVnc(url);
    } catch (err) {
      if (gen === this.#gen) this.#retry(errorMessage(err));
      return;
    }
    if (gen !== this.#gen || !this.#want || this.#disposed) {
      opened.ws.close();
      return;
    }
    // the host says why it closed a console of a VM on another host (it moved, its host died)
    let closedBecause = '';
    opened.ws.addEventListener('close', (e) => (closedBecause = e.reason));
    let rfb: RFB;
    try {
      rfb = new RFB(this.#target, opened.ws, { shared: true });
      // noVNC took over the socket: give it the greeting we waited for
      opened.ws.dispatchEvent(new MessageEvent('message', { data: opened.hello }));
    } catch (err) {
      opened.ws.close();
      this.#retry(errorMessage(err));
      return;
    }
    this.#rfb = rfb;
    rfb.background = '#0c0c0f';
    rfb.focusOnClick = true;
    rfb.showDotCursor = true;
    rfb.qualityLevel = 6;
    rfb.compressionLevel = 2;
    this.#applyScale(rfb);
    this.#countFrames(rfb);
    this.#watchSize();
    rfb.addEventListener('connect', () => {
      if (this.#rfb !== rfb) return;
      this.#attempt = 0;
      this.everConnected = true;
      this.status = { kind: 'connected' };
      this.lastFrame = null;
      this.#readSize();
    });
    rfb.addEventListener('disconnect', (e) => {
      if (this.#rfb !== rfb) return;
      this.#rfb = null;
      this.lastFrame = this.everConnected ? snapshot(rfb) : null;
      if (!this.#want || this.#disposed) {
        this.status = { kind: 'idle' };
        return;
      }
      this.#retry(closedBecause || (e.detail.clean ? 'the connection closed' : 'the connection dropped'));
    });
    // never let the guest write to this machine's clipboard
    rfb.addEventListener('clipboard', () => {});
  }

  #retry(reason: string): void {
    if (!this.#want || this.#disposed) return;
    this.#attempt++;
    const delay = backoff(this.#attempt);
    this.status = { kind: 'reconnecting', attempt: this.#attempt, reason, retryAt: Date.now() + delay };
    this.#clearRetry();
    this.#retryTimer = setTimeout(() => {
      this.#retryTimer = null;
      if (this.#want && !this.#rfb) void this.#connect();
    }, delay);
  }

  #applyScale(rfb: RFB): void {
    rfb.scaleViewport = this.#scale === 'fit';
    rfb.clipViewport = false;
    rfb.resizeSession = false;
  }

  /** noVNC has no event per frame: count the flips of its display (each ends one update). */
  #countFrames(rfb: RFB): void {
    const display = (rfb as unknown as { _display?: { flip?: (...a: unknown[]) => unknown } })._display;
    const flip = display?.flip;
    if (!display || typeof flip !== 'function') return;
    display.flip = (...a: unknown[]) => {
      this.frames++;
      return flip.apply(display, a);
    };
  }

  /** The canvas is sized to the guest's screen: follow its size. */
  #watchSize(): void {
    if (this.#sizeObserver) return;
    this.#sizeObserver = new MutationObserver(() => this.#readSize());
    this.#sizeObserver.observe(this.#target, { subtree: true, childList: true, attributes: true, attributeFilter: ['width', 'height'] });
  }

  #readSize(): void {
    const c = this.#target.querySelector('canvas');
    const next = c && c.width > 0 && c.height > 0 ? { width: c.width, height: c.height } : null;
    if (next?.width !== this.size?.width || next?.height !== this.size?.height) this.size = next;
  }

  #clearRetry(): void {
    if (this.#retryTimer) clearTimeout(this.#retryTimer);
    this.#retryTimer = null;
  }

  #clearGrace(): void {
    if (this.#graceTimer) clearTimeout(this.#graceTimer);
    this.#graceTimer = null;
  }
}
