// NICs from a client into NICs to store: known NICs keep their id and MAC, new ones get the
// next free id and a random MAC, and the top-level `forwards` land on the primary NIC. Errors
// name the field ("nics.1.bridge").
import { randomBytes } from 'node:crypto';
import type { Nic, NicKind, PortForward } from '../api/contract.js';
import { CorralError } from '../api/dispatcher.js';
import { forwardsThrough, primaryNic } from '../api/nics.js';

/** A NIC as zod hands it over: defaults applied, id and MAC optional. */
export type NicIn = Omit<Nic, 'id' | 'mac'> & Partial<Pick<Nic, 'id' | 'mac'>>;

function invalid(field: string, reason: string): CorralError {
  return new CorralError('invalid-argument', `invalid argument "${field}": ${reason}`, field, { reason });
}

/** A random MAC in QEMU's locally administered range 52:54:00. */
export function randomMac(): string {
  return `52:54:00:${[...randomBytes(3)].map((b) => b.toString(16).padStart(2, '0')).join(':')}`;
}

/** One NIC of the host's default kind: what a VM made without a NIC list gets. */
export function defaultNics(kind: NicKind, forwards: PortForward[]): NicIn[] {
  return [{ kind, bridge: null, network: null, forwards }];
}

/**
 * Resolves `input` (the whole new list) against the VM's current NICs. `forwards`, when
 * given, replaces the primary NIC's forwards. Returns the NICs and the top-level mirror.
 */
export function resolveNics(
  input: readonly NicIn[],
  current: readonly Nic[],
  forwards?: PortForward[],
): { nics: Nic[]; forwards: PortForward[] } {
  const taken = new Set(input.map((n) => n.id).filter((id): id is string => !!id));
  const macs = new Set<string>();
  const nics = input.map((n, i): Nic => {
    const known = n.id ? current.find((c) => c.id === n.id) : undefined;
    let id = n.id;
    for (let k = 0; !id; k++) if (!taken.has(`net${k}`)) taken.add((id = `net${k}`));
    if (input.filter((o) => o.id === id).length > 1) throw invalid(`nics.${i}.id`, `${id} is given twice`);
    let mac = n.mac ?? known?.mac;
    while (!mac || (!n.mac && macs.has(mac))) mac = randomMac();
    if (macs.has(mac)) throw invalid(`nics.${i}.mac`, `${mac} is used by another NIC of this VM`);
    macs.add(mac);
    const nic: Nic = {
      id,
      kind: n.kind,
      mac,
      bridge: n.kind === 'bridge' ? n.bridge : null,
      network: n.kind === 'private' ? n.network : null,
      forwards: n.forwards,
    };
    if (n.kind === 'bridge' && !nic.bridge) throw invalid(`nics.${i}.bridge`, 'a bridge NIC needs the host bridge it joins (e.g. br0)');
    if (n.kind === 'private' && !nic.network) throw invalid(`nics.${i}.network`, 'a private NIC needs the name of its network');
    if (!forwardsThrough(n.kind) && n.forwards.length)
      throw invalid(`nics.${i}.forwards`, `a ${n.kind} NIC has no forwards: the guest is reached at its own address`);
    return nic;
  });
  const primary = primaryNic(nics);
  if (forwards) {
    if (primary) primary.forwards = forwards;
    else if (forwards.length) throw invalid('forwards', 'forwards need a passt or user NIC');
  }
  return { nics, forwards: primary?.forwards ?? [] };
}
