// Maintenance of a cluster host: evacuate (its VMs leave, it takes no new ones) and restore.
import type { EvacuatedVm, EvacuationProgress } from '../../core/api/contract.js';
import type { ControlClient } from '../client.js';
import { out, printJson, table } from '../format.js';
import { command, flag } from '../table.js';

function vmsTable(vms: EvacuatedVm[]): string {
  return table([['VM', 'DONE', 'WHERE', 'WHY'], ...vms.map((v) => [v.name, v.action, v.to ?? '-', v.why ?? ''])]);
}

/** Prints the host's progress events for `host` on stderr while `call` runs. */
async function withProgress<T>(c: ControlClient, host: string, call: () => Promise<T>): Promise<T> {
  c.on('host.evacuation', (p: EvacuationProgress) => {
    if (p.host === host) process.stderr.write(`[${p.done}/${p.total}] ${p.message}\n`);
  });
  await c.call('events.subscribe', {});
  return await call();
}

export const evacuateCommands = [
  command({
    words: 'host evacuate',
    args: ['HOST'],
    summary: "Maintenance: move every VM off a cluster host (as each VM's evacuate setting says); it takes no new VMs",
    options: { json: flag('print JSON for scripts') },
    async run({ args: [name], o, host }) {
      const c = await host();
      const r = await withProgress(c, name, () => c.call('host.evacuate', { host: name }));
      if (o.json) printJson(r);
      else {
        if (r.vms.length) out(vmsTable(r.vms));
        out(`${r.host} is in maintenance: it takes no VMs until corral host restore ${r.host}`);
      }
      return r.vms.some((v) => v.action === 'failed') ? 1 : 0;
    },
  }),
  command({
    words: 'host restore',
    args: ['HOST'],
    summary: 'End maintenance of a cluster host; --bring-back moves its VMs back',
    options: {
      'bring-back': flag('migrate the VMs that left back to it, and start those it stopped'),
      json: flag('print JSON for scripts'),
    },
    async run({ args: [name], o, host }) {
      const c = await host();
      const r = await withProgress(c, name, () => c.call('host.restore', { host: name, bringBack: Boolean(o['bring-back']) }));
      if (o.json) printJson(r);
      else {
        if (r.returned.length) out(vmsTable(r.returned));
        out(`${r.host} takes VMs again`);
      }
      return r.returned.some((v) => v.action === 'failed') ? 1 : 0;
    },
  }),
];
