// The host may die; guests may not. `corral serve` is SIGKILLed with three guests running,
// one of them is killed while no host watches, and a new host must sort it all out.
import path from 'node:path';
import fs from 'node:fs';
import { afterAll, describe, expect, it } from 'vitest';
import { FIXTURE, qemuPidsFor, tempDir, waitFor } from '../helpers';
import { corral, ServeProcess } from './serve-process';

const data = tempDir();
let serve: ServeProcess | null = null;
const boot = ['--memory', '192M', '--kernel', FIXTURE.kernel, '--initrd', FIXTURE.initrd, '--append', 'console=ttyS0 quiet'];

async function show(name: string) {
  const r = await corral(data, ['vm', 'show', name, '--json']);
  if (r.code) throw new Error(r.stderr);
  return JSON.parse(r.stdout) as { state: string; pid: number | null; restarts: number; lastExit: { reason: string } | null };
}

function allQemuPids(): number[] {
  const dir = path.join(data, 'vms');
  return fs
    .readdirSync(dir)
    .flatMap((id) => qemuPidsFor(path.join(dir, id, 'run', 'qemu.pid')))
    .sort();
}

afterAll(async () => {
  await serve?.stop();
  for (const pid of allQemuPids()) process.kill(pid, 'SIGKILL');
});

describe('host restart', () => {
  it('SIGKILL of the host with 3 guests running: all reattached, same pids, no extra QEMU', async () => {
    serve = await ServeProcess.start(data);
    for (const n of ['a', 'b', 'c']) {
      expect((await corral(data, ['vm', 'create', n, ...boot, '--restart', 'on-failure'])).code).toBe(0);
      expect((await corral(data, ['vm', 'start', n])).code).toBe(0);
    }
    const before = await Promise.all(['a', 'b', 'c'].map(show));
    await serve.stop('SIGKILL');
    const pidsWhileDown = allQemuPids();
    expect(pidsWhileDown).toEqual(before.map((v) => v.pid).sort());

    serve = await ServeProcess.start(data);
    const after = await Promise.all(['a', 'b', 'c'].map(show));
    expect(after.map((v) => v.state)).toEqual(['running', 'running', 'running']);
    expect(after.map((v) => v.pid)).toEqual(before.map((v) => v.pid));
    expect(allQemuPids()).toEqual(pidsWhileDown);
    // the new host supervises them: a crash now is noticed and handled
    process.kill(after[0]!.pid!, 'SIGKILL');
    await waitFor(
      'a restarted by the new host',
      async () => {
        const v = await show('a');
        return v.state === 'running' && v.pid !== after[0]!.pid && v.restarts === 1;
      },
      60_000,
      100,
    );
  });

  it('a guest killed while no host was running is noticed at start and handled by its policy', async () => {
    const b = await show('b');
    await serve!.stop('SIGKILL');
    process.kill(b.pid!, 'SIGKILL');
    await waitFor('b gone', () => !allQemuPids().includes(b.pid!), 30_000);
    serve = await ServeProcess.start(data);
    const now = await waitFor(
      'b restarted by policy',
      async () => {
        const v = await show('b');
        return v.state === 'running' && v.pid !== b.pid ? v : null;
      },
      60_000,
      100,
    );
    expect(now.lastExit?.reason).toBe('qemu-exited');
    expect(now.restarts).toBe(1);
    const events = (await corral(data, ['events'])).stdout;
    expect(events).toMatch(/QEMU exited unexpectedly while Corral was not running/);
    expect(allQemuPids()).toHaveLength(3);
  });

  it('vm set changes the policy of a running guest; never means it stays down', async () => {
    expect((await corral(data, ['vm', 'set', 'c', '--restart', 'never', '--max-crashes', '3', '--window', '10m'])).code).toBe(0);
    // a change the running guest cannot take waits for its next boot, and the CLI says why
    const pending = await corral(data, ['vm', 'set', 'c', '--max-cpus', '4']);
    expect(pending.stdout).toMatch(/at the next boot: maxCpus\n {2}maxCpus: it is part of how QEMU was started/);
    const c = await show('c');
    process.kill(c.pid!, 'SIGKILL');
    const after = await waitFor(
      'c crashed',
      async () => {
        const v = await show('c');
        return v.state === 'crashed' ? v : null;
      },
      30_000,
      100,
    );
    // c was reattached: the new host is not QEMU's parent, so no exit status or signal is known
    expect(after.lastExit?.reason).toBe('qemu-exited');
    const bad = await corral(data, ['vm', 'set', 'c', '--liveness', 'tcp:22']);
    expect(bad.code).toBe(1);
    expect(bad.stderr).toMatch(/needs a tcp port forward to guest port 22/);
    const bad2 = await corral(data, ['vm', 'set', 'c', '--max-crashes', '0']);
    expect(bad2.stderr).toMatch(/"maxCrashes".*at least 1/);
  });
});
