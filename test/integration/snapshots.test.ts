// Snapshots on real QEMU with the real guest, through the CLI: a RAM snapshot brings back the
// disk's bytes and the guest's uptime; deleting a middle snapshot leaves its children
// revertable; under UEFI a variable written after a snapshot is gone after reverting to it
// (the variables file is in the snapshot); the TPM state comes back with a snapshot.
import { createHash } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { BOOT_MS, FIXTURE, qemuPidsFor, tempDir, waitFor } from '../helpers';
import { consoleSession, corral, ServeProcess } from './serve-process';

const data = tempDir();
let serve: ServeProcess | null = null;
const boot = ['--memory', '256M', '--kernel', FIXTURE.kernel, '--initrd', FIXTURE.initrd, '--disk', '16M'];
const EFIVAR = '/sys/firmware/efi/efivars/CorralTest-5a1e0c3e-8f4b-4d6a-9c2e-0b7f1d2a3c4d';

interface Snap {
  id: string;
  name: string;
  parentId: string | null;
  hasRam: boolean;
  kind: string;
  consistency: string;
  pauseMs: number | null;
  withVars: boolean;
  withTpm: boolean;
}

async function ok(args: string[]): Promise<string> {
  const r = await corral(data, args);
  if (r.code) throw new Error(`corral ${args.join(' ')}: ${r.stderr}`);
  return r.stdout;
}

const idOf = async (name: string) => (JSON.parse(await ok(['vm', 'show', name, '--json'])) as { id: string }).id;
const serialLog = (id: string) => fs.readFileSync(path.join(data, 'vms', id, 'serial.log'), 'utf8');
const tree = async (name: string) =>
  JSON.parse(await ok(['vm', 'snapshot', 'list', name, '--json'])) as { snapshots: Snap[]; currentId: string | null };

/** Runs a shell line in the guest and returns what it printed between two markers. */
async function inGuest(vm: string, line: string): Promise<string> {
  const tag = Math.random().toString(36).slice(2, 8);
  // the markers as printed differ from the typed line (which the console echoes, wrapped anywhere)
  const r = await consoleSession(data, vm, `echo BEGIN-$((1+1))${tag}; ${line}; echo END-$((1+1))${tag}`, new RegExp(`END-2${tag}`));
  const m = new RegExp(`BEGIN-2${tag}\\r?\\n([\\s\\S]*?)END-2${tag}`).exec(r.out);
  if (!m) throw new Error(`no answer from the guest in ${JSON.stringify(r.out.slice(-400))}`);
  return m[1]!.trim();
}

/** Writes `text` at the start of the guest's disk and returns the sector's checksum and the uptime. */
async function writeDisk(vm: string, text: string): Promise<void> {
  await inGuest(vm, `printf '%s' ${text} | dd of=/dev/vda bs=512 count=1 conv=sync,fsync 2>/dev/null`);
}

async function diskAndUptime(vm: string): Promise<{ sum: string; uptime: number }> {
  const out = await inGuest(vm, `echo SUM $(dd if=/dev/vda bs=512 count=1 2>/dev/null | md5sum); echo UP $(cut -d' ' -f1 /proc/uptime)`);
  const sum = /SUM ([0-9a-f]{32})/.exec(out)?.[1];
  const up = /UP ([\d.]+)/.exec(out)?.[1];
  if (!sum || !up) throw new Error(`unexpected guest output ${JSON.stringify(out)}`);
  return { sum, uptime: Number(up) };
}

const md5 = (text: string) => {
  const b = Buffer.alloc(512);
  b.write(text);
  return createHash('md5').update(b).digest('hex');
};

async function bootToPrompt(vm: string, since = 0): Promise<void> {
  const id = await idOf(vm);
  await waitFor(`${vm} to boot`, () => serialLog(id).slice(since).includes(FIXTURE.prompt), BOOT_MS, 500);
}

beforeAll(async () => {
  serve = await ServeProcess.start(data);
});

afterAll(async () => {
  await serve?.stop();
  for (const id of fs.existsSync(path.join(data, 'vms')) ? fs.readdirSync(path.join(data, 'vms')) : []) {
    for (const pid of qemuPidsFor(path.join(data, 'vms', id, 'run', 'qemu.pid'))) process.kill(pid, 'SIGKILL');
    try {
      process.kill(Number(fs.readFileSync(path.join(data, 'vms', id, 'run', 'swtpm.pid'), 'utf8')), 'SIGKILL');
    } catch {
      // none, or gone with its QEMU
    }
  }
  fs.rmSync(data, { recursive: true, force: true });
});

describe('snapshots', () => {
  it('a RAM snapshot brings back the disk and the guest continues from where it was', { timeout: BOOT_MS * 2 }, async () => {
    // the HPET: QEMU restores it with the RAM state, while under TCG it does not rewind the TSC
    // (a guest on the TSC sees real time go on across a revert; on KVM kvmclock is restored)
    await ok(['vm', 'create', 'keeper', ...boot, '--append', 'console=ttyS0 quiet clocksource=hpet']);
    await ok(['vm', 'start', 'keeper']);
    await bootToPrompt('keeper');
    await writeDisk('keeper', 'first-version');
    await inGuest('keeper', 'echo ram-before > /tmp/mark');
    const before = await diskAndUptime('keeper');
    expect(before.sum).toBe(md5('first-version'));

    const snap = JSON.parse(await ok(['vm', 'snapshot', 'create', 'keeper', 'before', '--description', 'first', '--json'])) as Snap;
    expect(snap).toMatchObject({ name: 'before', hasRam: true, kind: 'live', consistency: 'full', parentId: null });
    expect(snap.pauseMs).toBeGreaterThan(0);
    // the job's pause is not the user's: the VM stayed running
    expect(JSON.parse(await ok(['vm', 'show', 'keeper', '--json'])).state).toBe('running');

    await new Promise((r) => setTimeout(r, 8000));
    await writeDisk('keeper', 'second-version');
    await inGuest('keeper', 'echo ram-after > /tmp/mark');
    const changed = await diskAndUptime('keeper');
    expect(changed.sum).toBe(md5('second-version'));
    expect(changed.uptime).toBeGreaterThan(before.uptime + 7);

    const reverted = await ok(['vm', 'snapshot', 'revert', 'keeper', 'before']);
    expect(reverted).toMatch(/reverted to before; running$/m);
    const after = await diskAndUptime('keeper');
    expect(after.sum).toBe(before.sum);
    // the guest's memory (a file in its tmpfs) is the snapshot's
    expect(await inGuest('keeper', 'cat /tmp/mark')).toBe('ram-before');
    // the clock goes on from the snapshot, not from the changed state and not from a new boot
    expect(after.uptime).toBeGreaterThanOrEqual(before.uptime);
    expect(after.uptime).toBeLessThan(changed.uptime);
    const events = await ok(['events']);
    expect(events).toMatch(/Snapshot "before" taken \(RAM and disks, guest paused \d+ ms\)/);
    expect(events).toMatch(/Reverted to snapshot "before"/);
  });

  it('deleting a middle snapshot keeps both its children revertable', { timeout: BOOT_MS * 2 }, async () => {
    // before -> b -> {c, d}
    await writeDisk('keeper', 'level-b');
    await ok(['vm', 'snapshot', 'create', 'keeper', 'b']);
    await writeDisk('keeper', 'level-c');
    await ok(['vm', 'snapshot', 'create', 'keeper', 'c']);
    await ok(['vm', 'snapshot', 'revert', 'keeper', 'b']);
    await writeDisk('keeper', 'level-d');
    await ok(['vm', 'snapshot', 'create', 'keeper', 'd']);
    let t = await tree('keeper');
    const by = (n: string) => t.snapshots.find((s) => s.name === n)!;
    expect(by('c').parentId).toBe(by('b').id);
    expect(by('d').parentId).toBe(by('b').id);
    expect(t.currentId).toBe(by('d').id);
    const listed = await ok(['vm', 'snapshot', 'list', 'keeper']);
    expect(listed).toMatch(/^ {4}d {2}<- you are here/m);

    await ok(['vm', 'snapshot', 'delete', 'keeper', 'b']);
    t = await tree('keeper');
    expect(t.snapshots.map((s) => s.name)).toEqual(['before', 'c', 'd']);
    expect(by('c').parentId).toBe(by('before').id);
    expect(by('d').parentId).toBe(by('before').id);

    await ok(['vm', 'snapshot', 'revert', 'keeper', 'c']);
    expect((await diskAndUptime('keeper')).sum).toBe(md5('level-c'));
    await ok(['vm', 'snapshot', 'revert', 'keeper', 'd']);
    expect((await diskAndUptime('keeper')).sum).toBe(md5('level-d'));
    // the deleted one is gone from the image too
    const id = await idOf('keeper');
    expect(JSON.stringify(t)).not.toContain('"b"');
    const img = fs.readdirSync(path.join(data, 'images')).find((f) => f.includes(id));
    expect(img).toBeTruthy();
  });

  it(
    'a disk-only snapshot of a running guest without an agent is crash-consistent; its revert restarts the guest',
    { timeout: BOOT_MS * 2 },
    async () => {
      await writeDisk('keeper', 'disk-only');
      const snap = JSON.parse(await ok(['vm', 'snapshot', 'create', 'keeper', 'disks', '--no-memory', '--json'])) as Snap;
      expect(snap).toMatchObject({ hasRam: false, kind: 'disk', consistency: 'crash' });
      await writeDisk('keeper', 'after-disk-only');
      const id = await idOf('keeper');
      const since = serialLog(id).length;
      const out = await ok(['vm', 'snapshot', 'revert', 'keeper', 'disks']);
      expect(out).toMatch(/stopped and started again/);
      await bootToPrompt('keeper', since);
      expect((await diskAndUptime('keeper')).sum).toBe(md5('disk-only'));
      await ok(['vm', 'kill', 'keeper']);
    },
  );

  it('refuses a VM with a raw disk, naming the disk', async () => {
    const raw = path.join(data, 'images', 'plain.raw');
    fs.writeFileSync(raw, Buffer.alloc(1024 * 1024));
    await ok(['vm', 'create', 'rawvm', '--memory', '128M', '--disk-image', raw, '--disk-format', 'raw']);
    const r = await corral(data, ['vm', 'snapshot', 'create', 'rawvm', 'x']);
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/disk 0 \(.*plain\.raw\) is raw, and only qcow2 images hold snapshots/);
  });

  it('under UEFI, a variable written after a snapshot is gone after reverting to it', { timeout: BOOT_MS * 4 }, async () => {
    await ok(['vm', 'create', 'efi', ...boot, '--firmware', 'uefi', '--append', 'console=ttyS0 quiet']);
    const id = await idOf('efi');
    await ok(['vm', 'start', 'efi']);
    await bootToPrompt('efi');
    expect(serialLog(id)).toContain('CORRAL-EFIVAR none');
    const snap = JSON.parse(await ok(['vm', 'snapshot', 'create', 'efi', 'clean', '--json'])) as Snap;
    expect(snap.withVars).toBe(true);
    await inGuest('efi', `printf '\\007\\000\\000\\000%s' written-later > ${EFIVAR}`);
    expect(await inGuest('efi', `tail -c +5 ${EFIVAR}`)).toBe('written-later');

    await ok(['vm', 'snapshot', 'revert', 'efi', 'clean']);
    expect(await inGuest('efi', `cat ${EFIVAR} 2>/dev/null || echo absent`)).toBe('absent');
    // and in the firmware's flash itself: a cold boot finds no variable
    await ok(['vm', 'stop', 'efi', '--timeout', '120']);
    const since = serialLog(id).length;
    await ok(['vm', 'start', 'efi']);
    await bootToPrompt('efi', since);
    expect(serialLog(id).slice(since)).toContain('CORRAL-EFIVAR none');
    await ok(['vm', 'kill', 'efi']);
  });

  it('the TPM state comes back with a snapshot', { timeout: BOOT_MS * 3 }, async () => {
    await ok(['vm', 'create', 'sealed', ...boot, '--tpm', 'on', '--append', 'console=ttyS0 quiet']);
    const id = await idOf('sealed');
    await ok(['vm', 'start', 'sealed']);
    await bootToPrompt('sealed');
    expect(serialLog(id)).toContain('CORRAL-GUEST: tpm /dev/tpm0');
    // live with RAM: the TPM state is copied while the vCPUs stand still
    const live = JSON.parse(await ok(['vm', 'snapshot', 'create', 'sealed', 'live', '--json'])) as Snap;
    expect(live.withTpm).toBe(true);
    await ok(['vm', 'snapshot', 'revert', 'sealed', 'live']);
    expect(await inGuest('sealed', 'ls /dev/tpm0')).toBe('/dev/tpm0');
    await ok(['vm', 'kill', 'sealed']);

    const tpmDir = path.join(data, 'vms', id, 'tpm');
    const digest = () =>
      fs
        .readdirSync(tpmDir)
        .sort()
        .map(
          (f) =>
            `${f}:${createHash('sha256')
              .update(fs.readFileSync(path.join(tpmDir, f)))
              .digest('hex')}`,
        )
        .join(',');
    const kept = digest();
    const off = JSON.parse(await ok(['vm', 'snapshot', 'create', 'sealed', 'stopped', '--json'])) as Snap;
    expect(off).toMatchObject({ kind: 'offline', withTpm: true });
    // a new TPM (another identity) replaces it; the revert brings the old one back
    fs.rmSync(tpmDir, { recursive: true });
    await ok(['vm', 'start', 'sealed']);
    await waitFor('a new TPM', () => fs.existsSync(path.join(tpmDir, 'tpm2-00.permall')), BOOT_MS, 500);
    await ok(['vm', 'kill', 'sealed']);
    expect(digest()).not.toBe(kept);
    await ok(['vm', 'snapshot', 'revert', 'sealed', 'stopped']);
    expect(digest()).toBe(kept);
  });

  it('deleting a VM deletes its snapshots', async () => {
    const id = await idOf('sealed');
    await ok(['vm', 'delete', 'sealed']);
    expect(fs.existsSync(path.join(data, 'vms', id))).toBe(false);
    const r = await corral(data, ['vm', 'snapshot', 'list', 'sealed']);
    expect(r.code).toBe(1);
  });
});
