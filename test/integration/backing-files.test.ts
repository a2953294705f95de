// A disk that gains a backing file after create (qemu-img rebase) must not make QEMU open a
// host file: the image check runs again at every start and refuses it, naming the disk; and
// the argv pins qcow2 disks to no backing file, so even with the check bypassed real QEMU
// does not open it (shown beside the same argv without the pin, which does).
import { execFileSync, spawn } from 'node:child_process';
import fs from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { VmInfo } from '../../electron/core/api/contract';
import { buildArgv } from '../../electron/core/qemu/argv';
import { vmFiles } from '../../electron/core/paths';
import { qemuPidsFor, tempDir, waitFor } from '../helpers';
import { guestArgs, TestHost } from './host-harness';

let t: TestHost;
let vm: VmInfo;
const scratch = tempDir();
const other = path.join(scratch, 'host-secret.img');

beforeAll(async () => {
  t = await TestHost.start();
  vm = await t.call('vm.create', guestArgs('rebased', { disk: { size: 16 * 1024 * 1024 } }));
  fs.writeFileSync(other, Buffer.alloc(1024 * 1024, 'S'));
});

afterAll(async () => {
  await t?.close();
  fs.rmSync(scratch, { recursive: true, force: true });
});

describe('backing files', () => {
  it('refuses to start a VM whose disk gained a backing file, naming the disk; QEMU never runs', async () => {
    // it started fine as created
    await t.call('vm.start', { vm: vm.id });
    await t.call('vm.kill', { vm: vm.id });
    const disk = vm.config.disks[0]!.path;
    execFileSync('qemu-img', ['rebase', '-u', '-b', other, '-F', 'raw', disk]);
    const files = vmFiles(t.host.layout, vm.id);
    const logBefore = fs.statSync(files.qemuLog).size;

    const err = await t.call('vm.start', { vm: vm.id }).catch((e: { api: unknown }) => e.api);
    expect(err).toMatchObject({ code: 'failed', field: 'disks.0' });
    expect((err as { message: string }).message).toBe(
      `"rebased" was not started: disk 0: ${disk} has a backing file (${other}); Corral only opens standalone images`,
    );
    expect((await t.call('vm.get', { vm: vm.id })).state).toBe('stopped');
    expect(qemuPidsFor(files.pidFile)).toEqual([]);
    expect(fs.statSync(files.qemuLog).size).toBe(logBefore); // no QEMU wrote a line
    const events = await t.call('events.list', { vm: vm.id });
    expect(events.some((e) => e.message.includes('Not started: disk 0') && e.message.includes('backing file'))).toBe(true);
  });

  it('pins qcow2 disks so that QEMU opens no backing file even when the check is bypassed', async () => {
    const pinned = await openFilesOfQemu(buildArgvFor('pinned'));
    expect(pinned.fds).not.toContain(other);
    expect(pinned.nodes).not.toContain(other);
    // the same argv without the pin: QEMU follows the header to the host file
    const unpinned = await openFilesOfQemu(buildArgvFor('unpinned').map((a) => a.replace(',"backing":null', '')));
    expect(unpinned.fds).toContain(other);
    expect(unpinned.nodes).toContain(other);
  });
});

/** The VM's argv as the driver builds it, with sockets, pidfile and logs of its own. */
function buildArgvFor(tag: string): string[] {
  const dir = path.join(scratch, tag);
  fs.mkdirSync(dir);
  const files = vmFiles(t.host.layout, vm.id);
  const own = {
    ...files,
    runDir: dir,
    pidFile: path.join(dir, 'qemu.pid'),
    qmpSocket: path.join(dir, 'qmp.sock'),
    serialSocket: path.join(dir, 'serial.sock'),
    vncSocket: path.join(dir, 'vnc.sock'),
    qgaSocket: path.join(dir, 'qga.sock'),
    serialLog: path.join(dir, 'serial.log'),
    qemuLog: path.join(dir, 'qemu.log'),
  };
  // no NIC: its passt would be the driver's to start, and the disks are what this test is about
  return buildArgv({ id: vm.id, name: vm.name, config: { ...vm.config, nics: [] }, files: own }, { accel: 'tcg' });
}

/**
 * Runs QEMU (held at -S) with `argv` until it answers QMP, then lists the files it holds open
 * and the files of its block nodes; kills it.
 */
async function openFilesOfQemu(argv: string[]): Promise<{ fds: string[]; nodes: string[] }> {
  const qmpSocket = argv.join(' ').match(/path=([^,]*\/qmp\.sock)/)![1]!;
  const child = spawn('qemu-system-x86_64', argv, { stdio: ['ignore', 'ignore', 'pipe'] });
  let stderr = '';
  child.stderr!.on('data', (d: Buffer) => (stderr += d.toString()));
  try {
    const reply = await waitFor(`QEMU's QMP (${stderr})`, () => (fs.existsSync(qmpSocket) ? qmp(qmpSocket) : null), 60_000, 50);
    const fds = fs.readdirSync(`/proc/${child.pid}/fd`).flatMap((fd) => {
      try {
        return [fs.readlinkSync(`/proc/${child.pid}/fd/${fd}`)];
      } catch {
        return [];
      }
    });
    const nodes = (reply as Array<{ file: string }>).map((n) => n.file);
    return { fds, nodes };
  } finally {
    child.kill('SIGKILL');
    await new Promise((r) => child.once('exit', r));
  }
}

/** qmp_capabilities, then query-named-block-nodes (answered once QEMU has built the machine). */
function qmp(socket: string): Promise<unknown> {
  return new Promise((resolve, reject) => {
    const s = net.createConnection(socket);
    let buf = '';
    let step = 0;
    s.on('data', (d) => {
      buf += d.toString();
      let nl: number;
      while ((nl = buf.indexOf('\n')) >= 0) {
        const msg = JSON.parse(buf.slice(0, nl)) as { QMP?: unknown; return?: unknown; error?: { desc: string } };
        buf = buf.slice(nl + 1);
        if (msg.error) return reject(new Error(msg.error.desc));
        if (msg.QMP) s.write('{"execute":"qmp_capabilities"}\n');
        else if ('return' in msg && step++ === 0) s.write('{"execute":"query-named-block-nodes"}\n');
        else if ('return' in msg) {
          s.destroy();
          resolve(msg.return);
        }
      }
    });
    s.on('error', reject);
  });
}
