// Looking at VMs and changing their state: list, show, stats, start … delete.
import { out, printJson, showJson, statsText, vmDetails, vmTable } from '../format.js';
import { command, flag, option } from '../table.js';
import { int } from '../values.js';

const json = flag('print JSON for scripts');

/** start, kill, reset, pause and resume: one call, and the state it leaves. */
function transition(op: 'start' | 'kill' | 'reset' | 'pause' | 'resume', summary: string) {
  return command({
    words: `vm ${op}`,
    args: ['NAME'],
    summary,
    options: {},
    async run({ args: [name], host }) {
      const vm = await (await host()).call(`vm.${op}`, { vm: name });
      out(`${vm.name}: ${vm.state}`);
      return 0;
    },
  });
}

export const lifecycleCommands = [
  command({
    words: 'vm list',
    args: [],
    summary: 'List the VMs with their state, size, pid and last exit',
    options: { json },
    async run({ o, host }) {
      const vms = await (await host()).call('vm.list', {});
      if (o.json) printJson(vms.map(showJson));
      else out(vmTable(vms));
      return 0;
    },
  }),
  command({
    words: 'vm show',
    args: ['NAME'],
    summary: 'Show the state and settings of a VM',
    options: { json },
    async run({ args: [name], o, host }) {
      const c = await host();
      const vm = await c.call('vm.get', { vm: name });
      if (o.json) printJson(showJson(vm));
      else out(vmDetails(vm, vm.config.shares.length || vm.pending.includes('shares') ? await c.call('vm.share.list', { vm: vm.id }) : []));
      return 0;
    },
  }),
  command({
    words: 'vm stats',
    args: ['NAME'],
    summary: 'Show the latest CPU, memory and disk figures of a VM',
    options: { json },
    async run({ args: [name], o, host }) {
      const c = await host();
      const vm = await c.call('vm.get', { vm: name });
      const last = (await c.call('vm.stats', { vm: name })).at(-1) ?? null;
      if (o.json) printJson(last);
      else out(statsText(vm, last));
      return 0;
    },
  }),
  transition('start', 'Start a VM'),
  transition('kill', 'Force a VM off at once, like pulling the plug'),
  transition('reset', 'Reset a running VM, like the reset button'),
  transition('pause', 'Pause the vCPUs of a running VM'),
  transition('resume', 'Resume a paused VM'),
  command({
    words: 'vm stop',
    args: ['NAME'],
    summary: 'Press the ACPI power button and wait; force the VM off after the timeout',
    options: { timeout: option('SEC', 'seconds before forcing it off (default 60)', int) },
    async run({ args: [name], o, host }) {
      process.stderr.write(`Stopping ${name} (ACPI power button)…\n`);
      const vm = await (await host()).call('vm.stop', { vm: name, timeoutSec: o.timeout });
      out(`${vm.name}: ${vm.state}${vm.lastExit ? ` (${vm.lastExit.reason})` : ''}`);
      return 0;
    },
  }),
  command({
    words: 'vm delete',
    args: ['NAME'],
    summary: 'Delete a VM with the disks Corral created for it',
    options: { 'keep-disks': flag('keep the disks Corral created (images it did not create are always kept)') },
    async run({ args: [name], o, host }) {
      await (await host()).call('vm.delete', { vm: name, keepDisks: Boolean(o['keep-disks']) });
      out(`Deleted "${name}"`);
      return 0;
    },
  }),
];
