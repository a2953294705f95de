// Shared folders: `vm share add|remove|list`. Adding one takes an admin (a host path of the
// caller's choosing); on a running VM the change waits for the next boot.
import path from 'node:path';
import type { ShareInfo, UpdateResult } from '../../core/api/contract.js';
import { out, printJson, shellQuote, table } from '../format.js';
import { command, flag, option } from '../table.js';
import { oneOf, text } from '../values.js';

export const shareCommands = [
  command({
    words: 'vm share add',
    args: ['NAME', 'HOSTDIR'],
    summary: 'Share a host folder with a VM (virtiofs, or 9p where virtiofsd is missing); from its next boot',
    options: {
      tag: option('TAG', 'the name the guest mounts it by (default: the folder name)', text),
      'read-only': flag('the guest may read but not change anything in it'),
      via: option(
        'auto|virtiofs|9p',
        'how it reaches the guest (default auto: virtiofs where the host can run virtiofsd)',
        oneOf('auto', 'virtiofs', '9p'),
      ),
    },
    async run({ args: [name, dir], o, host }) {
      const c = await host();
      const res = await c.call('vm.share.add', { vm: name, path: path.resolve(dir), tag: o.tag, readOnly: !!o['read-only'], via: o.via });
      const shares = await c.call('vm.share.list', { vm: res.id });
      const added = shares.find((s) => s.path === res.config.shares.at(-1)?.path) ?? shares.at(-1)!;
      out(`Shared ${added.path} with "${res.name}" as "${added.tag}" (${describe(added)})`);
      out(`In the guest, as root: ${added.mount}`);
      notLive(res);
      return 0;
    },
  }),
  command({
    words: 'vm share remove',
    args: ['NAME', 'TAG'],
    summary: 'Stop sharing a folder with a VM (from its next boot); the folder itself is untouched',
    options: {},
    async run({ args: [name, tag], host }) {
      const res = await (await host()).call('vm.share.remove', { vm: name, tag });
      out(`"${res.name}" no longer shares "${tag}"`);
      notLive(res);
      return 0;
    },
  }),
  command({
    words: 'vm share list',
    args: ['NAME'],
    summary: "List a VM's shared folders with the command that mounts each in the guest",
    options: { json: flag('print JSON for scripts') },
    async run({ args: [name], o, host }) {
      const shares = await (await host()).call('vm.share.list', { vm: name });
      if (o.json) printJson(shares);
      else out(shareTable(name, shares));
      return 0;
    },
  }),
];

function describe(s: ShareInfo): string {
  return [
    s.mechanism,
    s.readOnly ? 'read-only' : 'read-write',
    s.pending && `${s.pending === 'add' ? 'added' : 'removed'} at the next boot`,
  ]
    .filter(Boolean)
    .join(', ');
}

function notLive(res: UpdateResult): void {
  for (const n of res.notLive) out(`  pending until the next boot: ${n.why}`);
}

export function shareTable(name: string, shares: ShareInfo[]): string {
  if (!shares.length) return `"${name}" shares no folders. Add one: corral vm share add ${shellQuote(name)} HOSTDIR`;
  return table([
    ['TAG', 'HOST FOLDER', 'ACCESS', 'MOUNT IN THE GUEST (as root)'],
    ...shares.map((s) => [s.tag, s.path, describe(s), s.mount]),
  ]);
}
