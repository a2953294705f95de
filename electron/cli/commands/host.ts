// The host as a whole: its resources, and the event log of every VM.
import type { ControlClient } from '../client.js';
import { eventLine, hostText, out, printJson } from '../format.js';
import { command, flag } from '../table.js';

export const hostCommands = [
  command({
    words: 'host',
    args: [],
    summary: 'Show the host: QEMU, CPUs, memory and how much of it the VMs commit',
    options: { json: flag('print JSON for scripts') },
    async run({ o, host }) {
      const c = await host();
      const [info, res] = await Promise.all([c.call('host.info', {}), c.call('host.resources', {})]);
      if (o.json) printJson({ ...res, qemu: info.qemu, dataDir: info.dataDir, version: info.version });
      else out(hostText(info, res));
      return 0;
    },
  }),
  command({
    words: 'events',
    args: [],
    summary: 'Print recent events of all VMs: state changes, crashes with their reports',
    options: {
      follow: flag('keep printing new events'),
      json: flag('print JSON: one array, or one object a line with --follow'),
    },
    async run({ o, host }) {
      return await showEvents(await host(), Boolean(o.follow), Boolean(o.json));
    },
  }),
];

async function showEvents(c: ControlClient, follow: boolean, asJson: boolean): Promise<number> {
  const print = (e: Parameters<typeof eventLine>[0]) => process.stdout.write((asJson ? JSON.stringify(e) : eventLine(e)) + '\n');
  if (follow) {
    c.on('event.logged', print);
    await c.call('events.subscribe', {});
  }
  const past = (await c.call('events.list', { limit: follow ? 20 : 200 })).reverse();
  if (asJson && !follow)
    printJson(past); // one array; --follow streams JSON lines
  else past.forEach(print);
  if (!follow) return 0;
  return await new Promise<number>((resolve) => c.onClose(() => resolve(0)));
}
