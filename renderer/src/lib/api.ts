// The typed client for Corral's host API. Two transports carry the same {method, args} /
// {event, payload} messages: the Electron preload bridge (window.corral) and, when the UI is
// served by `corral serve`, a WebSocket authenticated with the token from the URL.
import type {
  ApiError,
  ArgsIn,
  ErrorCode,
  EventMap,
  EventName,
  MethodName,
  ResponseMessage,
  Result,
} from '../../../electron/core/api/contract';
import { uploadFile, type Upload } from './upload';

export type { Upload };

/**
 * A failed call: carries the host's ApiError as it came: code, message, and where there is one
 * the field at fault, the reason (the message without its preamble), the bound crossed and the
 * current value. The page shows these; it never reads them out of the message.
 */
export class ApiCallError extends Error implements ApiError {
  readonly code: ErrorCode;
  readonly field: string | undefined;
  readonly reason: string | undefined;
  readonly limit: number | undefined;
  readonly current: number | undefined;
  readonly method: string;

  constructor(method: string, error: ApiError) {
    super(error.message);
    this.name = 'ApiCallError';
    this.method = method;
    this.code = error.code;
    this.field = error.field;
    this.reason = error.reason;
    this.limit = error.limit;
    this.current = error.current;
  }

  get apiError(): ApiError {
    const { code, message, field, reason, limit, current } = this;
    return {
      code,
      message,
      ...(field !== undefined ? { field } : {}),
      ...(reason !== undefined ? { reason } : {}),
      ...(limit !== undefined ? { limit } : {}),
      ...(current !== undefined ? { current } : {}),
    };
  }
}

/** Normalizes anything thrown into something with a message we can show. */
export function errorMessage(err: unknown): string {
  if (err instanceof Error) return err.message;
  return String(err);
}

export type ConnectionStatus =
  | { kind: 'connecting' }
  | { kind: 'open' }
  | { kind: 'reconnecting'; attempt: number; retryAt: number; everConnected: boolean }
  | { kind: 'no-token' }
  /** The host has users and this browser is not logged in (or its login ended). */
  | { kind: 'login'; ended: boolean };

interface Transport {
  readonly kind: 'electron' | 'websocket';
  start(): void;
  send(method: string, args: unknown): Promise<ResponseMessage>;
  /** Registers the single sink for pushed events. */
  onEvent(sink: (event: string, payload: unknown) => void): void;
  onStatus(sink: (status: ConnectionStatus) => void): void;
  /** Retry now instead of waiting for the backoff (e.g. the user clicked "Retry"). */
  retryNow(): void;
  /** The login ended (logout): drop the connection and ask for a login. */
  loggedOut(): void;
  /** Streams a file into a pool (corral serve only: the desktop app reads host files itself). */
  upload?(pool: string, file: File, onProgress: (sent: number) => void): Upload;
}

// ---- Electron ---------------------------------------------------------------------------

class ElectronTransport implements Transport {
  readonly kind = 'electron';
  private statusSink: (s: ConnectionStatus) => void = () => {};

  constructor(private readonly bridge: CorralBridge) {}

  start(): void {
    this.statusSink({ kind: 'open' });
  }

  async send(method: string, args: unknown): Promise<ResponseMessage> {
    try {
      return await this.bridge.call(method, args);
    } catch (err) {
      return { id: 0, error: { code: 'failed', message: `IPC failed: ${errorMessage(err)}` } };
    }
  }

  onEvent(sink: (event: string, payload: unknown) => void): void {
    this.bridge.on(sink);
  }

  onStatus(sink: (status: ConnectionStatus) => void): void {
    this.statusSink = sink;
  }

  retryNow(): void {}
  loggedOut(): void {}
}

// ---- WebSocket (corral serve) -------------------------------------------------------------

const TOKEN_KEY = 'corral.token';

/** Takes the token from `#token=…` (once, then removes it from the URL) or from this tab's session. */
export function takeToken(): string | null {
  const hash = location.hash.replace(/^#/, '');
  if (hash) {
    const params = new URLSearchParams(hash);
    const token = params.get('token');
    if (token) {
      sessionStorage.setItem(TOKEN_KEY, token);
      params.delete('token');
      const rest = params.toString();
      history.replaceState(history.state, '', location.pathname + location.search + (rest ? `#${rest}` : ''));
      return token;
    }
  }
  return sessionStorage.getItem(TOKEN_KEY);
}

interface Pending {
  method: string;
  resolve: (msg: ResponseMessage) => void;
}

class WebSocketTransport implements Transport {
  readonly kind = 'websocket';
  private ws: WebSocket | null = null;
  private nextId = 1;
  private pending = new Map<number, Pending>();
  private waiters: Array<() => void> = [];
  private attempt = 0;
  private everConnected = false;
  private timer: ReturnType<typeof setTimeout> | null = null;
  private eventSink: (event: string, payload: unknown) => void = () => {};
  private statusSink: (s: ConnectionStatus) => void = () => {};

  /** token null: the browser's login cookie authenticates (or a login is needed). */
  constructor(private readonly token: string | null) {}

  private listening = false;

  upload(pool: string, file: File, onProgress: (sent: number) => void): Upload {
    return uploadFile(this.token, pool, file, onProgress);
  }

  start(): void {
    this.statusSink({ kind: 'connecting' });
    void this.connect();
    if (this.listening) return;
    this.listening = true;
    // come back quickly when the machine wakes up or the network returns
    window.addEventListener('online', () => this.retryNow());
    document.addEventListener('visibilitychange', () => {
      if (document.visibilityState === 'visible') this.retryNow();
    });
  }

  retryNow(): void {
    if (this.ws || !this.timer) return;
    clearTimeout(this.timer);
    this.timer = null;
    void this.connect();
  }

  loggedOut(): void {
    if (this.timer) clearTimeout(this.timer);
    this.timer = null;
    const ws = this.ws;
    this.ws = null;
    ws?.close();
    this.statusSink({ kind: 'login', ended: true });
  }

  private url(): string {
    const proto = location.protocol === 'https:' ? 'wss:' : 'ws:';
    return `${proto}//${location.host}/api${this.token ? `?token=${encodeURIComponent(this.token)}` : ''}`;
  }

  /** Whether the host would take this connection; when not, says why (a login is needed, or a token). */
  private async admitted(): Promise<boolean> {
    let me: { users: boolean; identity: unknown };
    try {
      const res = await fetch('/api/me', { headers: this.token ? { authorization: `Bearer ${this.token}` } : {}, cache: 'no-store' });
      if (!res.ok) return true; // an older host: let the socket say
      me = (await res.json()) as typeof me;
    } catch {
      return true; // the host is down: the reconnect loop shows it
    }
    if (me.identity) return true;
    this.statusSink(me.users ? { kind: 'login', ended: this.everConnected } : { kind: 'no-token' });
    return false;
  }

  private async connect(): Promise<void> {
    if (!(await this.admitted())) return;
    let ws: WebSocket;
    try {
      ws = new WebSocket(this.url());
    } catch {
      this.scheduleReconnect();
      return;
    }
    this.ws = ws;
    ws.onopen = () => {
      this.attempt = 0;
      this.everConnected = true;
      this.statusSink({ kind: 'open' });
      for (const w of this.waiters.splice(0)) w();
    };
    ws.onmessage = (ev) => this.receive(ev.data);
    ws.onclose = (ev) => {
      if (this.ws !== ws) return;
      this.ws = null;
      // 4401: the login ended (logout elsewhere, expiry, the user removed)
      // calls in flight are lost with the connection; their callers get a clear error
      const lost = [...this.pending.entries()];
      this.pending.clear();
      for (const [id, p] of lost) {
        p.resolve({ id, error: { code: 'failed', message: 'Lost the connection to the Corral host' } });
      }
      if (ev.code === 4401) this.statusSink({ kind: 'login', ended: true });
      else this.scheduleReconnect();
    };
  }

  private scheduleReconnect(): void {
    const delay = Math.min(500 * 2 ** this.attempt, 10_000) * (0.8 + Math.random() * 0.4);
    this.attempt++;
    this.statusSink({
      kind: 'reconnecting',
      attempt: this.attempt,
      retryAt: Date.now() + delay,
      everConnected: this.everConnected,
    });
    this.timer = setTimeout(() => {
      this.timer = null;
      void this.connect();
    }, delay);
  }

  private receive(data: unknown): void {
    if (typeof data !== 'string') return;
    let msg: unknown;
    try {
      msg = JSON.parse(data);
    } catch {
      console.warn('corral: ignoring a malformed message from the host');
      return;
    }
    if (!msg || typeof msg !== 'object') return;
    const m = msg as Record<string, unknown>;
    if (typeof m.event === 'string') {
      this.eventSink(m.event, m.payload);
    } else if (typeof m.id === 'number') {
      const p = this.pending.get(m.id);
      if (!p) return;
      this.pending.delete(m.id);
      p.resolve(m as unknown as ResponseMessage);
    }
  }

  private whenOpen(timeoutMs: number): Promise<boolean> {
    if (this.ws?.readyState === WebSocket.OPEN) return Promise.resolve(true);
    return new Promise((resolve) => {
      const done = (ok: boolean) => {
        clearTimeout(t);
        this.waiters = this.waiters.filter((w) => w !== onOpen);
        resolve(ok);
      };
      const onOpen = () => done(true);
      const t = setTimeout(() => done(false), timeoutMs);
      this.waiters.push(onOpen);
    });
  }

  async send(method: string, args: unknown): Promise<ResponseMessage> {
    const id = this.nextId++;
    if (!(await this.whenOpen(15_000)) || !this.ws) {
      return { id, error: { code: 'failed', message: 'Not connected to the Corral host — try again when it is back' } };
    }
    const ws = this.ws;
    return new Promise((resolve) => {
      this.pending.set(id, { method, resolve });
      try {
        ws.send(JSON.stringify({ id, method, args }));
      } catch (err) {
        this.pending.delete(id);
        resolve({ id, error: { code: 'failed', message: `Could not send: ${errorMessage(err)}` } });
      }
    });
  }

  onEvent(sink: (event: string, payload: unknown) => void): void {
    this.eventSink = sink;
  }

  onStatus(sink: (status: ConnectionStatus) => void): void {
    this.statusSink = sink;
  }
}

// ---- the client ---------------------------------------------------------------------------

type Listener = (payload: never) => void;

export class ApiClient {
  private listeners = new Map<string, Set<Listener>>();
  private connectListeners = new Set<() => void>();
  private statusListeners = new Set<(s: ConnectionStatus) => void>();
  private current: ConnectionStatus = { kind: 'connecting' };
  private started = false;

  constructor(private readonly transport: Transport) {
    transport.onEvent((event, payload) => this.emit(event, payload));
    transport.onStatus((s) => this.setStatus(s));
  }

  get kind(): 'electron' | 'websocket' {
    return this.transport.kind;
  }

  get status(): ConnectionStatus {
    return this.current;
  }

  start(): void {
    if (this.started) return;
    this.started = true;
    this.transport.start();
  }

  retryNow(): void {
    this.transport.retryNow();
  }

  /** After a logout: drops the connection and asks for a login. */
  loggedOut(): void {
    this.transport.loggedOut();
  }

  /** After a login: connects again, now with the login's cookie. */
  reconnect(): void {
    this.transport.loggedOut();
    this.started = false;
    this.start();
  }

  /** Whether this host takes uploads from the page. */
  get canUpload(): boolean {
    return !!this.transport.upload;
  }

  /** Streams a file into a pool; `done` rejects with ApiCallError (or a network error). */
  upload(pool: string, file: File, onProgress: (sent: number) => void): Upload {
    if (!this.transport.upload) throw new Error('this host takes no uploads from the page');
    return this.transport.upload(pool, file, onProgress);
  }

  /** Calls a host method. Rejects with ApiCallError carrying the host's ApiError. */
  async call<M extends MethodName>(method: M, args: ArgsIn<M>): Promise<Result<M>> {
    // args cross a process or network boundary: plain JSON only (never a reactive proxy)
    const plain: unknown = args === undefined ? {} : JSON.parse(JSON.stringify(args));
    const res = await this.transport.send(method, plain);
    if ('error' in res) throw new ApiCallError(method, res.error);
    return res.result as Result<M>;
  }

  /** Listens to one pushed event; returns the unsubscribe function. */
  on<E extends EventName>(event: E, fn: (payload: EventMap[E]) => void): () => void {
    let set = this.listeners.get(event);
    if (!set) this.listeners.set(event, (set = new Set()));
    set.add(fn as Listener);
    return () => {
      set.delete(fn as Listener);
    };
  }

  /**
   * Runs `fn` now if connected and again after every reconnection: the place to (re)issue
   * subscriptions and to reload state that may have changed while we were away.
   */
  onConnect(fn: () => void): () => void {
    this.connectListeners.add(fn);
    if (this.current.kind === 'open') queueMicrotask(() => this.connectListeners.has(fn) && fn());
    return () => {
      this.connectListeners.delete(fn);
    };
  }

  onStatus(fn: (s: ConnectionStatus) => void): () => void {
    this.statusListeners.add(fn);
    fn(this.current);
    return () => {
      this.statusListeners.delete(fn);
    };
  }

  private setStatus(s: ConnectionStatus): void {
    const wasOpen = this.current.kind === 'open';
    this.current = s;
    for (const fn of [...this.statusListeners]) fn(s);
    if (s.kind === 'open' && !wasOpen) {
      for (const fn of [...this.connectListeners]) {
        try {
          fn();
        } catch (err) {
          console.error('corral: connect listener failed', err);
        }
      }
    }
  }

  private emit(event: string, payload: unknown): void {
    const set = this.listeners.get(event);
    if (!set) return;
    for (const fn of [...set]) {
      try {
        (fn as (p: unknown) => void)(payload);
      } catch (err) {
        console.error(`corral: listener for ${event} failed`, err);
      }
    }
  }
}

/**
 * A client for the host this window was opened for: the desktop app's own (the preload
 * bridge), or the `corral serve` that served the page (its WebSocket, with the token from the
 * URL). Nothing connects before start(); the stores of the connection live in a HostSession.
 */
export function windowHostClient(): ApiClient {
  if (typeof window !== 'undefined' && window.corral) return new ApiClient(new ElectronTransport(window.corral));
  // no token: the login cookie, if any (the host's /api/me says whether a login is needed)
  return new ApiClient(new WebSocketTransport(takeToken()));
}

// ---- base64 of raw bytes (serial data) ----------------------------------------------------

export function base64ToBytes(b64: string): Uint8Array {
  const bin = atob(b64);
  const out = new Uint8Array(bin.length);
  for (let i = 0; i < bin.length; i++) out[i] = bin.charCodeAt(i);
  return out;
}

export function bytesToBase64(bytes: Uint8Array): string {
  let bin = '';
  const CHUNK = 0x8000;
  for (let i = 0; i < bytes.length; i += CHUNK) {
    bin += String.fromCharCode(...bytes.subarray(i, i + CHUNK));
  }
  return btoa(bin);
}
