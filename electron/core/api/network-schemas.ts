// The network shapes of the contract: port forwards, NICs, and what network.list and
// vm.addresses answer. schemas.ts re-exports them (VmConfig holds the NICs).
import { z } from 'zod';
import { LIMITS } from './rules.js';

export const PortForward = z.object({
  proto: z.enum(['tcp', 'udp']).default('tcp'),
  hostAddr: z.ipv4().default('127.0.0.1'),
  hostPort: z.number().int().min(1).max(65535),
  guestPort: z.number().int().min(1).max(65535),
  /** Required for a host address other than loopback, or a host port below 1024 (see rules' exposure). */
  exposed: z.boolean().default(false),
});

/** passt: user-mode network in its own process (default); user: QEMU's slirp; bridge: a host bridge; private: VMs of this host only. */
export const NicKind = z.enum(['passt', 'user', 'bridge', 'private']);
/** net0, net1…: the NIC's QEMU netdev id, kept while the NIC exists. */
export const NicId = z.string().regex(/^net[0-9]{1,2}$/, 'must be net0, net1…');
/** A unicast MAC address such as 52:54:00:12:34:56. */
export const MacAddress = z
  .string()
  .regex(/^([0-9a-f]{2}:){5}[0-9a-f]{2}$/i, 'must be a MAC address such as 52:54:00:12:34:56')
  .refine((m) => (parseInt(m.slice(0, 2), 16) & 1) === 0, 'must be a unicast address (even first byte)')
  .transform((m) => m.toLowerCase());
/** A Linux interface name (the host bridge). */
export const BridgeName = z.string().regex(/^[A-Za-z0-9_.-]{1,15}$/, 'must be a network interface name such as br0');
/** A private network's name: VMs naming the same one reach each other. */
export const NetworkName = z.string().regex(/^[a-z0-9][a-z0-9_-]{0,31}$/, 'must be lower-case letters, digits, "-" or "_" (at most 32)');

/** A NIC as stored: id and MAC are assigned by the host when not given, and never change. */
export const Nic = z.object({
  id: NicId,
  kind: NicKind,
  mac: MacAddress,
  /** The host bridge (kind bridge). */
  bridge: BridgeName.nullable().default(null),
  /** The private network (kind private). */
  network: NetworkName.nullable().default(null),
  /** Host ports forwarded into the guest (kinds passt and user). */
  forwards: z.array(PortForward).max(LIMITS.forwards.max).default([]),
  /**
   * Only in what a running QEMU has (`booted`): the NIC was added while the guest ran, so it
   * sits in a hotplug port and can be removed live. Never saved in a VM's config.
   */
  hotplug: z.boolean().optional(),
});
/** A NIC as a client gives it: a new one has no id, and a MAC only when the user picks one. */
export const NicInput = Nic.omit({ hotplug: true }).extend({ id: NicId.optional(), mac: MacAddress.optional() });

/** What VMs of this host can be networked with: private networks in use, host bridges, passt. */
export const NetworkList = z.object({
  /** Private networks named by some VM's NIC, with the VMs on each. */
  private: z.array(z.object({ name: z.string(), vms: z.array(z.string()) })),
  /** The host's bridges; `allowed`: qemu-bridge-helper's ACL lets VMs join it. */
  bridges: z.array(z.object({ name: z.string(), allowed: z.boolean(), vms: z.array(z.string()) })),
  /** passt is installed: new VMs get passt NICs (else user). */
  passt: z.boolean(),
});
export type NetworkList = z.infer<typeof NetworkList>;

/** A running guest's addresses on one NIC, and where they come from. */
export const NicAddresses = z.object({
  nic: z.string(),
  addresses: z.array(z.string()),
  /**
   * agent: the guest agent's answer; host: what the host sees (slirp's and passt's fixed
   * address, the neighbour table); unknown: it cannot see.
   */
  source: z.enum(['agent', 'host', 'unknown']),
  note: z.string(),
});
export type NicAddresses = z.infer<typeof NicAddresses>;

export type PortForward = z.infer<typeof PortForward>;
export type Nic = z.infer<typeof Nic>;
export type NicInput = z.input<typeof NicInput>;
export type NicKind = z.infer<typeof NicKind>;
