// Least privilege: a host running as root hands QEMU no root. QEMU opens its files as root,
// then drops to an unprivileged user with no capabilities; screenshots (the one thing it
// writes afterwards) still work. Without root, QEMU runs as the host's own user, unchanged.
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DEFAULT_QEMU_USER } from '../../electron/core/qemu/run-as';
import { BOOT_MS, waitFor } from '../helpers';
import { guestArgs, TestHost } from './host-harness';

const root = process.getuid?.() === 0;
let t: TestHost;

beforeAll(async () => {
  t = await TestHost.start();
});
afterAll(async () => {
  await t?.close();
});

function status(pid: number): Record<string, string> {
  const out: Record<string, string> = {};
  for (const line of fs.readFileSync(`/proc/${pid}/status`, 'utf8').split('\n')) {
    const [k, v] = line.split(':\t');
    if (k && v !== undefined) out[k] = v.trim();
  }
  return out;
}

describe('who QEMU runs as', () => {
  // one test for both kinds of host: each asserts what applies to it (the suite's CI runs as root)
  it('a root host gives QEMU an unprivileged user with no capabilities; any other host its own user', async () => {
    const info = await t.call('host.info', {});
    expect(info.qemu.runsAs).toBe(root ? DEFAULT_QEMU_USER : null);
    const uid = root ? Number(execFileSync('id', ['-u', DEFAULT_QEMU_USER], { encoding: 'utf8' }).trim()) : process.getuid!();
    if (root) expect(uid).toBeGreaterThan(0);

    const vm = await t.call('vm.create', guestArgs('unprivileged', { append: 'console=tty0 console=ttyS0' }));
    const { pid } = await t.call('vm.start', { vm: vm.id });
    // QEMU drops its privileges once the machine is built, just before the guest runs
    const s = await waitFor('QEMU to drop root', () =>
      status(pid!)
        .Uid?.split(/\s+/)
        .every((u) => Number(u) === uid)
        ? status(pid!)
        : null,
    );
    expect(s.CapEff).toBe('0000000000000000');
    expect(s.CapPrm).toBe('0000000000000000');
    expect(s.NoNewPrivs).toBe('1');

    // the one file QEMU writes afterwards: a screenshot, into the dir it was given
    const png = await waitFor(
      'a screenshot',
      async () => {
        const shot = Buffer.from((await t.call('vm.screenshot', { vm: vm.id })).png, 'base64');
        return shot.length > 0 ? shot : null;
      },
      BOOT_MS,
      500,
    );
    expect(png.subarray(1, 4).toString()).toBe('PNG');

    await t.call('vm.kill', { vm: vm.id });
    expect((await t.call('vm.get', { vm: vm.id })).state).toBe('stopped');
  });
});
