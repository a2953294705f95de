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
