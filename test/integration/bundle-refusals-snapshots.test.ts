// Bad snapshot sections against a real host: a bundle exported with its snapshot tree, then
// its manifest altered. Each is refused with an error naming what is wrong, and leaves nothing
// behind (no VM, no staged file, no disk, no snapshot row).
import fs from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { tarEntries, writeTar } from './bundle-files';
import { guestArgs, TestHost } from './host-harness';

interface Snap {
  id: string;
  parentId: string | null;
  name: string;
  [k: string]: unknown;
}
interface M {
  version: number;
  snapshots: { currentId: string | null; list: Snap[] };
  [k: string]: unknown;
}

let t: TestHost;
let images = '';
let entries: Array<[string, Buffer]> = [];

const leftovers = () => [...fs.readdirSync(images), ...fs.readdirSync(path.join(t.dataDir, 'vms'))].sort();
const manifestOf = () => JSON.parse(entries[0]![1].toString()) as M;

beforeAll(async () => {
  t = await TestHost.start();
  images = path.join(t.dataDir, 'images');
  const vm = await t.call('vm.create', guestArgs('treed', { disk: { size: 16 * 1024 * 1024 } }));
  await t.call('snapshot.create', { vm: vm.id, name: 'one', memory: false });
  await t.call('snapshot.create', { vm: vm.id, name: 'two', memory: false });
  const good = path.join(images, 'treed.tar');
  await t.call('vm.export', { vm: vm.id, file: good, snapshots: true });
  entries = tarEntries(good);
  fs.rmSync(good);
  // the ids are this host's: the bundles go to a host without the source VM
  await t.call('vm.delete', { vm: vm.id });
});
afterAll(() => t.close());

async function refused(name: string, alter: (m: M) => void, why: RegExp): Promise<void> {
  const m = manifestOf();
  alter(m);
  const file = path.join(images, name);
  writeTar(file, [['manifest.json', Buffer.from(JSON.stringify(m))], ...entries.slice(1)]);
  const before = leftovers();
  await expect(t.call('vm.import', { file, name: 'imported' })).rejects.toMatchObject({
    api: { field: 'file', message: expect.stringMatching(why) },
  });
  expect(await t.call('vm.list', {})).toEqual([]);
  expect(leftovers()).toEqual(before);
  fs.rmSync(file);
}

describe('bad snapshot sections are refused and leave nothing behind', () => {
  it('the good bundle imports with its tree (the control case)', async () => {
    const file = path.join(images, 'good.tar');
    writeTar(file, entries);
    const vm = await t.call('vm.import', { file, name: 'control' });
    expect((await t.call('snapshot.list', { vm: vm.id })).snapshots.map((s) => s.name)).toEqual(['one', 'two']);
    await t.call('vm.delete', { vm: vm.id });
    fs.rmSync(file);
  });

  it('an unknown parent', () =>
    refused(
      'orphan.tar',
      (m) => void (m.snapshots.list[1]!.parentId = 's0123456789ab'),
      /snapshots\.list\.1 \("two"\): its parent s0123456789ab is not in the bundle/,
    ));

  it('a cycle', () =>
    refused(
      'cycle.tar',
      (m) => void (m.snapshots.list[0]!.parentId = m.snapshots.list[1]!.id),
      /snapshots\.list\.\d \("(one|two)"\): its parents form a cycle/,
    ));

  it('a tag the disk does not hold', () =>
    refused(
      'tagless.tar',
      (m) => {
        const forged = 's0123456789ab';
        const [one, two] = m.snapshots.list as [Snap, Snap];
        two.id = forged;
        m.snapshots.currentId = forged;
        expect(one.id).not.toBe(forged);
      },
      /snapshot "two" \(s0123456789ab\): disk 0 does not hold its tag/,
    ));

  it('absurd counts', async () => {
    await refused(
      'many.tar',
      (m) => {
        const proto = m.snapshots.list[0]!;
        m.snapshots.list = Array.from({ length: 2000 }, (_, i) => ({
          ...proto,
          id: `s${i.toString(16).padStart(12, '0')}`,
          name: `n${i}`,
          parentId: null,
        }));
        m.snapshots.currentId = null;
      },
      /snapshots\.list: must hold at most 1024 snapshots/,
    );
    await refused('disks.tar', (m) => void (m.snapshots.list[0]!.disks = [0, 7]), /names disk 7, which the bundle does not have/);
  });

  it('a snapshot section in a version 1 manifest, and an unknown current snapshot', async () => {
    await refused('old.tar', (m) => void (m.version = 1), /a version 1 bundle carries no snapshots/);
    await refused(
      'current.tar',
      (m) => void (m.snapshots.currentId = 's0123456789ab'),
      /snapshots\.currentId: s0123456789ab is not in the bundle/,
    );
  });
});
