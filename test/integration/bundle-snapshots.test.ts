// Bundles that carry the snapshot tree, on real QEMU: a RAM snapshot taken with a mark on the
// guest's disk, the mark changed, the VM exported with its snapshots (disks as qcow2 with their
// internal snapshots, no backing file) and imported into another data dir, where reverting to
// the snapshot brings the old mark back. Without --snapshots the bundle stays flattened.
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { BOOT_MS } from '../helpers';
import { tarEntries } from './bundle-files';
import { bootToShell, readMark, writeMark } from './guest-shell';
import { guestArgs, TestHost } from './host-harness';

let a: TestHost;
let b: TestHost;
let old = { sha: '', text: '' };
let changed = { sha: '', text: '' };
let bundle = '';

/** What qemu-img says of a disk taken out of a bundle: its snapshot tags and backing file. */
function diskInfo(dir: string, data: Buffer): { tags: string[]; backing: string | undefined } {
  const f = path.join(dir, `probe-${Date.now()}.qcow2`);
  fs.writeFileSync(f, data);
  try {
    const info = JSON.parse(execFileSync('qemu-img', ['info', '-f', 'qcow2', '--output=json', f], { encoding: 'utf8' })) as {
      snapshots?: Array<{ name: string }>;
      'backing-filename'?: string;
    };
    return { tags: (info.snapshots ?? []).map((s) => s.name), backing: info['backing-filename'] };
  } finally {
    fs.rmSync(f);
  }
}

beforeAll(async () => {
  [a, b] = await Promise.all([TestHost.start(), TestHost.start()]);
});
afterAll(async () => {
  for (const t of [a, b]) {
    for (const vm of await t.call('vm.list', {})) if (vm.pid) process.kill(vm.pid, 'SIGKILL');
    await t.close();
  }
});

describe('export --snapshots', () => {
  it(
    'carries the tree: qcow2 disks with their internal snapshots, no backing file, TPM copies per snapshot',
    async () => {
      const vm = await a.call('vm.create', guestArgs('keeper', { disk: { size: 64 * 1024 * 1024 }, tpm: true }));
      await bootToShell(a, vm.id);
      await writeMark(a, vm.id, 'corral-mark-before');
      old = await readMark(a, vm.id);
      const first = await a.call('snapshot.create', { vm: vm.id, name: 'before', description: 'the old mark', memory: true });
      expect(first).toMatchObject({ hasRam: true, withTpm: true });
      await writeMark(a, vm.id, 'corral-mark-after');
      changed = await readMark(a, vm.id);
      expect(changed.sha).not.toBe(old.sha);
      await a.call('vm.stop', { vm: vm.id, timeoutSec: 60 });
      const second = await a.call('snapshot.create', { vm: vm.id, name: 'after', description: '', memory: false });
      expect(second).toMatchObject({ kind: 'offline', parentId: first.id });

      bundle = path.join(a.dataDir, 'images', 'keeper.tar');
      await a.call('vm.export', { vm: vm.id, file: bundle, snapshots: true });
      const entries = tarEntries(bundle);
      const names = entries.map(([n]) => n);
      expect(names[0]).toBe('manifest.json');
      expect(names).toContain(`snapshots/${first.id}/tpm/tpm2-00.permall`);
      const m = JSON.parse(entries[0]![1].toString()) as {
        version: number;
        snapshots: {
          currentId: string;
          list: Array<{ id: string; name: string; parentId: string | null; hasRam: boolean; disks: number[] }>;
        };
      };
      expect(m.version).toBe(2);
      expect(m.snapshots.currentId).toBe(second.id);
      expect(m.snapshots.list).toEqual([
        expect.objectContaining({ id: first.id, name: 'before', parentId: null, hasRam: true, disks: [0] }),
        expect.objectContaining({ id: second.id, name: 'after', parentId: first.id, hasRam: false, disks: [0] }),
      ]);
      const disk = diskInfo(a.dataDir, entries.find(([n]) => n === 'disk0.qcow2')![1]);
      expect(disk.tags.sort()).toEqual([first.id, second.id].sort());
      expect(disk.backing).toBeUndefined();

      // without the flag: flattened, version 1, no snapshot inside
      const flat = path.join(a.dataDir, 'images', 'keeper-flat.tar');
      await a.call('vm.export', { vm: vm.id, file: flat });
      const flatEntries = tarEntries(flat);
      expect((JSON.parse(flatEntries[0]![1].toString()) as { version: number; snapshots?: unknown }).version).toBe(1);
      expect(flatEntries.map(([n]) => n).some((n) => n.startsWith('snapshots/'))).toBe(false);
      expect(diskInfo(a.dataDir, flatEntries.find(([n]) => n === 'disk0.qcow2')![1]).tags).toEqual([]);

      // the same host already has these snapshot ids (the source VM): refused, nothing left
      const vms = (await a.call('vm.list', {})).length;
      await expect(a.call('vm.import', { file: bundle, name: 'keeper-copy' })).rejects.toMatchObject({
        api: { code: 'conflict', message: expect.stringMatching(/already exists on this host/) },
      });
      expect((await a.call('vm.list', {})).length).toBe(vms);
    },
    3 * BOOT_MS,
  );

  it(
    'imports on another data dir with its tree; reverting to the RAM snapshot brings the old mark back',
    async () => {
      const copy = path.join(b.dataDir, 'images', 'keeper.tar');
      fs.copyFileSync(bundle, copy);
      const vm = await b.call('vm.import', { file: copy });
      const tree = await b.call('snapshot.list', { vm: vm.id });
      expect(tree.snapshots.map((s) => [s.name, s.description, s.hasRam, s.withTpm])).toEqual([
        ['before', 'the old mark', true, true],
        ['after', '', false, true],
      ]);
      expect(tree.snapshots[1]!.parentId).toBe(tree.snapshots[0]!.id);
      expect(tree.currentId).toBe(tree.snapshots[1]!.id);
      // the snapshot's config points at the imported disk, not the source's
      expect(tree.snapshots[0]!.config.disks.map((d) => d.path)).toEqual(vm.config.disks.map((d) => d.path));
      expect(fs.existsSync(path.join(b.dataDir, 'vms', vm.id, 'snapshots', tree.snapshots[0]!.id, 'tpm', 'tpm2-00.permall'))).toBe(true);

      // the current state is the changed mark
      await bootToShell(b, vm.id);
      expect(await readMark(b, vm.id)).toEqual(changed);
      // back to "before" while running: its RAM state loads, the guest resumes there
      const r = await b.call('snapshot.revert', { vm: vm.id, snapshot: 'before' });
      expect(r.restarted).toBe(false);
      expect(await readMark(b, vm.id)).toEqual(old);
      expect((await b.call('snapshot.list', { vm: vm.id })).currentId).toBe(tree.snapshots[0]!.id);
      await b.call('vm.kill', { vm: vm.id });
    },
    3 * BOOT_MS,
  );
});
