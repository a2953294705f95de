// Where a VM may go: live, with room for its memory (admission counts boot memory, as a host's
// own admission does), not beside a VM of its anti-affinity group, preferred hosts first.
import type { HaVm, HostView } from './model';

export interface Placed {
  host: string;
  why: string;
}

/** Memory committed on each host by the VMs it owns. */
export function committed(vms: HaVm[]): Map<string, number> {
  const m = new Map<string, number>();
  for (const v of vms) m.set(v.owner, (m.get(v.owner) ?? 0) + v.memMiB);
  return m;
}

/** Why `host` cannot take `vm`, or null when it can. */
export function refusal(vm: HaVm, host: HostView, vms: HaVm[], used: Map<string, number>): string | null {
  if (!host.alive) return 'no live lease';
  for (const [name, at] of Object.entries(vm.pools ?? {})) if (host.pools?.[name] !== at) return `no shared pool "${name}" at ${at}`;
  const free = host.memMiB - (used.get(host.id) ?? 0);
  if (free < vm.memMiB) return `${free} MiB free, needs ${vm.memMiB}`;
  const group = vm.ha.group;
  if (group) {
    const peer = vms.find((o) => o.name !== vm.name && o.owner === host.id && o.ha.enabled && o.ha.group === group);
    if (peer) return `anti-affinity: ${peer.name} of group ${group} runs there`;
  }
  return null;
}

/** The best host for `vm` among `hosts` (never `exclude`), or the reasons none fits. */
export function place(vm: HaVm, hosts: HostView[], vms: HaVm[], used: Map<string, number>, exclude?: string): Placed | { refused: string } {
  const fits = hosts.filter((h) => h.id !== exclude && !refusal(vm, h, vms, used));
  if (!fits.length) {
    const reasons = hosts.filter((h) => h.id !== exclude).map((h) => `${h.id}: ${refusal(vm, h, vms, used)}`);
    return { refused: reasons.join('; ') || 'no other host' };
  }
  const rank = (id: string) => {
    const i = vm.ha.hosts.indexOf(id);
    return i < 0 ? vm.ha.hosts.length : i;
  };
  const freeFrac = (h: HostView) => (h.memMiB - (used.get(h.id) ?? 0)) / h.memMiB;
  fits.sort((a, b) => rank(a.id) - rank(b.id) || freeFrac(b) - freeFrac(a) || a.id.localeCompare(b.id));
  const best = fits[0]!;
  const preferred = vm.ha.hosts.includes(best.id);
  const skipped = hosts.filter((h) => h.alive && h.id !== exclude && !fits.includes(h)).map((h) => `${h.id}: ${refusal(vm, h, vms, used)}`);
  const why = preferred ? 'preferred host with room' : 'most free memory among live hosts';
  return { host: best.id, why: skipped.length ? `${why} that can take it (not ${skipped.join('; ')})` : why };
}
