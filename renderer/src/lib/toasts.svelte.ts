// Transient messages in the corner. Errors are never swallowed: every failed call ends here
// (or inline in the dialog that made it).
import { ApiCallError, errorMessage } from './api';

export type ToastKind = 'error' | 'warning' | 'info' | 'success';

export interface Toast {
  id: number;
  kind: ToastKind;
  title: string;
  message: string;
  /** e.g. "conflict" or "invalid-argument · memoryMiB" */
  detail: string | null;
}

class Toasts {
  items = $state<Toast[]>([]);
  #next = 1;
  #timers = new Map<number, ReturnType<typeof setTimeout>>();

  push(kind: ToastKind, title: string, message = '', detail: string | null = null): number {
    // the same error twice in a row (e.g. a held key) is shown once
    const last = this.items.at(-1);
    if (last && last.kind === kind && last.title === title && last.message === message) {
      this.#arm(last.id, kind);
      return last.id;
    }
    const id = this.#next++;
    this.items.push({ id, kind, title, message, detail });
    if (this.items.length > 5) this.dismiss(this.items[0].id);
    this.#arm(id, kind);
    return id;
  }

  #arm(id: number, kind: ToastKind): void {
    clearTimeout(this.#timers.get(id));
    this.#timers.set(
      id,
      setTimeout(() => this.dismiss(id), kind === 'error' || kind === 'warning' ? 12_000 : 5_000),
    );
  }

  error(title: string, err: unknown): void {
    if (err instanceof ApiCallError) {
      this.push('error', title, err.message, err.field ? `${err.code} · ${err.field}` : err.code);
    } else {
      this.push('error', title, errorMessage(err));
    }
  }

  info(title: string, message = ''): void {
    this.push('info', title, message);
  }

  success(title: string, message = ''): void {
    this.push('success', title, message);
  }

  /** Keep a toast while the pointer or focus is on it. */
  hold(id: number): void {
    clearTimeout(this.#timers.get(id));
  }

  release(id: number): void {
    const t = this.items.find((x) => x.id === id);
    if (t) this.#arm(id, t.kind);
  }

  dismiss(id: number): void {
    clearTimeout(this.#timers.get(id));
    this.#timers.delete(id);
    const i = this.items.findIndex((t) => t.id === id);
    if (i >= 0) this.items.splice(i, 1);
  }
}

export const toasts = new Toasts();
