// Snapshots of a VM: take, list (the tree), revert, delete, and the schedule.
import type { SnapshotInfo, SnapshotTree } from '../../core/api/contract.js';
import type { ControlClient } from '../client.js';
import { out, printJson, table } from '../format.js';
import { command, flag, option, UsageError } from '../table.js';
import { duration, int, text } from '../values.js';

const json = flag('print JSON for scripts');

/** A progress line on a terminal while the host reports the job (nothing when piped). */
async function withProgress<T>(c: ControlClient, vm: string, snapshot: string, work: Promise<T>): Promise<T> {
  if (!process.stderr.isTTY) return work;
  const { id } = await c.call('vm.get', { vm });
  await c.call('events.subscribe', {});
  const started = Date.now();
  c.on('snapshot.progress', (p) => {
    if (p.vmId !== id || p.snapshot.toLowerCase() !== snapshot.toLowerCase() || p.done) return;
    const pct = p.total ? Math.round((100 * p.current) / p.total) : 0;
    process.stderr.write(`\r\x1b[K${p.op} ${p.snapshot}: ${p.phase} ${pct}% (${((Date.now() - started) / 1000).toFixed(1)} s)`);
  });
  try {
    return await work;
  } finally {
    process.stderr.write('\r\x1b[K');
  }
}

function kindText(s: SnapshotInfo): string {
  if (s.kind === 'live') return 'RAM+disks';
  if (s.kind === 'offline') return 'disks (stopped)';
  return s.consistency === 'frozen' ? 'disks (fs frozen)' : 'disks (crash-consistent)';
}

export function treeText(name: string, t: SnapshotTree): string {
  const lines: string[] = [];
  if (!t.snapshots.length) lines.push(`${name} has no snapshots. Take one: corral vm snapshot create ${name} SNAP`);
  else {
    const depth = new Map<string, number>();
    const rows = t.snapshots.map((s) => {
      const d = s.parentId ? (depth.get(s.parentId) ?? -1) + 1 : 0;
      depth.set(s.id, d);
      return [
        `${'  '.repeat(d)}${s.name}${s.id === t.currentId ? '  <- you are here' : ''}`,
        new Date(s.createdAt).toISOString().replace(/\.\d+Z$/, 'Z'),
        kindText(s),
        s.pauseMs === null ? '-' : `${s.pauseMs} ms`,
        s.description,
      ];
    });
    lines.push(table([['SNAPSHOT', 'TAKEN', 'HOLDS', 'PAUSE', 'DESCRIPTION'], ...rows]));
  }
  if (t.schedule)
    lines.push(
      `Schedule: every ${t.schedule.everySec} s, keep ${t.schedule.keep}${t.schedule.nextAt ? `; next ${new Date(t.schedule.nextAt).toISOString()}` : ''}`,
    );
  return lines.join('\n');
}

export const snapshotCommands = [
  command({
    words: 'vm snapshot create',
    args: ['NAME', 'SNAP'],
    summary: 'Take a snapshot: RAM and disks of a running VM (the guest resumes there), or its disks',
    options: {
      'no-memory': flag('disks only (frozen by the guest agent if one answers, else crash-consistent)'),
      description: option('TEXT', 'what this snapshot is for', text),
      json,
    },
    async run({ args: [name, snap], o, host }) {
      const c = await host();
      const call = c.call('snapshot.create', { vm: name, name: snap, description: o.description ?? '', memory: !o['no-memory'] });
      const s = await withProgress(c, name, snap, call);
      if (o.json) printJson(s);
      else out(`${name}: snapshot ${s.name} taken (${kindText(s)}${s.pauseMs !== null ? `, guest paused ${s.pauseMs} ms` : ''})`);
      return 0;
    },
  }),
  command({
    words: 'vm snapshot list',
    args: ['NAME'],
    summary: 'Show the snapshot tree of a VM and where it is in it',
    options: { json },
    async run({ args: [name], o, host }) {
      const t = await (await host()).call('snapshot.list', { vm: name });
      if (o.json) printJson(t);
      else out(treeText(name, t));
      return 0;
    },
  }),
  command({
    words: 'vm snapshot revert',
    args: ['NAME', 'SNAP'],
    summary: 'Go back to a snapshot; the current state of the VM is lost',
    options: { json },
    async run({ args: [name, snap], o, host }) {
      const c = await host();
      const r = await withProgress(c, name, snap, c.call('snapshot.revert', { vm: name, snapshot: snap }));
      if (o.json) printJson(r);
      else out(`${name}: reverted to ${snap}; ${r.vm.state}${r.restarted ? ' (the guest was stopped and started again)' : ''}`);
      return 0;
    },
  }),
  command({
    words: 'vm snapshot delete',
    args: ['NAME', 'SNAP'],
    summary: 'Delete a snapshot; its children stay and can still be reverted to',
    options: {},
    async run({ args: [name, snap], host }) {
      const c = await host();
      await withProgress(c, name, snap, c.call('snapshot.delete', { vm: name, snapshot: snap }));
      out(`${name}: snapshot ${snap} deleted`);
      return 0;
    },
  }),
  command({
    words: 'vm snapshot schedule',
    args: ['NAME'],
    summary: 'Take disk snapshots on a schedule and keep the newest N of them (or --off)',
    options: {
      every: option('DURATION', 'how often, e.g. 1h or 30m (at least 1m)', duration),
      keep: option('N', 'how many scheduled snapshots to keep', int),
      off: flag('turn the schedule off (its snapshots stay)'),
      json,
    },
    async run({ args: [name], o, host }) {
      if (o.off && (o.every !== undefined || o.keep !== undefined)) throw new UsageError('--off takes neither --every nor --keep');
      if (!o.off && (o.every === undefined || o.keep === undefined)) throw new UsageError('give --every DURATION and --keep N, or --off');
      const schedule = o.off ? null : { everySec: o.every!, keep: o.keep! };
      const t = await (await host()).call('snapshot.schedule', { vm: name, schedule });
      if (o.json) printJson(t.schedule);
      else
        out(
          t.schedule ? `${name}: a snapshot every ${t.schedule.everySec} s, keeping ${t.schedule.keep}` : `${name}: no snapshot schedule`,
        );
      return 0;
    },
  }),
];
