// Where a new VM goes in a cluster: each host's verdict on it (reporting, and the same memory
// admission a start applies there, on the figures the host publishes with its lease), then the
// admitting hosts ordered by room. Pure: the figures come in, the order and reasons go out.
import type { HostAlive } from './hosts.js';

/** A host's admission rule (resources/host-capacity.ts's admit, handed in from the host layer). */
export type Admit = (
  vmName: string,
  wantBytes: number,
  committedBytes: number,
  hostBytes: number,
  overcommit: number,
) => { ok: boolean; message: string | null };

export interface PlacementHost {
  id: string;
  name: string;
  self: boolean;
  /** What the host last published (null: its lease is gone, it is not reporting). */
  alive: HostAlive | null;
}

export interface Want {
  name: string;
  /** Memory the VM boots with (its admission figure). */
  memoryBytes: number;
}

export type Verdict = { host: PlacementHost; ok: true; roomBytes: number } | { host: PlacementHost; ok: false; why: string };

/** Memory a host may still commit: its RAM × overcommit, less what its running VMs hold. */
export function roomOf(a: HostAlive): number {
  return Math.floor(a.memoryBytes * (a.overcommit ?? 1)) - a.committedBytes;
}

export function judge(want: Want, hosts: PlacementHost[], admit: Admit): Verdict[] {
  return hosts.map((host): Verdict => {
    const a = host.alive;
    if (!a) return { host, ok: false, why: 'not reporting (its lease expired)' };
    const r = admit(want.name, want.memoryBytes, a.committedBytes, a.memoryBytes, a.overcommit ?? 1);
    if (!r.ok) return { host, ok: false, why: r.message! };
    return { host, ok: true, roomBytes: roomOf(a) };
  });
}

/** The admitting hosts, most room first; on a tie this host (no hop), then fewer running VMs, then the name. */
export function rank(verdicts: Verdict[]): PlacementHost[] {
  return verdicts
    .filter((v): v is Extract<Verdict, { ok: true }> => v.ok)
    .sort(
      (x, y) =>
        y.roomBytes - x.roomBytes ||
        Number(y.host.self) - Number(x.host.self) ||
        (x.host.alive?.running ?? 0) - (y.host.alive?.running ?? 0) ||
        x.host.name.localeCompare(y.host.name),
    )
    .map((v) => v.host);
}

/** "no host of the cluster can take "x": a: why; b: why" — every host's reason, in name order. */
export function refusal(vmName: string, reasons: Array<{ host: string; why: string }>): string {
  const each = [...reasons].sort((x, y) => x.host.localeCompare(y.host)).map((r) => `${r.host}: ${r.why}`);
  return `no host of the cluster can take "${vmName}": ${each.join('; ')}`;
}
