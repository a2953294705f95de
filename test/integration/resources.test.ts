// Resource settings applied live to a real guest, checked both from QEMU's side (QMP/HMP)
// and from inside the guest; admission and statistics on the real host.
import os from 'node:os';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { busyThreshold, FIXTURE, waitFor } from '../helpers';
import { guestArgs, stripAnsi, TestHost } from './host-harness';

let t: TestHost;
let id: string;
beforeAll(async () => {
  t = await TestHost.start();
  await t.call('events.subscribe', {});
  const vm = await t.call('vm.create', guestArgs('elastic', { cpus: 1, maxCpus: 2, memoryMiB: 256, disk: { size: 64 * 1024 * 1024 } }));
  id = vm.id;
  await t.call('vm.start', { vm: id });
  await t.attach(id);
  await t.waitSerial(id, FIXTURE.prompt);
});
afterAll(async () => {
  for (const vm of await t.call('vm.list', {})) if (vm.pid) process.kill(vm.pid, 'SIGKILL');
  await t.close();
});

/** Runs a shell command in the guest and returns what it printed between two markers. */
let seq = 0;
async function guest(cmd: string): Promise<string> {
  const tag = `R${++seq}X`;
  await t.type(id, `echo ${tag}-begin; ${cmd}; echo ${tag}-end\n`);
  await t.waitSerial(id, new RegExp(`\\n${tag}-end`), 30_000);
  const out = stripAnsi(t.serial.get(id)!);
  const from = out.lastIndexOf(`\n${tag}-begin`);
  return out.slice(out.indexOf('\n', from + 1) + 1, out.lastIndexOf(`\n${tag}-end`)).trim();
}

const memTotalKiB = async () => Number(/MemTotal:\s+(\d+)/.exec(await guest('grep MemTotal /proc/meminfo'))![1]);

describe('live resources on a real guest', () => {
  it('balloons memory from 256 MiB to 192 MiB: QEMU and the guest both show it', async () => {
    const before = await memTotalKiB();
    const vm = await t.call('vm.update', { vm: id, memoryMiB: 192, live: true });
    expect(vm.pending).toEqual([]);
    await waitFor(
      'query-balloon at 192 MiB',
      async () => /actual=192\b/.test((await t.call('monitor.exec', { vm: id, command: 'info balloon' })).output),
      30_000,
      250,
    );
    await waitFor('the guest to give up 64 MiB', async () => before - (await memTotalKiB()) >= 60 * 1024, 30_000, 500);
    // more than it booted with cannot be live: refused with --live, pending without
    await expect(t.call('vm.update', { vm: id, memoryMiB: 512, live: true })).rejects.toThrow(/booted with 256 MiB/);
    const pending = await t.call('vm.update', { vm: id, memoryMiB: 512, maxMemoryMiB: 512 });
    expect(pending.pending.sort()).toEqual(['maxMemoryMiB', 'memoryMiB']);
    await t.call('vm.update', { vm: id, memoryMiB: 192, maxMemoryMiB: null });
    // with no maximum set, memory above what it booted with simply waits for the next boot
    expect((await t.call('vm.update', { vm: id, memoryMiB: 384 })).pending).toContain('memoryMiB');
    await t.call('vm.update', { vm: id, memoryMiB: 192 });
  });

  it("hotplugs a vCPU: the guest's CPU count grows", async () => {
    expect(await guest('nproc')).toBe('1');
    await t.call('vm.update', { vm: id, cpus: 2, live: true });
    await waitFor('2 CPUs in the guest', async () => (await guest('nproc')) === '2', 30_000, 500);
    await expect(t.call('vm.update', { vm: id, cpus: 3, live: true })).rejects.toMatchObject({ api: { field: 'maxCpus' } });
    await expect(t.call('vm.update', { vm: id, cpus: 1, live: true })).rejects.toThrow(/not removed/);
  });

  it("sets disk I/O limits, visible in QEMU's block info", async () => {
    await t.call('vm.update', { vm: id, ioBps: 10 * 1024 * 1024, ioIops: 500, live: true });
    const info = (await t.call('monitor.exec', { vm: id, command: 'info block' })).output;
    expect(info).toMatch(/bps=10485760/);
    expect(info).toMatch(/iops=500/);
  });

  it('grows the disk live, visible in the guest; never shrinks it', async () => {
    expect(await guest('cat /sys/block/vda/size')).toBe(String((64 * 1024 * 1024) / 512));
    await t.call('vm.resizeDisk', { vm: id, size: 128 * 1024 * 1024 });
    await waitFor(
      'the guest to see 128 MiB',
      async () => (await guest('cat /sys/block/vda/size')) === String((128 * 1024 * 1024) / 512),
      30_000,
      500,
    );
    await expect(t.call('vm.resizeDisk', { vm: id, size: 32 * 1024 * 1024 })).rejects.toMatchObject({ api: { field: 'size' } });
  });

  it('statistics rise when the guest burns CPU', async () => {
    // three samples of the idle guest, taken from now on
    const since = Date.now();
    const idle = await waitFor(
      'three idle samples',
      async () => {
        const s = (await t.call('vm.stats', { vm: id })).filter((x) => x.at > since);
        return s.length >= 3 ? s.map((x) => x.cpuPercent) : null;
      },
      60_000,
      500,
    );
    const threshold = busyThreshold(idle);
    await guest('(while :; do :; done) & true');
    const busy = await waitFor(
      `a sample above ${threshold.toFixed(1)} % (idle: ${idle.map((x) => x.toFixed(1)).join(', ')} %)`,
      async () => {
        const s = (await t.call('vm.stats', { vm: id })).at(-1);
        return s && s.cpuPercent > threshold ? s : null;
      },
      60_000,
      1000,
    );
    expect(busy.rssBytes).toBeGreaterThan(50 * 1024 * 1024);
    expect(busy.balloonBytes).toBe(192 * 1024 * 1024);
    expect(t.events.some((e) => e.event === 'stats')).toBe(true);
    const host = await t.call('host.resources', {});
    expect(host.cpus).toBe(os.cpus().length);
    expect(host.committedBytes).toBe(256 * 1024 * 1024); // it booted with 256 MiB
  });
});

describe('host capacity and admission', () => {
  it('refuses to start a VM over capacity, naming the numbers', async () => {
    const huge = Math.ceil(os.totalmem() / 1024 / 1024) + 1024;
    const vm = await t.call('vm.create', guestArgs('too big', { memoryMiB: huge }));
    await expect(t.call('vm.start', { vm: vm.id })).rejects.toThrow(
      /not enough memory to start "too big": .* GiB for "too big" \+ .* already committed = .*, limit .* \(host RAM .* × overcommit 1\)/,
    );
    expect((await t.call('vm.get', { vm: vm.id })).state).toBe('stopped');
  });

  it('CPU weight and cap say why they are unavailable here rather than pretend', async () => {
    const res = await t.call('host.resources', {});
    if (res.cgroups.available) return; // a delegated cgroup v2 host: nothing to refuse
    await expect(t.call('vm.update', { vm: id, cpuWeight: 200 })).rejects.toThrow(/unavailable on this host: /);
  });

  it.each([
    [{ cpus: 0 }, 'cpus'],
    [{ cpus: 1e6 }, 'cpus'],
    [{ memoryMiB: -1 }, 'memoryMiB'],
    [{ memoryMiB: Number.NaN }, 'memoryMiB'],
    [{ memoryMiB: 1e30 }, 'memoryMiB'],
    [{ cpuWeight: 0 }, 'cpuWeight'],
    [{ cpuWeight: 20000 }, 'cpuWeight'],
    [{ cpuCapPercent: -5 }, 'cpuCapPercent'],
    [{ ioBps: 1 }, 'ioBps'],
    [{ maxCpus: 1, cpus: 2 }, 'maxCpus'],
  ])('refuses %j naming the field', async (args, field) => {
    await expect(t.call('vm.update', { vm: id, ...args })).rejects.toMatchObject({ api: { field } });
  });
});
