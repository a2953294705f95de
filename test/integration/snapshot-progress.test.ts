// A RAM snapshot of a guest with memory in use reports how far QEMU has got while it writes it,
// and a revert while it reads it back, not only "started" and "done": the bar moves. QEMU 7.2 gives no progress while it saves, so
// the host measures it (vms/vmstate-meter.ts); this test holds that the measure is there and
// sensible, never its speed.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { SnapshotProgress } from '../../electron/core/api/contract';
import { guestRun } from './guest-shell';
import { guestArgs, TestHost } from './host-harness';
import { FIXTURE } from '../helpers';

let t: TestHost;

beforeAll(async () => {
  t = await TestHost.start();
});
afterAll(async () => {
  // a host closes without stopping its guests (they outlive it by design): stop ours
  await t.host.close({ stopGuests: true, timeoutSec: 0 });
});

describe('a RAM snapshot in progress', () => {
  it('reports the bytes written, then read back, against the RAM state, then done', async () => {
    const vm = await t.call('vm.create', guestArgs('busy', { memoryMiB: 640, disk: { size: 16 * 1024 * 1024 } }));
    await t.call('vm.start', { vm: vm.id });
    await t.attach(vm.id);
    await t.waitSerial(vm.id, FIXTURE.prompt);
    // 384 MiB of data that does not compress to zero pages, held in the guest's RAM (its root is a ramfs)
    await guestRun(
      t,
      vm.id,
      'dd if=/dev/urandom of=/fill bs=1M count=16 2>/dev/null; for i in $(seq 24); do cat /fill >> /fill2; done; echo filled',
    );

    await t.call('events.subscribe', {});
    const from = t.events.length;
    await t.call('snapshot.create', { vm: vm.id, name: 'full', memory: true });
    const steps = t.events
      .slice(from)
      .filter((e) => e.event === 'snapshot.progress')
      .map((e) => e.payload as SnapshotProgress)
      .filter((p) => p.vmId === vm.id);

    const measured = steps.filter((p) => !p.done && p.total > 1);
    // several samples, each a part of the whole, growing
    expect(measured.length).toBeGreaterThanOrEqual(2);
    for (const p of measured) {
      expect(p.phase).toBe('saving RAM and disks');
      expect(p.current).toBeGreaterThan(0);
      expect(p.current).toBeLessThan(p.total);
      // the RAM to write: at least the data in it, at most the VM's memory
      expect(p.total).toBeGreaterThanOrEqual(384 * 1024 * 1024);
      expect(p.total).toBeLessThanOrEqual(640 * 1024 * 1024);
    }
    for (let i = 1; i < measured.length; i++) expect(measured[i]!.current).toBeGreaterThanOrEqual(measured[i - 1]!.current);
    expect(steps.at(-1)).toMatchObject({ done: true, error: null, current: 1, total: 1 });

    const tree = await t.call('snapshot.list', { vm: vm.id });
    expect(tree.snapshots.find((s) => s.name === 'full')).toMatchObject({ hasRam: true });

    // reverting reads the RAM state back: its size as the image records it is the whole
    const back = t.events.length;
    await t.call('snapshot.revert', { vm: vm.id, snapshot: 'full' });
    const loads = t.events
      .slice(back)
      .filter((e) => e.event === 'snapshot.progress')
      .map((e) => e.payload as SnapshotProgress);
    const read = loads.filter((p) => !p.done && p.total > 1);
    expect(read.length).toBeGreaterThanOrEqual(1);
    for (const p of read) {
      expect(p).toMatchObject({ op: 'revert', phase: 'loading RAM and disks' });
      expect(p.current).toBeGreaterThan(0);
      expect(p.current).toBeLessThan(p.total);
      expect(p.total).toBeGreaterThanOrEqual(384 * 1024 * 1024 * 0.9);
    }
    expect(loads.at(-1)).toMatchObject({ done: true, error: null });
  });
});
