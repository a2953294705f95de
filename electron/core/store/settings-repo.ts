// Host-wide settings as key -> JSON value, validated by the contract's schema on the way out.
import { HostSettings, type HostSettings as Settings } from '../api/contract.js';
import type { Db } from './db.js';

const Stored = HostSettings.partial();
const DEFAULTS: Settings = { quitAction: 'ask', hostShell: null, monitor: null, memoryOvercommit: 1.0 };

/** Kept beside the settings; not one of them (get() leaves it out). */
const AUTOSTART_BOOT = 'autostartBootId';
/** HA load shedding on this host's leader rounds (`corral ha balance --on|--off`); off by default. */
const HA_BALANCE = 'haBalance';
/** The time of the last fence record whose guests were told (each fence is reported once). */
const HA_FENCE_REPORTED = 'haFenceReported';

export class SettingsRepo {
  private readonly q;
  /** Read often (every resource sample), written rarely, and only through this repo. */
  private cached: Settings | null = null;

  constructor(db: Db) {
    this.q = {
      all: db.prepare<[], { key: string; value: string }>('SELECT key, value FROM settings'),
      put: db.prepare('INSERT INTO settings (key, value) VALUES (?, ?) ON CONFLICT (key) DO UPDATE SET value = excluded.value'),
    };
  }

  get(): Settings {
    if (this.cached) return { ...this.cached };
    const stored: Record<string, unknown> = {};
    for (const { key, value } of this.q.all.all()) stored[key] = JSON.parse(value);
    // a value an older or newer Corral wrote that does not fit falls back to the default
    const parsed = Stored.safeParse(stored);
    this.cached = { ...DEFAULTS, ...(parsed.success ? parsed.data : {}) };
    return { ...this.cached };
  }

  /** The machine boot (kernel boot id) the last autostart ran in: autostart runs once per boot. */
  autostartBoot(): string | null {
    const row = this.q.all.all().find((r) => r.key === AUTOSTART_BOOT);
    return row ? (JSON.parse(row.value) as string) : null;
  }

  setAutostartBoot(bootId: string): void {
    this.q.put.run(AUTOSTART_BOOT, JSON.stringify(bootId));
  }

  haBalance(): boolean {
    const row = this.q.all.all().find((r) => r.key === HA_BALANCE);
    return row ? JSON.parse(row.value) === true : false;
  }

  setHaBalance(on: boolean): void {
    this.q.put.run(HA_BALANCE, JSON.stringify(on));
  }

  haFenceReported(): number | null {
    const row = this.q.all.all().find((r) => r.key === HA_FENCE_REPORTED);
    return row ? (JSON.parse(row.value) as number) : null;
  }

  setHaFenceReported(at: number): void {
    this.q.put.run(HA_FENCE_REPORTED, JSON.stringify(at));
  }

  set(patch: Partial<Settings>): Settings {
    for (const [k, v] of Object.entries(patch)) if (v !== undefined) this.q.put.run(k, JSON.stringify(v));
    this.cached = null;
    return this.get();
  }
}
