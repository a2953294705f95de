// Storage pools: the directories VM files may come from.
import path from 'node:path';
import type { Pool, PoolFile } from '../../core/api/contract.js';
import { formatSize } from '../../core/api/units.js';
import { out, printJson, table } from '../format.js';
import { command, flag } from '../table.js';

export const poolCommands = [
  command({
    words: 'pool add',
    args: ['NAME', 'PATH'],
    summary: 'Register a directory as a storage pool: VMs may then use the ISOs, images and boot files in it',
    options: {
      shared: flag('every host of the cluster sees it at the same path (an NFS mount): HA VMs need one'),
    },
    async run({ o, args: [name, dir], host }) {
      const p = await (await host()).call('pool.add', { name, path: path.resolve(dir), ...(o.shared ? { shared: true } : {}) });
      out(`Pool "${p.name}" is ${p.path}${p.shared ? ' (shared: add it under the same name and path on every host)' : ''}`);
      return 0;
    },
  }),
  command({
    words: 'pool list',
    args: [],
    summary: 'List the storage pools, with their free space and the VMs using them',
    options: { json: flag('print JSON for scripts') },
    async run({ o, host }) {
      const pools = await (await host()).call('pool.list', {});
      if (o.json) printJson(pools);
      else out(poolTable(pools));
      return 0;
    },
  }),
  command({
    words: 'pool remove',
    args: ['NAME'],
    summary: 'Unregister a storage pool (its files stay); refused while a VM uses a file in it',
    options: {},
    async run({ args: [name], host }) {
      await (await host()).call('pool.remove', { name });
      out(`Pool "${name}" removed; its files are untouched`);
      return 0;
    },
  }),
  command({
    words: 'pool files',
    args: ['NAME'],
    summary: 'List the ISOs, disk images, kernels and initrds in a storage pool',
    options: { json: flag('print JSON for scripts') },
    async run({ o, args: [name], host }) {
      const files = await (await host()).call('pool.files', { pool: name });
      if (o.json) printJson(files);
      else out(fileTable(name, files));
      return 0;
    },
  }),
];

function poolTable(pools: Pool[]): string {
  return table([
    ['NAME', 'PATH', 'SHARED', 'FREE', 'USED BY'],
    ...pools.map((p) => [
      p.name,
      p.path,
      p.shared ? 'yes' : 'no',
      p.freeBytes === null ? '-' : formatSize(p.freeBytes),
      p.usedBy.join(', ') || '-',
    ]),
  ]);
}

function fileTable(pool: string, files: PoolFile[]): string {
  if (!files.length) return `Pool "${pool}" has no files. Copy ISOs or images into its folder, or upload them in the browser.`;
  return table([
    ['NAME', 'KIND', 'SIZE', 'MODIFIED'],
    ...files.map((f) => [f.name, f.format, formatSize(f.size), new Date(f.mtime).toISOString().slice(0, 16).replace('T', ' ')]),
  ]);
}
