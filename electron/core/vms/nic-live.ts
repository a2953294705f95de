// A new NIC list applied to a running guest (the rules said it can be: nicsLiveBlocker): NICs
// added live are unplugged again, forwards change in place (slirp's own table; a new passt
// with the new set, as the keeper puts one back), new NICs are plugged in. Returns the NICs the
// QEMU runs with now, those added live marked `hotplug` so that they can be removed live.
import type { Nic } from '../api/contract.js';
import { hotAddNic, hotRemoveNic, updateSlirpForwards } from '../qemu/nic-hotplug.js';
import type { RunningVm } from './registry.js';

const sameForwards = (a: Nic, b: Nic) => JSON.stringify(a.forwards) === JSON.stringify(b.forwards);

export async function applyNicsLive(run: RunningVm, next: readonly Nic[], applied: readonly Nic[], hostKey: string): Promise<Nic[]> {
  const { machine } = run;
  for (const a of applied) if (!next.some((n) => n.id === a.id)) await hotRemoveNic(machine, a);
  for (const n of next) {
    const a = applied.find((x) => x.id === n.id);
    if (!a || sameForwards(a, n)) continue;
    if (n.kind === 'user') await updateSlirpForwards(machine.qmp, n.id, a.forwards, n.forwards);
    else if (n.kind === 'passt') {
      if (!machine.restartPasst) throw new Error(`this host cannot restart the passt of ${n.id}`);
      await machine.restartPasst(n);
    }
  }
  const now: Nic[] = [];
  for (const n of next) {
    const a = applied.find((x) => x.id === n.id);
    if (!a) await hotAddNic(machine.qmp, n, hostKey);
    now.push(!a || a.hotplug ? { ...n, hotplug: true } : n);
  }
  return now;
}
