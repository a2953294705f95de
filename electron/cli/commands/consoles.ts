// The guest's output: the serial console, its log, and the screen.
import { writeFile } from 'node:fs/promises';
import path from 'node:path';
import type { ControlClient } from '../client.js';
import { runConsole } from '../console.js';
import { out } from '../format.js';
import { command, flag } from '../table.js';
import { guestOutput } from '../term-filter.js';

const RAW_HELP = "pass the guest's escape sequences through unfiltered (clipboard, title, terminal queries)";

export const consoleCommands = [
  command({
    words: 'vm console',
    args: ['NAME'],
    summary: 'Attach to the serial console in this terminal; Ctrl-] leaves',
    options: { raw: flag(RAW_HELP) },
    async run({ args: [name], o, host }) {
      return await runConsole(await host(), name, Boolean(o.raw));
    },
  }),
  command({
    words: 'vm log',
    args: ['NAME'],
    summary: 'Print the serial console log, kept from boot',
    options: { follow: flag('keep printing new output, across restarts'), raw: flag(RAW_HELP) },
    async run({ args: [name], o, host }) {
      return await showLog(await host(), name, Boolean(o.follow), Boolean(o.raw));
    },
  }),
  command({
    words: 'vm screenshot',
    args: ['NAME', 'FILE.png'],
    summary: 'Save the screen of a running VM as a PNG',
    options: {},
    async run({ args: [name, file], host }) {
      const { png } = await (await host()).call('vm.screenshot', { vm: name });
      const target = path.resolve(file);
      await writeFile(target, Buffer.from(png, 'base64'));
      out(`Saved the screen of "${name}" to ${target}`);
      return 0;
    },
  }),
];

async function showLog(c: ControlClient, name: string, follow: boolean, raw: boolean): Promise<number> {
  const vm = await c.call('vm.get', { vm: name });
  const print = guestOutput(raw);
  if (follow) {
    c.on('serial.data', (p) => p.vmId === vm.id && print(p.data));
    await c.call('events.subscribe', {});
    c.on('vm.changed', (v) => {
      if (v.id === vm.id && v.state === 'running') void c.call('serial.attach', { vm: vm.id }).catch(() => undefined);
    });
  }
  const { data } = await c.call('serial.log', { vm: vm.id, tailBytes: 16 * 1024 * 1024 });
  print(data);
  if (!follow) {
    print.end();
    return 0;
  }
  if (vm.state === 'running' || vm.state === 'paused') await c.call('serial.attach', { vm: vm.id }).catch(() => undefined);
  return await new Promise<number>((resolve) => c.onClose(() => resolve(0)));
}
