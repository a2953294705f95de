// The pure rules of snapshot trees: display order, finding one by name, what retention
// removes, when a schedule fires next, and which settings a revert puts back.
import type { SnapshotInfo, VmConfig, VmState } from '../api/contract.js';
import { bootMaxCpus, bootMemoryMiB } from '../api/rules.js';

/** Depth-first, oldest sibling first: parents before children, with each one's depth for indentation. */
export function treeOrder(snaps: readonly SnapshotInfo[]): Array<{ snap: SnapshotInfo; depth: number }> {
  const ids = new Set(snaps.map((s) => s.id));
  const kids = new Map<string | null, SnapshotInfo[]>();
  for (const s of [...snaps].sort((a, b) => a.createdAt - b.createdAt)) {
    // a parent that is gone (never expected: deletes re-parent) shows its children as roots
    const parent = s.parentId && ids.has(s.parentId) ? s.parentId : null;
    kids.set(parent, [...(kids.get(parent) ?? []), s]);
  }
  const out: Array<{ snap: SnapshotInfo; depth: number }> = [];
  const walk = (parent: string | null, depth: number) => {
    for (const s of kids.get(parent) ?? []) {
      out.push({ snap: s, depth });
      walk(s.id, depth + 1);
    }
  };
  walk(null, 0);
  return out;
}

/** A snapshot by its id or its (case-insensitive) name. */
export function findSnapshot(snaps: readonly SnapshotInfo[], ref: string): SnapshotInfo | undefined {
  return snaps.find((s) => s.id === ref) ?? snaps.find((s) => s.name.toLowerCase() === ref.toLowerCase());
}

/** The scheduled snapshots beyond the newest `keep`, oldest first; snapshots taken by hand never count. */
export function retentionVictims(snaps: readonly SnapshotInfo[], keep: number): SnapshotInfo[] {
  const scheduled = snaps.filter((s) => s.scheduled).sort((a, b) => a.createdAt - b.createdAt);
  return scheduled.slice(0, Math.max(0, scheduled.length - keep));
}

/** The name of a scheduled snapshot: its UTC time, unique within a VM unless two fire in one second. */
export function scheduledName(at: number, taken: (name: string) => boolean): string {
  const base = `auto-${new Date(at)
    .toISOString()
    .replace(/\.\d+Z$/, '')
    .replace(/[-:]/g, '')
    .replace('T', '-')}`;
  let name = base;
  for (let i = 2; taken(name); i++) name = `${base}-${i}`;
  return name;
}

/**
 * When a schedule fires next after firing (or being set) at `now`: one period later. A host
 * that was down for several periods takes one snapshot when it comes back, not a burst.
 */
export function nextDue(now: number, everySec: number): number {
  return now + everySec * 1000;
}

/**
 * The settings a revert restores: the guest-visible machine the snapshot's disks and RAM were
 * made on (a RAM state only loads into the same hardware, and a guest expects the devices it
 * had). The host's policy for the VM (its name, restart policy, forwards, limits, autostart,
 * liveness) is the user's current decision and stays.
 */
export const RESTORED_FIELDS = [
  'cpus',
  'maxCpus',
  'memoryMiB',
  'maxMemoryMiB',
  'firmware',
  'tpm',
  'machineType',
  'cpuModel',
  'iso',
  'kernel',
  'initrd',
  'append',
] as const satisfies ReadonlyArray<keyof VmConfig>;

export function restoredConfig(now: VmConfig, snap: VmConfig): VmConfig {
  const out: VmConfig = { ...now };
  for (const k of RESTORED_FIELDS) (out as Record<string, unknown>)[k] = snap[k];
  return out;
}

/** The restored fields whose value differs between two configs (what a revert changes). */
export function restoredChanges(now: VmConfig, snap: VmConfig): string[] {
  return RESTORED_FIELDS.filter((k) => JSON.stringify(now[k]) !== JSON.stringify(snap[k]));
}

/** States that have (or are about to have, or just had) a QEMU: nothing offline then. */
export function isLiveState(state: VmState): boolean {
  return state === 'starting' || state === 'stopping' || state === 'running' || state === 'paused';
}

/** A RAM state loads only into a QEMU with the hardware it was saved from. */
export function sameBootHardware(a: VmConfig, b: VmConfig): boolean {
  return (
    bootMemoryMiB(a) === bootMemoryMiB(b) &&
    bootMaxCpus(a) === bootMaxCpus(b) &&
    a.cpus === b.cpus &&
    a.firmware === b.firmware &&
    a.tpm === b.tpm &&
    a.machineType === b.machineType &&
    a.cpuModel === b.cpuModel &&
    a.disks.length === b.disks.length
  );
}

export function describeKind(s: SnapshotInfo): string {
  if (s.kind === 'live') return 'RAM and disks';
  if (s.kind === 'offline') return 'disks of the stopped VM';
  return s.consistency === 'frozen'
    ? 'disks, file systems frozen by the guest agent'
    : 'disks only, crash-consistent (no guest agent answered)';
}
