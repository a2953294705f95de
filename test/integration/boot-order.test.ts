// Autostart at boot and the ordered stop at host shutdown, on real QEMU guests: the groups start
// in order with their delay, a VM that fails does not hold up the rest, a host started again
// starts nothing twice, and a shutdown stops the guests in reverse order, ACPI first, forcing
// the one that ignores the button.
import fs from 'node:fs';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import type { EventRecord } from '../../electron/core/api/contract';
import { FIXTURE, tempDir } from '../helpers';
import { guestArgs, TestHost } from './host-harness';
import { corral, ServeProcess } from './serve-process';

const DELAY_SEC = 8;

let hosts: TestHost[] = [];
afterEach(async () => {
  for (const h of hosts.reverse()) await h.host.close({ stopGuests: true, timeoutSec: 0 }).catch(() => undefined);
  hosts = [];
});

async function start(dataDir: string, autostart: 'first-since-boot' | 'always' | 'never'): Promise<TestHost> {
  const h = await TestHost.start(dataDir, undefined, { autostart });
  hosts.push(h);
  return h;
}

async function close(h: TestHost, stopGuests = false): Promise<void> {
  await h.host.close({ stopGuests });
  hosts = hosts.filter((x) => x !== h);
}

/** When a VM went into `to` (the first time, by event order), from the event log. */
function at(events: EventRecord[], vm: string, to: string): EventRecord {
  const ev = events.find((e) => e.vmName === vm && e.kind === 'state' && e.to === to && e.from !== to);
  if (!ev) throw new Error(`no event of ${vm} going ${to}`);
  return ev;
}

/** A process that runs (a zombie waiting for its reaper does not). */
function alive(pid: number): boolean {
  try {
    const stat = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
    return !stat.slice(stat.lastIndexOf(')') + 2).startsWith('Z');
  } catch {
    return false;
  }
}

async function eventsOf(h: TestHost): Promise<EventRecord[]> {
  return (await h.call('events.list', { limit: 1000 })).sort((a, b) => a.id - b.id);
}

describe('autostart at boot (real QEMU)', () => {
  it('starts orders 1, 1, 2 in order with the delay, past a VM that fails, and never twice', async () => {
    const dir = tempDir();
    const setup = await start(dir, 'never');
    // a copy of the kernel that goes away: "bad" fails to start, with a delay that must not hold anything up
    const spare = tempDir();
    await setup.call('pool.add', { name: 'spare', path: spare });
    const doomed = path.join(spare, 'vmlinuz-doomed');
    fs.copyFileSync(FIXTURE.kernel, doomed);
    await setup.call('vm.create', guestArgs('a', { autostart: true, autostartOrder: 1 }));
    await setup.call('vm.create', guestArgs('b', { autostart: true, autostartOrder: 1, autostartDelaySec: DELAY_SEC }));
    await setup.call('vm.create', guestArgs('bad', { kernel: doomed, autostart: true, autostartOrder: 1, autostartDelaySec: 600 }));
    await setup.call('vm.create', guestArgs('c', { autostart: true, autostartOrder: 2 }));
    await setup.call('vm.create', guestArgs('manual', { memoryMiB: 128 }));
    fs.rmSync(doomed);
    await close(setup);

    // the first host start since the machine booted (this data dir has not autostarted in this boot)
    const h = await start(dir, 'first-since-boot');
    expect(h.host.autostarted).not.toBeNull();
    const result = (await h.host.autostarted)!;
    expect({ ...result, started: result.started.sort() }).toEqual({ started: ['a', 'b', 'c'], failed: ['bad'], skipped: [] });

    const events = await eventsOf(h);
    const bRunning = at(events, 'b', 'running').at;
    const aRunning = at(events, 'a', 'running').at;
    const cStarting = at(events, 'c', 'starting');
    // the second group waited for both of the first to run, and for b's delay after b ran
    expect(cStarting.at).toBeGreaterThanOrEqual(Math.max(aRunning, bRunning + DELAY_SEC * 1000));
    expect(cStarting.message).toBe('Starting at boot (autostart order 2)');
    // ...but not for bad's 10-minute delay: a VM that fails has nothing to wait for
    const failed = events.find((e) => e.vmName === 'bad' && e.kind === 'error')!;
    expect(failed.message).toMatch(/^Autostart failed: .*vmlinuz-doomed: no such file/);
    expect(cStarting.at).toBeLessThan(failed.at + 600_000);
    const vms = await h.call('vm.list', {});
    const state = Object.fromEntries(vms.map((v) => [v.name, v.state]));
    expect(state).toEqual({ a: 'running', b: 'running', bad: 'stopped', c: 'running', manual: 'stopped' });
    const pids = Object.fromEntries(vms.map((v) => [v.name, v.pid]));

    // a service restart in the same boot: guests are reattached, autostart does not run
    await close(h);
    const again = await start(dir, 'first-since-boot');
    expect(again.host.autostarted).toBeNull();
    await close(again);

    // even told to autostart at every start, a host finds them running and starts nothing twice
    const always = await start(dir, 'always');
    const second = await always.host.autostarted!;
    expect(second.skipped.sort()).toEqual(['a', 'b', 'c']);
    expect(second.started).toEqual([]);
    const after = await always.call('vm.list', {});
    for (const v of after.filter((v) => v.name !== 'bad' && v.name !== 'manual')) {
      expect(v.state).toBe('running');
      expect(v.pid).toBe(pids[v.name]);
    }
  });
});

describe('ordered stop at host shutdown (real QEMU)', () => {
  it('stops in reverse order, ACPI first, forcing the guest that ignores it; every end is host-shutdown', async () => {
    const dir = tempDir();
    const h = await start(dir, 'never');
    await h.call('vm.create', guestArgs('first', { autostart: true, autostartOrder: 1 }));
    await h.call('vm.create', guestArgs('second', { autostart: true, autostartOrder: 2 }));
    // no kernel and no disk: the firmware finds nothing to boot, and no OS hears the button
    await h.call('vm.create', { name: 'deaf', memoryMiB: 64, stopTimeoutSec: 3 });
    for (const name of ['first', 'second', 'deaf']) await h.call('vm.start', { vm: name });
    // booted to the prompt: acpid listens for the button by then (both consoles attached before
    // waiting on either, so neither prompt goes by unseen)
    const consoles = [await h.attach('first'), await h.attach('second')];
    for (const id of consoles) await h.waitSerial(id, FIXTURE.prompt);

    await close(h, true);

    const check = await start(dir, 'never');
    const events = await eventsOf(check);
    const ends = ['deaf', 'second', 'first'].map((name) => at(events, name, 'stopped'));
    // reverse order: no autostart first, then order 2, then order 1
    expect(ends.map((e) => e.vmName)).toEqual(['deaf', 'second', 'first']);
    expect(ends[0]!.id).toBeLessThan(ends[1]!.id);
    expect(ends[1]!.id).toBeLessThan(ends[2]!.id);
    for (const e of ends) expect(e.reason).toBe('host-shutdown');
    expect(ends[0]!.message).toBe('Stopped because the host shut down: forced off, the guest ignored the power button');
    expect(ends[1]!.message).toBe('Stopped because the host shut down: the guest shut down cleanly');
    expect(ends[2]!.message).toBe('Stopped because the host shut down: the guest shut down cleanly');
    for (const v of await check.call('vm.list', {})) expect(v.lastExit?.reason).toBe('host-shutdown');
  });
});

describe('corral serve at a machine shutdown (real QEMU, real process)', () => {
  it('leaves guests running on a plain SIGTERM, stops them when systemd says the machine is stopping', async () => {
    const dir = tempDir();
    let serve = await ServeProcess.start(dir);
    expect((await corral(dir, ['vm', 'create', 'svc', '--kernel', FIXTURE.kernel, '--initrd', FIXTURE.initrd])).code).toBe(0);
    expect((await corral(dir, ['vm', 'set', 'svc', '--autostart', 'on', '--order', '3', '--stop-timeout', '20'])).code).toBe(0);
    expect((await corral(dir, ['vm', 'start', 'svc'])).code).toBe(0);
    const pid = JSON.parse((await corral(dir, ['vm', 'show', 'svc', '--json'])).stdout).pid as number;

    // this machine's systemd is not PID 1: `systemctl is-system-running` says so, which is no shutdown
    await serve.stop('SIGTERM');
    expect(serve.stderr).toMatch(/SIGTERM: leaving guests running and exiting/);
    expect(alive(pid)).toBe(true);

    // systemd's answer while the machine goes down, from a systemctl first on PATH
    const bin = tempDir();
    fs.writeFileSync(path.join(bin, 'systemctl'), '#!/bin/sh\n[ "$1" = is-system-running ] && echo stopping && exit 1\nexit 1\n', {
      mode: 0o755,
    });
    serve = await ServeProcess.start(dir, '127.0.0.1:0', { PATH: `${bin}:${process.env.PATH}` });
    const shown = JSON.parse((await corral(dir, ['vm', 'show', 'svc', '--json'])).stdout) as { pid: number; state: string };
    expect(shown).toMatchObject({ pid, state: 'running' }); // reattached, not started again
    await serve.stop('SIGTERM');
    expect(serve.stderr).toMatch(/SIGTERM: the machine is shutting down: stopping the guests in order/);
    expect(alive(pid)).toBe(false);
    const h = await start(dir, 'never');
    const vm = await h.call('vm.get', { vm: 'svc' });
    expect(vm).toMatchObject({ state: 'stopped', pid: null, lastExit: { reason: 'host-shutdown' } });
  });
});
