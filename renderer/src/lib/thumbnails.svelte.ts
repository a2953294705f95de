// Live thumbnails of running VMs for the list: vm.screenshot (PNG) about every 5 s, but only
// for VMs whose row is on screen while the page is visible. Decoding and scaling happen off
// the main thread (createImageBitmap); each VM keeps its last picture, so a row scrolled back
// into view shows it at once.
import { base64ToBytes, type ApiClient } from './api';

export const THUMB_EVERY_MS = 5000;
/** Width the picture is scaled to (CSS pixels × 2 for sharp rows on HiDPI screens). */
const THUMB_WIDTH = 160;
const MAX_IN_FLIGHT = 2;

export class Thumb {
  /** The last picture, or null (show a placeholder). */
  bitmap = $state.raw<ImageBitmap | null>(null);
  /** When it was taken. */
  at = $state(0);

  /** On-screen rows showing this VM (a VM has one row, but rows remount while scrolling). */
  // eslint-disable-next-line svelte/prefer-svelte-reactivity -- bookkeeping, never rendered
  views = new Set<Element>();
  visible = false;
  timer: ReturnType<typeof setTimeout> | null = null;
  inFlight = false;

  constructor(readonly vmId: string) {}
}

export class Thumbnails {
  #api: ApiClient;
  // lookup tables, never read by reactive code (each Thumb is)
  // eslint-disable-next-line svelte/prefer-svelte-reactivity
  #byVm = new Map<string, Thumb>();
  #byEl = new WeakMap<Element, Thumb>();
  #observer: IntersectionObserver | null = null;
  #queue: Thumb[] = [];
  #inFlight = 0;
  #pageVisible = typeof document === 'undefined' || document.visibilityState === 'visible';

  constructor(api: ApiClient) {
    this.#api = api;
    if (typeof document === 'undefined') return;
    document.addEventListener('visibilitychange', () => {
      this.#pageVisible = document.visibilityState === 'visible';
      for (const t of this.#byVm.values()) this.#schedule(t);
    });
    api.on('vm.removed', ({ id }) => {
      const t = this.#byVm.get(id);
      if (!t) return;
      this.#clear(t);
      this.#byVm.delete(id);
    });
  }

  of(vmId: string): Thumb {
    let t = this.#byVm.get(vmId);
    if (!t) this.#byVm.set(vmId, (t = new Thumb(vmId)));
    return t;
  }

  /**
   * Keeps `vmId`'s thumbnail fresh while `el` (the row of a running VM) is on screen. Call
   * the returned function when the row goes away or the VM stops running.
   */
  watch(el: Element, vmId: string): () => void {
    const t = this.of(vmId);
    t.views.add(el);
    this.#byEl.set(el, t);
    this.#io().observe(el);
    return () => {
      this.#observer?.unobserve(el);
      t.views.delete(el);
      this.#byEl.delete(el);
      if (!t.views.size) t.visible = false;
      this.#schedule(t);
    };
  }

  /** The VM stopped: its last screen is dropped (a stopped VM shows a placeholder). */
  stopped(vmId: string): void {
    const t = this.#byVm.get(vmId);
    if (!t?.bitmap) return;
    t.bitmap.close();
    t.bitmap = null;
    t.at = 0;
  }

  #io(): IntersectionObserver {
    this.#observer ??= new IntersectionObserver(
      (entries) => {
        const touched: Thumb[] = [];
        for (const e of entries) {
          const t = this.#byEl.get(e.target);
          if (!t) continue;
          // visible while any of its rows is (one row in practice)
          (e.target as HTMLElement).dataset.onscreen = e.isIntersecting ? '1' : '';
          if (!touched.includes(t)) touched.push(t);
        }
        for (const t of touched) {
          t.visible = [...t.views].some((v) => (v as HTMLElement).dataset.onscreen === '1');
          this.#schedule(t);
        }
      },
      { threshold: 0 },
    );
    return this.#observer;
  }

  #wanted(t: Thumb): boolean {
    return t.views.size > 0 && t.visible && this.#pageVisible;
  }

  /** Next shot due at the last one + 5 s, or now; nothing while not wanted. */
  #schedule(t: Thumb): void {
    if (t.timer) clearTimeout(t.timer);
    t.timer = null;
    if (!this.#wanted(t) || t.inFlight || this.#queue.includes(t)) return;
    const due = Math.max(0, t.at + THUMB_EVERY_MS - Date.now());
    t.timer = setTimeout(() => {
      t.timer = null;
      this.#enqueue(t);
    }, due);
  }

  #enqueue(t: Thumb): void {
    if (!this.#wanted(t)) return;
    this.#queue.push(t);
    this.#pump();
  }

  #pump(): void {
    while (this.#inFlight < MAX_IN_FLIGHT && this.#queue.length) {
      const t = this.#queue.shift()!;
      if (!this.#wanted(t)) continue;
      this.#inFlight++;
      t.inFlight = true;
      void this.#take(t).finally(() => {
        this.#inFlight--;
        t.inFlight = false;
        this.#schedule(t);
        this.#pump();
      });
    }
  }

  async #take(t: Thumb): Promise<void> {
    const started = Date.now();
    try {
      const { png } = await this.#api.call('vm.screenshot', { vm: t.vmId });
      const bitmap = await createImageBitmap(new Blob([base64ToBytes(png) as BlobPart], { type: 'image/png' }), {
        resizeWidth: THUMB_WIDTH,
        resizeQuality: 'medium',
      });
      if (!t.views.size) {
        // its row went away, or it stopped, meanwhile
        bitmap.close();
        return;
      }
      t.bitmap?.close();
      t.bitmap = bitmap;
      t.at = started;
    } catch {
      // not running any more, or busy: the placeholder (or the last picture) stays; try later
      t.at = started;
    }
  }

  #clear(t: Thumb): void {
    if (t.timer) clearTimeout(t.timer);
    t.timer = null;
    t.bitmap?.close();
    t.bitmap = null;
  }
}
