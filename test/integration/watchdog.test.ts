// The supervisor against real failures: real signals to real QEMU processes, real guest
// kernel panics and a real i6300esb watchdog, under the restart policies.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { vmFiles } from '../../electron/core/paths';
import { BOOT_MS, FIXTURE, freePort, qemuPidsFor, waitFor, waitState } from '../helpers';
import { guestArgs, TestHost } from './host-harness';

let t: TestHost;
beforeAll(async () => {
  t = await TestHost.start(undefined, {
    qmpIntervalMs: 500,
    qmpTimeoutMs: 500,
    livenessIntervalMs: 500,
    livenessTimeoutMs: 1000,
    livenessMisses: 3,
  });
  await t.call('events.subscribe', {});
});
afterAll(async () => {
  for (const vm of await t.call('vm.list', {})) if (vm.pid) process.kill(vm.pid, 'SIGKILL');
  await t.close();
});

/** Waits until the VM runs a QEMU other than `oldPid`. */
async function runningAgain(vm: string, oldPid: number | null) {
  return waitFor(
    'the VM running again',
    async () => {
      const v = await t.call('vm.get', { vm });
      return v.state === 'running' && v.pid !== oldPid ? v : null;
    },
    BOOT_MS,
  );
}

describe('watchdog', () => {
  it('SIGKILL of QEMU: running again at once, reason qemu-killed, with a crash report', async () => {
    const vm = await t.call('vm.create', guestArgs('kill-me', { restart: 'on-failure' }));
    const first = await t.call('vm.start', { vm: vm.id });
    await t.attach(vm.id);
    await t.waitSerial(vm.id, FIXTURE.banner);
    process.kill(first.pid!, 'SIGKILL');
    const again = await runningAgain(vm.id, first.pid);
    expect(again).toMatchObject({ restarts: 1, lastExit: { reason: 'qemu-killed', signal: 'SIGKILL' } });
    expect(qemuPidsFor(vmFiles(t.host.layout, vm.id).pidFile)).toEqual([again.pid]);
    const events = await t.call('events.list', { vm: vm.id, limit: 20 });
    const crash = events.find((e) => e.to === 'crashed')!;
    expect(crash.reason).toBe('qemu-killed');
    expect(crash.report).toMatchObject({ signal: 'SIGKILL', reason: 'qemu-killed' });
    expect(crash.report!.serialTail).toContain(FIXTURE.banner);
    expect(events.some((e) => e.to === 'restarting' && /Restart now \(policy on-failure, attempt 1\)/.test(e.message))).toBe(true);
    await t.call('vm.kill', { vm: vm.id });
  });

  it('a guest kernel panic: restarted, reason guest-panic', async () => {
    const vm = await t.call('vm.create', guestArgs('panicky', { restart: 'on-failure', append: 'console=ttyS0 quiet corral.panic=1' }));
    const first = await t.call('vm.start', { vm: vm.id });
    const again = await runningAgain(vm.id, first.pid);
    expect(again.lastExit).toMatchObject({ reason: 'guest-panic' });
    const crash = (await t.call('events.list', { vm: vm.id, limit: 20 })).find((e) => e.to === 'crashed')!;
    expect(crash.report!.qmpEvents.map((e) => e.event)).toContain('GUEST_PANICKED');
    await t.call('vm.stop', { vm: vm.id, timeoutSec: 0 });
    expect((await t.call('vm.get', { vm: vm.id })).state).toBe('stopped');
  });

  it('repeated panics end in crash-loop after the limit; a user start clears it', async () => {
    const vm = await t.call(
      'vm.create',
      guestArgs('loopy', { restart: 'always', maxCrashes: 2, crashWindowSec: 600, append: 'console=ttyS0 quiet corral.panic=0' }),
    );
    await t.call('vm.start', { vm: vm.id });
    // two boots, each ending in a panic (within the test's 240 s timeout)
    const looped = await waitState(t.host, vm.id, ['crash-loop'], 220_000);
    expect(looped).toMatchObject({ restarts: 1, pid: null, lastExit: { reason: 'guest-panic' } });
    const ev = (await t.call('events.list', { vm: vm.id, limit: 1 }))[0]!;
    expect(ev.message).toMatch(/Crash loop: 2 crashes within 10 min/);
    expect(t.events.some((e) => e.event === 'notification' && /crash-looping/.test((e.payload as { title: string }).title))).toBe(true);
    // no more automatic restarts
    await new Promise((r) => setTimeout(r, 1500));
    expect((await t.call('vm.get', { vm: vm.id })).state).toBe('crash-loop');
    // the user starts it again: counters cleared (it will panic and restart once more)
    await t.call('vm.update', { vm: vm.id, append: 'console=ttyS0 quiet' });
    const started = await t.call('vm.start', { vm: vm.id });
    expect(started.state).toBe('running');
    await t.call('vm.kill', { vm: vm.id });
  });

  it('SIGSTOP of QEMU: qemu-hung detected within the interval and recovered', async () => {
    const vm = await t.call('vm.create', guestArgs('frozen', { restart: 'on-failure' }));
    const first = await t.call('vm.start', { vm: vm.id });
    const t0 = Date.now();
    process.kill(first.pid!, 'SIGSTOP');
    const again = await runningAgain(vm.id, first.pid);
    expect(again.lastExit).toMatchObject({ reason: 'qemu-hung' });
    expect(Date.now() - t0).toBeLessThan(60_000); // 0.5 s interval + 0.5 s timeout here; only a guard against never
    await t.call('vm.kill', { vm: vm.id });
  });

  it('a guest that stops feeding the i6300esb watchdog is recovered', async () => {
    const vm = await t.call(
      'vm.create',
      guestArgs('starved', {
        restart: 'on-failure',
        guestWatchdog: 'restart',
        append: 'console=ttyS0 quiet corral.watchdog=starve corral.watchdog_timeout=2',
      }),
    );
    const first = await t.call('vm.start', { vm: vm.id });
    const again = await runningAgain(vm.id, first.pid);
    expect(again.lastExit).toMatchObject({ reason: 'guest-watchdog' });
    await t.call('vm.kill', { vm: vm.id });
  });

  it('a guest that answers no more liveness probes is guest-hung and restarted', async () => {
    const vm = await t.call(
      'vm.create',
      guestArgs('deaf', {
        restart: 'on-failure',
        forwards: [{ hostPort: await freePort(), guestPort: 8080 }],
        liveness: { kind: 'http', port: 8080, path: '/' },
        append: 'console=ttyS0 quiet corral.http=8080',
      }),
    );
    const first = await t.call('vm.start', { vm: vm.id });
    await t.attach(vm.id);
    // however slowly the guest boots, probes that fail before the first answer are not misses
    await waitFor(
      'the first answer to the liveness probe',
      async () => (await t.call('events.list', { vm: vm.id })).find((e) => e.message.startsWith('Liveness probe answered')),
      120_000,
      100,
    );
    await t.waitSerial(vm.id, FIXTURE.prompt);
    expect((await t.call('vm.get', { vm: vm.id })).pid).toBe(first.pid);
    await t.type(vm.id, 'killall httpd\n');
    const again = await runningAgain(vm.id, first.pid);
    expect(again.lastExit).toMatchObject({ reason: 'guest-hung' });
    await t.call('vm.kill', { vm: vm.id });
  });

  it('a guest poweroff under on-failure stays stopped', async () => {
    const vm = await t.call('vm.create', guestArgs('quitter', { restart: 'on-failure', append: 'console=ttyS0 quiet corral.poweroff=1' }));
    await t.call('vm.start', { vm: vm.id });
    const after = await waitState(t.host, vm.id, ['stopped', 'restarting', 'crashed'], BOOT_MS, Date.now());
    expect(after).toMatchObject({ state: 'stopped', restarts: 0, lastExit: { reason: 'guest-poweroff' } });
  });

  it('a user stop during a pending restart wins', async () => {
    const vm = await t.call('vm.create', guestArgs('backoff', { restart: 'always', maxCrashes: 10 }));
    let pid = (await t.call('vm.start', { vm: vm.id })).pid!;
    process.kill(pid, 'SIGKILL'); // attempt 1: at once
    pid = (await runningAgain(vm.id, pid)).pid!;
    process.kill(pid, 'SIGKILL'); // attempt 2: after about 1 s
    const pending = await waitState(t.host, vm.id, ['restarting'], BOOT_MS, Date.now() - 50);
    expect(pending.restartAt).toBeGreaterThan(Date.now());
    const stopped = await t.call('vm.stop', { vm: vm.id });
    expect(stopped.state).toBe('stopped');
    await new Promise((r) => setTimeout(r, 2000));
    expect((await t.call('vm.get', { vm: vm.id })).state).toBe('stopped');
  });
});
