// A TPM on real QEMU and a real swtpm: the guest sees /dev/tpm0; a swtpm killed under a running
// guest is a failure of the VM (tpm-failed) that the restart policy handles; a host SIGKILL
// leaves QEMU and swtpm running and the next host reattaches both (and watches swtpm again).
import fs from 'node:fs';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { processStartTime } from '../../electron/core/qemu/proc';
import { BOOT_MS, FIXTURE, qemuPidsFor, tempDir, waitFor } from '../helpers';
import { corral, ServeProcess } from './serve-process';

const data = tempDir();
let serve: ServeProcess | null = null;
let id = '';

interface Shown {
  id: string;
  state: string;
  pid: number | null;
  restarts: number;
  lastExit: { reason: string } | null;
}

async function show(): Promise<Shown> {
  const r = await corral(data, ['vm', 'show', 'sealed', '--json']);
  if (r.code) throw new Error(r.stderr);
  return JSON.parse(r.stdout) as Shown;
}

const vmDir = () => path.join(data, 'vms', id);
const serialLog = () => fs.readFileSync(path.join(vmDir(), 'serial.log'), 'utf8');
const swtpmPid = () => Number(fs.readFileSync(path.join(vmDir(), 'run', 'swtpm.pid'), 'utf8'));
const alive = (pid: number) => processStartTime(pid) !== null;
const count = (text: string, what: string) => text.split(what).length - 1;

afterAll(async () => {
  await serve?.stop();
  if (id) {
    for (const pid of qemuPidsFor(path.join(vmDir(), 'run', 'qemu.pid'))) process.kill(pid, 'SIGKILL');
    try {
      process.kill(swtpmPid(), 'SIGKILL');
    } catch {
      // gone with its QEMU
    }
  }
  fs.rmSync(data, { recursive: true, force: true });
});

describe('TPM (swtpm)', () => {
  it('the guest sees /dev/tpm0; the TPM state is kept in the VM folder', async () => {
    serve = await ServeProcess.start(data);
    const created = await corral(data, [
      'vm',
      'create',
      'sealed',
      '--memory',
      '256M',
      '--kernel',
      FIXTURE.kernel,
      '--initrd',
      FIXTURE.initrd,
      '--append',
      'console=ttyS0 quiet',
      '--tpm',
      'on',
      '--restart',
      'on-failure',
    ]);
    expect(created.stderr).toBe('');
    id = (await show()).id;
    expect((await corral(data, ['vm', 'start', 'sealed'])).code).toBe(0);
    await waitFor('the guest to boot', () => /CORRAL-GUEST-READY/.test(serialLog()), BOOT_MS, 500);
    expect(serialLog()).toContain('CORRAL-GUEST: tpm /dev/tpm0');
    expect(fs.existsSync(path.join(vmDir(), 'tpm', 'tpm2-00.permall'))).toBe(true);
    const pid = swtpmPid();
    expect(alive(pid)).toBe(true);
    // a root host runs swtpm as QEMU's unprivileged user, like QEMU
    if (process.getuid?.() === 0) expect(fs.statSync(`/proc/${pid}`).uid).not.toBe(0);
    expect(await (await corral(data, ['vm', 'show', 'sealed'])).stdout).toMatch(/TPM:\s+TPM 2\.0 \(swtpm\)/);
  });

  it('killing swtpm is classified tpm-failed and handled by the restart policy', async () => {
    const before = await show();
    const oldSwtpm = swtpmPid();
    process.kill(oldSwtpm, 'SIGKILL');
    const after = await waitFor(
      'the VM restarted by its policy',
      async () => {
        const v = await show();
        return v.state === 'running' && v.restarts === 1 ? v : null;
      },
      BOOT_MS,
      250,
    );
    expect(after.lastExit?.reason).toBe('tpm-failed');
    expect(after.pid).not.toBe(before.pid);
    expect(alive(before.pid!)).toBe(false);
    expect(swtpmPid()).not.toBe(oldSwtpm);
    // the same TPM (its state) for the new run, seen by the guest again
    await waitFor('the guest to boot again', () => count(serialLog(), 'CORRAL-GUEST: tpm /dev/tpm0') >= 2, BOOT_MS, 500);
    const events = (await corral(data, ['events'])).stdout;
    expect(events).toMatch(/TPM \(swtpm\) ended, so QEMU was stopped/);
  });

  it('a host SIGKILL leaves QEMU and swtpm running; the next host reattaches both', async () => {
    const before = await show();
    const tpmPid = swtpmPid();
    await serve!.stop('SIGKILL');
    expect(alive(before.pid!)).toBe(true);
    expect(alive(tpmPid)).toBe(true);

    serve = await ServeProcess.start(data);
    const after = await show();
    expect(after.state).toBe('running');
    expect(after.pid).toBe(before.pid);
    expect(swtpmPid()).toBe(tpmPid);
    expect(alive(tpmPid)).toBe(true);
    // the new host watches swtpm too: its end is handled, not missed
    process.kill(tpmPid, 'SIGKILL');
    const again = await waitFor(
      'the new host to restart the VM',
      async () => {
        const v = await show();
        return v.state === 'running' && v.restarts === 2 ? v : null;
      },
      BOOT_MS,
      250,
    );
    expect(again.lastExit?.reason).toBe('tpm-failed');
    expect(alive(before.pid!)).toBe(false);
  });
});
