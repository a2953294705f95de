// What a VM's NIC list means, for the host and its clients alike: which NIC carries the
// top-level `forwards` (clients from before NICs were a list), and every forward a VM runs.
import type { Nic, NicKind, PortForward, VmConfig } from './contract.js';

/** Kinds whose host ports can be forwarded into the guest (user-mode networks). */
export const FORWARDING_KINDS: readonly NicKind[] = ['passt', 'user'];
export const forwardsThrough = (kind: NicKind): boolean => FORWARDING_KINDS.includes(kind);

/** The NIC the top-level `forwards` belong to: the first passt or user NIC. */
export function primaryNic<N extends Pick<Nic, 'kind'>>(nics: readonly N[]): N | undefined {
  return nics.find((n) => forwardsThrough(n.kind));
}

/** Every forward of every NIC: what probes and ssh may connect through. */
export function allForwards(c: Pick<VmConfig, 'nics'>): PortForward[] {
  return c.nics.flatMap((n) => n.forwards);
}

/** The MAC QEMU gave the one NIC of a VM made before NICs were a list: kept, the guest knows it. */
export const LEGACY_MAC = '52:54:00:12:34:56';

/** Kinds a running QEMU can add alone: slirp and private networks. */
export const HOTPLUG_KINDS: readonly NicKind[] = ['user', 'private'];

/** The same NIC for the guest: what the host notes about where it sits (hotplug) aside. */
export function sameNic(a: Nic, b: Nic): boolean {
  const { hotplug: _a, ...x } = a;
  const { hotplug: _b, ...y } = b;
  return JSON.stringify(x) === JSON.stringify(y);
}

/**
 * Why a new NIC list cannot be applied to a running VM (null: it can). Live, NICs are added
 * (of kinds QEMU makes alone), removed if they were added live (QEMU's first NICs sit on a bus
 * without hotplug), and a passt or user NIC's forwards change; anything else waits for a boot.
 */
export function nicsLiveBlocker(applied: readonly Nic[], next: readonly Nic[]): string | null {
  for (const a of applied) {
    const n = next.find((x) => x.id === a.id);
    if (!n) {
      if (a.hotplug) continue;
      return `removing ${a.id} needs a restart (the NICs a VM boots with sit on a bus without hotplug)`;
    }
    if (!sameNic({ ...n, forwards: a.forwards }, a)) return `changing ${a.id} needs a restart`;
  }
  const added = next.filter((n) => !applied.some((a) => a.id === n.id));
  const fixed = added.find((n) => !HOTPLUG_KINDS.includes(n.kind));
  if (fixed) return `a ${fixed.kind} NIC can only be added while the VM is stopped (its helper starts with QEMU)`;
  return null;
}
