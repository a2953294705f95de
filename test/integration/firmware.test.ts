// UEFI on real QEMU: the tiny guest boots through OVMF (direct kernel boot), writes a UEFI
// variable, and finds it again after a restart, from the VM's own qcow2 variables file. And
// the pinned machine type: a QEMU that lacks it refuses the start, saying so.
import fs from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { BOOT_MS, FIXTURE, qemuPidsFor, tempDir, waitFor } from '../helpers';
import { corral, ServeProcess } from './serve-process';

const data = tempDir();
let serve: ServeProcess | null = null;
const boot = ['--memory', '256M', '--kernel', FIXTURE.kernel, '--initrd', FIXTURE.initrd];

interface Shown {
  id: string;
  state: string;
  config: { firmware: string; machineType: string | null; cpuModel: string };
}

async function show(name: string): Promise<Shown> {
  const r = await corral(data, ['vm', 'show', name, '--json']);
  if (r.code) throw new Error(r.stderr);
  return JSON.parse(r.stdout) as Shown;
}

async function ok(args: string[]): Promise<string> {
  const r = await corral(data, args);
  if (r.code) throw new Error(`corral ${args.join(' ')}: ${r.stderr}`);
  return r.stdout;
}

const serialLog = (id: string) => fs.readFileSync(path.join(data, 'vms', id, 'serial.log'), 'utf8');

beforeAll(async () => {
  serve = await ServeProcess.start(data);
});

afterAll(async () => {
  await serve?.stop();
  for (const id of fs.existsSync(path.join(data, 'vms')) ? fs.readdirSync(path.join(data, 'vms')) : [])
    for (const pid of qemuPidsFor(path.join(data, 'vms', id, 'run', 'qemu.pid'))) process.kill(pid, 'SIGKILL');
  fs.rmSync(data, { recursive: true, force: true });
});

describe('firmware and pinned hardware', () => {
  it('boots the guest through OVMF; a UEFI variable it writes survives a restart', async () => {
    await ok(['vm', 'create', 'efi', ...boot, '--firmware', 'uefi', '--append', 'console=ttyS0 quiet corral.efivar=kept-1']);
    const vm = await show('efi');
    // pinned to what q35 stands for on this QEMU, never the alias
    expect(vm.config.machineType).toMatch(/^pc-q35-\d+\.\d+$/);
    expect(vm.config.cpuModel).toBe('Westmere-v1');
    expect(await ok(['vm', 'show', 'efi'])).toMatch(/Firmware:\s+UEFI \(OVMF\)/);

    await ok(['vm', 'start', 'efi']);
    await waitFor('the guest to boot under UEFI', () => /CORRAL-GUEST-READY/.test(serialLog(vm.id)), BOOT_MS, 500);
    const first = serialLog(vm.id);
    expect(first).toContain('CORRAL-GUEST: uefi');
    expect(first).toContain('CORRAL-EFIVAR none');
    // the VM's own variables, qcow2 (internal snapshots need it so)
    const vars = fs.readFileSync(path.join(data, 'vms', vm.id, 'efivars.qcow2'));
    expect(vars.subarray(0, 4).toString('latin1')).toBe('QFI\xfb');

    await ok(['vm', 'stop', 'efi', '--timeout', '120']);
    expect((await show('efi')).state).toBe('stopped');
    const before = serialLog(vm.id).length;
    await ok(['vm', 'start', 'efi']);
    const again = await waitFor(
      'the guest to boot again',
      () => {
        const text = serialLog(vm.id).slice(before);
        return /CORRAL-GUEST-READY/.test(text) ? text : null;
      },
      BOOT_MS,
      500,
    );
    expect(again).toContain('CORRAL-EFIVAR kept-1');
  });

  it('refuses a firmware change while the VM runs, naming the field', async () => {
    const r = await corral(data, ['vm', 'set', 'efi', '--firmware', 'bios']);
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/firmware can only change while the VM is stopped/);
    expect((await show('efi')).config.firmware).toBe('uefi');
    await ok(['vm', 'kill', 'efi']);
  });

  it('secure boot starts on q35 with SMM and a secure flash', async () => {
    await ok(['vm', 'create', 'secure', ...boot, '--firmware', 'uefi-secure', '--append', 'console=ttyS0 quiet']);
    const vm = await show('secure');
    await ok(['vm', 'start', 'secure']);
    const [pid] = qemuPidsFor(path.join(data, 'vms', vm.id, 'run', 'qemu.pid'));
    const argv = fs.readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0');
    expect(argv[argv.indexOf('-machine') + 1]).toMatch(/^pc-q35-[\d.]+,accel=tcg,smm=on,pflash0=fw-code,pflash1=fw-vars$/);
    expect(argv).toContain('driver=cfi.pflash01,property=secure,value=on');
    // the firmware runs (whether it then trusts this test kernel is secure boot's business)
    await new Promise((r) => setTimeout(r, 3000));
    expect((await show('secure')).state).toBe('running');
    await ok(['vm', 'kill', 'secure']);
  });

  it('a VM made from an installer ISO gets UEFI unless told otherwise', async () => {
    await ok(['vm', 'create', 'installer', '--memory', '256M', '--iso', FIXTURE.initrd]);
    expect((await show('installer')).config.firmware).toBe('uefi');
    await ok(['vm', 'create', 'legacy', '--memory', '256M', '--iso', FIXTURE.initrd, '--firmware', 'bios']);
    expect((await show('legacy')).config.firmware).toBe('bios');
  });

  it('a QEMU without the pinned machine type refuses the start with a clear message', async () => {
    await ok(['vm', 'create', 'moved', ...boot, '--append', 'console=ttyS0 quiet']);
    // as if made on a host with a newer QEMU
    await ok(['vm', 'set', 'moved', '--machine-type', 'pc-q35-99.0']);
    const r = await corral(data, ['vm', 'start', 'moved']);
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/pinned to the machine type pc-q35-99\.0, which QEMU [\d.]+ on this host lacks \(it has pc-q35-/);
    const vm = await show('moved');
    expect(vm.state).toBe('stopped');
    expect(vm.config.firmware).toBe('bios');
    expect(qemuPidsFor(path.join(data, 'vms', vm.id, 'run', 'qemu.pid'))).toEqual([]);
    // and a CPU model it lacks, the same way
    await ok(['vm', 'set', 'moved', '--machine-type', (await show('legacy')).config.machineType!, '--cpu-model', 'Nonexistent-v9']);
    const cpu = await corral(data, ['vm', 'start', 'moved']);
    expect(cpu.code).toBe(1);
    expect(cpu.stderr).toMatch(/CPU model Nonexistent-v9 is unknown to QEMU/);
  });
});
