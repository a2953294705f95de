// A full clone of a snapshot: the copy holds the disk as it was at the snapshot, not as it is,
// and the settings the snapshot was taken with. No guest needed: qemu-io writes the disk.
import { execFileSync } from 'node:child_process';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { guestArgs, TestHost } from './host-harness';

let t: TestHost;
const io = (disk: string, cmd: string) => execFileSync('qemu-io', ['-f', 'qcow2', '-c', cmd, disk], { encoding: 'utf8' });
/** Whether the first 64 KiB of `disk` hold `byte` throughout (qemu-io fails the read when they do not). */
function holds(disk: string, byte: number): boolean {
  try {
    return !/Pattern verification failed/.test(io(disk, `read -P ${byte} 0 64k`));
  } catch (err) {
    if (/Pattern verification failed/.test(String((err as { stdout?: string }).stdout))) return false;
    throw err;
  }
}

beforeAll(async () => {
  t = await TestHost.start();
});
afterAll(() => t.close());

describe('clone --from-snapshot', () => {
  it('copies the disk and settings of the snapshot, not the current ones', async () => {
    const vm = await t.call('vm.create', guestArgs('origin', { disk: { size: 16 * 1024 * 1024 }, cpus: 1 }));
    const disk = vm.config.disks[0]!.path;
    io(disk, 'write -P 0xaa 0 64k');
    await t.call('snapshot.create', { vm: 'origin', name: 'before', memory: false });
    io(disk, 'write -P 0xbb 0 64k');
    await t.call('vm.update', { vm: 'origin', cpus: 2 });

    await expect(t.call('vm.clone', { vm: 'origin', name: 'nope', linked: true, fromSnapshot: 'before' })).rejects.toMatchObject({
      api: { code: 'invalid-argument', field: 'linked' },
    });
    await expect(t.call('vm.clone', { vm: 'origin', name: 'nope', fromSnapshot: 'missing' })).rejects.toMatchObject({
      api: { code: 'not-found' },
    });

    const past = await t.call('vm.clone', { vm: 'origin', name: 'past', fromSnapshot: 'before' });
    expect(holds(past.config.disks[0]!.path, 0xaa)).toBe(true);
    expect(holds(past.config.disks[0]!.path, 0xbb)).toBe(false);
    expect(past.config.cpus).toBe(1);
    expect(past.config.nics[0]!.mac).not.toBe(vm.config.nics[0]!.mac);
    const now = await t.call('vm.clone', { vm: 'origin', name: 'now' });
    expect(holds(now.config.disks[0]!.path, 0xbb)).toBe(true);
    expect(now.config.cpus).toBe(2);
    // the source is as it was, and a flattened copy carries none of its snapshots
    expect(holds(disk, 0xbb)).toBe(true);
    expect(io(past.config.disks[0]!.path, 'info')).toBeTruthy();
    expect(execFileSync('qemu-img', ['snapshot', '-l', past.config.disks[0]!.path], { encoding: 'utf8' })).not.toMatch(
      /before|\d{4}-\d\d-\d\d/,
    );
    expect((await t.call('vm.list', {})).map((v) => v.name).sort()).toEqual(['now', 'origin', 'past']);
  });
});
