// Which consoles the console area shows: one, or two side by side (split), per VM. The choice
// of consoles and the split are remembered (this browser) as the starting point for every VM.
export type FixedConsole = 'serial' | 'display' | 'monitor';
export type ConsoleKey = FixedConsole | `term:${number}`;

const STORE_KEY = 'corral.consoles';
const FIXED: FixedConsole[] = ['serial', 'display', 'monitor'];

interface Saved {
  split: boolean;
  ratio: number;
  panes: [FixedConsole, FixedConsole];
}

function load(): Saved {
  const fallback: Saved = { split: false, ratio: 0.5, panes: ['serial', 'display'] };
  try {
    const raw = JSON.parse(localStorage.getItem(STORE_KEY) ?? 'null') as Partial<Saved> | null;
    if (!raw || typeof raw !== 'object') return fallback;
    const panes =
      Array.isArray(raw.panes) && raw.panes.length === 2 && raw.panes.every((p) => FIXED.includes(p)) && raw.panes[0] !== raw.panes[1]
        ? raw.panes
        : fallback.panes;
    const ratio = typeof raw.ratio === 'number' && raw.ratio >= 0.2 && raw.ratio <= 0.8 ? raw.ratio : 0.5;
    return { split: raw.split === true, ratio, panes: [panes[0], panes[1]] };
  } catch {
    return fallback;
  }
}

export function isTerminal(key: ConsoleKey): key is `term:${number}` {
  return key.startsWith('term:');
}

export class ConsoleLayout {
  split = $state(false);
  /** What the left (or only) and the right pane show. */
  panes = $state<[ConsoleKey, ConsoleKey]>(['serial', 'display']);
  /** The pane that a click on a tab fills (the one last used). */
  focused = $state<0 | 1>(0);
  /** Width of the left pane, 0.2–0.8. */
  ratio = $state(0.5);

  constructor(saved: Saved) {
    this.split = saved.split;
    this.panes = [...saved.panes];
    this.ratio = saved.ratio;
  }

  /** The consoles on screen. */
  get shown(): ConsoleKey[] {
    return this.split ? [...this.panes] : [this.panes[0]];
  }

  /** The console in the focused pane. */
  get active(): ConsoleKey {
    return this.panes[this.split ? this.focused : 0];
  }

  paneOf(key: ConsoleKey): 0 | 1 | null {
    if (this.panes[0] === key) return 0;
    if (this.split && this.panes[1] === key) return 1;
    return null;
  }

  /** Shows a console in the focused pane (swapping with the other pane if it is there). */
  show(key: ConsoleKey): void {
    const p = this.split ? this.focused : 0;
    const other = (1 - p) as 0 | 1;
    if (this.panes[p] === key) return;
    const next: [ConsoleKey, ConsoleKey] = [...this.panes];
    if (next[other] === key) next[other] = next[p];
    next[p] = key;
    this.panes = next;
    this.#save();
  }

  toggleSplit(): void {
    this.split = !this.split;
    if (this.split) {
      // the second pane gets something else than the first
      if (this.panes[1] === this.panes[0]) this.panes = [this.panes[0], this.panes[0] === 'display' ? 'serial' : 'display'];
      this.focused = 1;
    } else {
      this.panes = [this.active, this.panes[this.focused === 0 ? 1 : 0]];
      this.focused = 0;
    }
    this.#save();
  }

  setRatio(r: number): void {
    this.ratio = Math.min(0.8, Math.max(0.2, r));
    this.#save();
  }

  /** A console went away (a terminal tab closed): show `instead` where it was. */
  replace(key: ConsoleKey, instead: ConsoleKey): void {
    const next: [ConsoleKey, ConsoleKey] = [...this.panes];
    for (const i of [0, 1] as const) if (next[i] === key) next[i] = instead;
    if (next[0] === next[1]) next[1] = FIXED.find((f) => f !== next[0])!;
    this.panes = next;
  }

  #save(): void {
    const fixed = (k: ConsoleKey, d: FixedConsole): FixedConsole => (isTerminal(k) ? d : k);
    let panes: [FixedConsole, FixedConsole] = [fixed(this.panes[0], 'serial'), fixed(this.panes[1], 'display')];
    if (panes[0] === panes[1]) panes = [panes[0], FIXED.find((f) => f !== panes[0])!];
    const saved: Saved = { split: this.split, ratio: this.ratio, panes };
    try {
      localStorage.setItem(STORE_KEY, JSON.stringify(saved));
    } catch {
      // private mode or full: the layout is just not remembered
    }
  }
}

/** The console areas of one host's VMs. */
export class ConsoleLayouts {
  // a lookup table, never read by reactive code
  // eslint-disable-next-line svelte/prefer-svelte-reactivity
  #byVm = new Map<string, ConsoleLayout>();

  /** The layout of one VM's console area (kept while the app runs). */
  for(vmId: string): ConsoleLayout {
    let l = this.#byVm.get(vmId);
    if (!l) this.#byVm.set(vmId, (l = new ConsoleLayout(load())));
    return l;
  }
}
