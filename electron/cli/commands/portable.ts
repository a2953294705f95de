// Clones, export and import: long copies with a progress line on stderr; Ctrl-C cancels the
// job on the host, which leaves nothing behind.
import path from 'node:path';
import type { EventMap } from '../../core/api/contract.js';
import { formatSize } from '../../core/api/units.js';
import type { ControlClient } from '../client.js';
import { out, printJson, table } from '../format.js';
import { command, flag, option } from '../table.js';
import { text } from '../values.js';

type Progress = EventMap['job.progress'];

function progressLine(p: Progress): string {
  const pct = p.total ? Math.min(100, Math.floor((p.done / p.total) * 100)) : 0;
  const rate = p.rateBps ? `${formatSize(p.rateBps)}/s` : '-';
  const eta = p.etaSec === null ? '' : `, ${p.etaSec < 60 ? `${p.etaSec} s` : `${Math.ceil(p.etaSec / 60)} min`} left`;
  return `${p.phase}: ${pct}% (${formatSize(p.done)} of ${formatSize(p.total)}, ${rate}${eta})`;
}

/** Runs a job call with a live progress line; SIGINT asks the host to cancel it. */
async function withProgress<T>(c: ControlClient, op: string, call: (job: string) => Promise<T>): Promise<T> {
  const job = `cli-${op}-${process.pid}-${Date.now().toString(36)}`;
  const tty = process.stderr.isTTY;
  let last = '';
  c.on('job.progress', (p) => {
    if (p.job !== job) return;
    const line = progressLine(p);
    if (tty) process.stderr.write(`\r\x1b[K${line}`);
    else if (p.phase !== last) process.stderr.write(`${line}\n`);
    last = p.phase;
  });
  const onInt = () => {
    process.stderr.write(`\nCancelling the ${op}…\n`);
    void c.call('job.cancel', { job }).catch(() => undefined);
  };
  process.on('SIGINT', onInt);
  try {
    return await call(job);
  } finally {
    process.off('SIGINT', onInt);
    if (tty && last) process.stderr.write('\r\x1b[K');
  }
}

export const portableCommands = [
  command({
    words: 'vm clone',
    args: ['SRC', 'NEW'],
    summary: 'Copy a stopped VM under a new name, with a new MAC and TPM identity',
    options: {
      linked: flag('an overlay on a managed base instead of a full copy (fast, shares the base)'),
      'keep-tpm': flag('keep the TPM identity (its keys) instead of making a new one'),
      'from-snapshot': option('SNAP', 'copy that snapshot (its disks and settings) instead of the current state', text),
    },
    async run({ args: [src, name], o, host }) {
      const c = await host();
      const fromSnapshot = o['from-snapshot'] as string | undefined;
      const vm = await withProgress(c, 'clone', (job) =>
        c.call('vm.clone', {
          vm: src,
          name,
          linked: Boolean(o.linked),
          keepTpm: Boolean(o['keep-tpm']),
          ...(fromSnapshot ? { fromSnapshot } : {}),
          job,
        }),
      );
      const base = vm.config.disks.find((d) => d.base)?.base;
      out(`Created "${vm.name}" (${vm.id}), a ${o.linked ? 'linked' : 'full'} clone of "${src}"${base ? ` on the base ${base}` : ''}`);
      return 0;
    },
  }),
  command({
    words: 'vm export',
    args: ['NAME', 'FILE'],
    summary: 'Write a stopped VM as one bundle (a tar: manifest, flattened disks, UEFI vars, TPM) into a pool',
    options: { snapshots: flag('carry the snapshot tree: disks keep their internal snapshots instead of being flattened') },
    async run({ args: [name, file], o, host }) {
      const c = await host();
      const snapshots = Boolean(o.snapshots);
      const r = await withProgress(c, 'export', (job) =>
        c.call('vm.export', { vm: name, file: path.resolve(file), ...(snapshots ? { snapshots } : {}), job }),
      );
      out(`Exported "${name}" to ${r.file} (${formatSize(r.size)}${snapshots ? ', with its snapshots' : ''})`);
      return 0;
    },
  }),
  command({
    words: 'vm import',
    args: ['FILE'],
    summary: 'Import a bundle or an OVA from a pool, checked whole before the VM appears',
    options: { name: option('NEW', 'the name of the imported VM (a copy: it gets a new MAC)', (s) => s) },
    async run({ args: [file], o, host }) {
      const c = await host();
      const vm = await withProgress(c, 'import', (job) => c.call('vm.import', { file: path.resolve(file), name: o.name, job }));
      out(`Imported "${vm.name}" (${vm.id}): ${vm.config.cpus} CPU, ${vm.config.memoryMiB} MiB, ${vm.config.disks.length} disk(s)`);
      return 0;
    },
  }),
  command({
    words: 'base list',
    args: [],
    summary: 'List the managed bases of linked clones and the VMs standing on them',
    options: { json: flag('print JSON for scripts') },
    async run({ o, host }) {
      const bases = await (await host()).call('base.list', {});
      if (o.json) printJson(bases);
      else if (!bases.length) out('No managed bases. `corral vm clone SRC NEW --linked` makes one.');
      else out(table([['PATH', 'FROM', 'LINKED CLONES'], ...bases.map((b) => [b.path, b.source, b.dependents.join(', ') || '-'])]));
      return 0;
    },
  }),
  command({
    words: 'base delete',
    args: ['PATH'],
    summary: 'Delete a managed base; refused while linked clones stand on it',
    options: {},
    async run({ args: [file], host }) {
      await (await host()).call('base.delete', { path: path.resolve(file) });
      out(`Deleted the base ${file}`);
      return 0;
    },
  }),
];
