// What the Network tab shows and sends, as plain functions: each NIC with whether the running
// guest has it yet (saved vs booted, like the Resources tab's pending settings), the NIC list a
// change saves (vm.update takes the whole list), a forward checked before it is sent, and the
// per-NIC traffic figures when the host measures them.
import type { Nic, NicInput, NicKind, PortForward, VmInfo, VmStats } from '../../../electron/core/api/contract';
import { exposure } from '../../../electron/core/api/rules';
import { forwardsThrough, HOTPLUG_KINDS, sameNic } from '../../../electron/core/api/nics';

export const KIND_LABEL: Record<NicKind, string> = {
  passt: 'passt',
  user: 'User mode',
  bridge: 'Bridge',
  private: 'Private',
};

export const KIND_HELP: Record<NicKind, string> = {
  passt: 'Reaches out through the host, like an app on it; port forwards bring host ports in. Runs in its own process.',
  user: "QEMU's built-in user-mode network (slirp): reaches out through the host; port forwards bring host ports in.",
  bridge: "Joins a host bridge: the guest stands on the host's network and gets an address there (needs an admin).",
  private: 'A network between VMs of this host only: they reach each other and nothing else.',
};

/** How a running guest's NIC differs from what is saved: added or removed at the next boot, or changed then. */
export type NicPending = 'add' | 'remove' | 'change' | null;

export interface NicRow {
  nic: Nic;
  pending: NicPending;
}

/**
 * The saved NICs, each marked against what the running QEMU has, then the ones it still runs
 * with that are no longer saved (removed at the next boot). A stopped VM has nothing pending.
 */
export function nicRows(vm: Pick<VmInfo, 'config' | 'booted'>): NicRow[] {
  const booted = vm.booted?.nics;
  if (!booted) return vm.config.nics.map((nic) => ({ nic, pending: null }));
  const rows: NicRow[] = vm.config.nics.map((nic) => {
    const b = booted.find((x) => x.id === nic.id);
    return { nic, pending: !b ? 'add' : !sameNic(b, nic) ? 'change' : null };
  });
  for (const b of booted) if (!vm.config.nics.some((n) => n.id === b.id)) rows.push({ nic: b, pending: 'remove' });
  return rows;
}

/** Where the NIC is plugged in: the bridge or private network, or the host's own network. */
export function nicWhere(n: Pick<Nic, 'kind' | 'bridge' | 'network'>): string {
  switch (n.kind) {
    case 'bridge':
      return `bridge ${n.bridge ?? '?'}`;
    case 'private':
      return `private network “${n.network ?? '?'}”`;
    default:
      return 'through the host';
  }
}

/** Whether a NIC of this kind reaches a running guest at once (else: at its next boot). */
export const hotAddable = (kind: NicKind): boolean => HOTPLUG_KINDS.includes(kind);
export { forwardsThrough };

/** The saved NICs as vm.update takes them (ids and MACs kept). */
const saved = (vm: Pick<VmInfo, 'config'>): Nic[] => vm.config.nics.map((n) => ({ ...n }));

export function withNic(vm: Pick<VmInfo, 'config'>, add: NicInput): NicInput[] {
  return [...saved(vm), add];
}

export function withoutNic(vm: Pick<VmInfo, 'config'>, id: string): NicInput[] {
  return saved(vm).filter((n) => n.id !== id);
}

export function withForward(vm: Pick<VmInfo, 'config'>, id: string, f: PortForward): NicInput[] {
  return saved(vm).map((n) => (n.id === id ? { ...n, forwards: [...n.forwards, f] } : n));
}

export function withoutForward(vm: Pick<VmInfo, 'config'>, id: string, f: PortForward): NicInput[] {
  return saved(vm).map((n) => (n.id === id ? { ...n, forwards: n.forwards.filter((g) => !sameForward(g, f)) } : n));
}

export const sameForward = (a: PortForward, b: PortForward): boolean =>
  a.proto === b.proto && a.hostAddr === b.hostAddr && a.hostPort === b.hostPort && a.guestPort === b.guestPort;

/** A forward as the form holds it: ports may be empty while typing. */
export interface ForwardDraft {
  proto: 'tcp' | 'udp';
  hostAddr: string;
  hostPort: number | null;
  guestPort: number | null;
}

export type ForwardField = 'hostAddr' | 'hostPort' | 'guestPort';

const IPV4 = /^(25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)(\.(25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)){3}$/;
const okPort = (p: number | null): p is number => p !== null && Number.isInteger(p) && p >= 1 && p <= 65535;

/**
 * The forward to send, or what is wrong with the draft by field. `exposure`: why it opens the
 * host beyond its loopback (a port below 1024, another address), which the user confirms first.
 */
export function checkForward(
  d: ForwardDraft,
  existing: readonly PortForward[],
): { forward: PortForward; exposure: string | null } | { errors: Partial<Record<ForwardField, string>> } {
  const errors: Partial<Record<ForwardField, string>> = {};
  const hostAddr = d.hostAddr.trim();
  if (!IPV4.test(hostAddr)) errors.hostAddr = 'An IPv4 address such as 127.0.0.1 (or 0.0.0.0 for every network)';
  if (!okPort(d.hostPort)) errors.hostPort = 'A port from 1 to 65535';
  if (!okPort(d.guestPort)) errors.guestPort = 'A port from 1 to 65535';
  if (!errors.hostPort && existing.some((f) => f.proto === d.proto && f.hostPort === d.hostPort && f.hostAddr === hostAddr))
    errors.hostPort = `This VM already forwards ${d.proto} host port ${d.hostPort}`;
  if (Object.keys(errors).length) return { errors };
  const base = { proto: d.proto, hostAddr, hostPort: d.hostPort!, guestPort: d.guestPort! };
  const why = exposure(base);
  return { forward: { ...base, exposed: why !== null }, exposure: why };
}

/**
 * The input a host error on a forward belongs to: the host names it `forwards.N.FIELD` (the
 * first passt/user NIC's) or `nics.I.forwards.N.FIELD`; `exposed` is the host port's business.
 */
export function forwardErrorField(field: string | undefined): ForwardField | null {
  const m = field ? /(?:^|\.)forwards\.\d+\.(\w+)$/.exec(field) : null;
  if (!m) return null;
  if (m[1] === 'hostAddr' || m[1] === 'guestPort') return m[1];
  return 'hostPort';
}

/** Received and sent bytes per second of one NIC, when the host measures them. */
export interface NicRates {
  rxBps: number;
  txBps: number;
}

/**
 * One NIC's traffic in a stats sample: the host measures some kinds (a bridge's tap) and says
 * why not for the others, and older hosts send no per-NIC figures; both read "not measured".
 */
export function nicRates(sample: VmStats | null, id: string): NicRates | null {
  const n = sample?.nics?.find((x) => x.nic === id);
  return n && n.rxBps !== null && n.txBps !== null ? { rxBps: n.rxBps, txBps: n.txBps } : null;
}
