import { describe, expect, it } from 'vitest';
import { CONFIG_DEFAULTS, type VmConfig } from '../../electron/core/api/contract';
import { dataLayout, vmFiles } from '../../electron/core/paths';
import { buildArgv } from '../../electron/core/qemu/argv';
import { optValue } from '../../electron/core/qemu/escape';
import { LEGACY_MAC } from '../../electron/core/api/nics';
import { privateGroup } from '../../electron/core/qemu/nic-argv';

const files = vmFiles(dataLayout('/data'), 'abc123');
const fwd = { proto: 'tcp' as const, hostAddr: '127.0.0.1', hostPort: 2222, guestPort: 22, exposed: false };
const base: VmConfig = { ...CONFIG_DEFAULTS, cpus: 2, memoryMiB: 1024, disks: [] };

/** The value following a flag (first occurrence, or nth). */
function after(argv: string[], flag: string, nth = 0): string | undefined {
  const idx = argv.flatMap((a, i) => (a === flag ? [i] : []))[nth];
  return idx === undefined ? undefined : argv[idx + 1];
}

describe('argv builder (golden)', () => {
  it('pins the full argv of a representative VM', () => {
    const config: VmConfig = {
      ...base,
      disks: [{ path: '/data/vms/abc123/disk0.qcow2', format: 'qcow2', owned: true }],
      iso: '/isos/debian.iso',
      forwards: [fwd],
      nics: [{ id: 'net0', kind: 'user', mac: LEGACY_MAC, bridge: null, network: null, forwards: [fwd] }],
      machineType: 'pc-q35-7.2',
    };
    expect(buildArgv({ id: 'abc123', name: 'web', config, files }, { accel: 'tcg' })).toEqual([
      '-name',
      'guest=web,debug-threads=on',
      '-nodefaults',
      '-no-user-config',
      '-S',
      '-pidfile',
      '/data/vms/abc123/run/qemu.pid',
      '-msg',
      'timestamp=on',
      '-machine',
      'pc-q35-7.2,accel=tcg',
      '-cpu',
      'Westmere-v1,enforce',
      '-smp',
      'cpus=2,maxcpus=2',
      '-m',
      'size=1024M',
      '-blockdev',
      '{"driver":"file","filename":"/data/vms/abc123/disk0.qcow2","node-name":"disk0-file","discard":"unmap"}',
      '-blockdev',
      '{"driver":"qcow2","file":"disk0-file","node-name":"disk0","discard":"unmap","backing":null}',
      '-device',
      '{"driver":"virtio-blk-pci","drive":"disk0","id":"disk0-dev","bootindex":1}',
      '-blockdev',
      '{"driver":"file","filename":"/isos/debian.iso","node-name":"cd0-file","read-only":true}',
      '-blockdev',
      '{"driver":"raw","file":"cd0-file","node-name":"cd0","read-only":true}',
      '-device',
      '{"driver":"ide-cd","drive":"cd0","bus":"ide.0","id":"cd0-dev","bootindex":0}',
      '-netdev',
      'user,id=net0,hostfwd=tcp:127.0.0.1:2222-:22',
      '-device',
      '{"driver":"virtio-net-pci","netdev":"net0","id":"net0-dev","mac":"52:54:00:12:34:56"}',
      '-chardev',
      'socket,id=qmp,path=/data/vms/abc123/run/qmp.sock,server=on,wait=off',
      '-mon',
      'chardev=qmp,mode=control',
      '-chardev',
      'socket,id=serial0,path=/data/vms/abc123/run/serial.sock,server=on,wait=off,logfile=/data/vms/abc123/serial.log,logappend=on',
      '-serial',
      'chardev:serial0',
      '-display',
      'none',
      '-vnc',
      'unix:/data/vms/abc123/run/vnc.sock',
      '-device',
      '{"driver":"VGA","id":"video0","vgamem_mb":16}',
      '-device',
      '{"driver":"qemu-xhci","id":"usb"}',
      '-device',
      '{"driver":"usb-tablet","id":"tablet0","bus":"usb.0"}',
      '-device',
      '{"driver":"pvpanic-pci","id":"pvpanic"}',
      '-action',
      'panic=exit-failure',
      '-device',
      '{"driver":"virtio-rng-pci","id":"rng0"}',
      '-device',
      '{"driver":"virtio-balloon-pci","id":"balloon0"}',
      '-device',
      '{"driver":"virtio-serial-pci","id":"vser0"}',
      '-chardev',
      'socket,id=qga0,path=/data/vms/abc123/run/qga.sock,server=on,wait=off',
      '-device',
      '{"driver":"virtserialport","bus":"vser0.0","chardev":"qga0","name":"org.qemu.guest_agent.0"}',
      '-device',
      '{"driver":"pcie-root-port","id":"nichp0","bus":"pcie.0","chassis":1}',
      '-device',
      '{"driver":"pcie-root-port","id":"nichp1","bus":"pcie.0","chassis":2}',
      '-sandbox',
      'on,obsolete=deny,elevateprivileges=deny,spawn=deny,resourcecontrol=deny',
    ]);
  });

  it('drops to the unprivileged user with -runas, which the sandbox must then allow', () => {
    const argv = buildArgv({ id: 'abc123', name: 'x', config: base, files }, { accel: 'tcg', runAs: 'corral-qemu' });
    expect(after(argv, '-runas')).toBe('corral-qemu');
    expect(after(argv, '-sandbox')).toBe('on,obsolete=deny,elevateprivileges=allow,spawn=deny,resourcecontrol=deny');
    expect(buildArgv({ id: 'abc123', name: 'x', config: base, files }, { accel: 'tcg' })).not.toContain('-runas');
  });

  it('passes the host CPU through only when the VM says so, portable models otherwise', () => {
    const argv = buildArgv({ id: 'abc123', name: 'x', config: base, files }, { accel: 'kvm' });
    expect(after(argv, '-machine')).toBe('q35,accel=kvm');
    expect(after(argv, '-cpu')).toBe('Westmere-v1,enforce');
    const host = buildArgv({ id: 'abc123', name: 'x', config: { ...base, cpuModel: 'host' }, files }, { accel: 'kvm' });
    expect(after(host, '-cpu')).toBe('host');
  });

  it("boots UEFI from pflash: shared read-only code, the VM's own qcow2 variables", () => {
    const firmware = { code: '/fw/OVMF_CODE_4M.fd', varsTemplate: '/fw/OVMF_VARS_4M.fd', secure: false };
    const config: VmConfig = { ...base, firmware: 'uefi', machineType: 'pc-q35-7.2' };
    const argv = buildArgv({ id: 'abc123', name: 'x', config, files, firmware }, { accel: 'tcg' });
    expect(after(argv, '-machine')).toBe('pc-q35-7.2,accel=tcg,pflash0=fw-code,pflash1=fw-vars');
    const i = argv.indexOf('{"driver":"file","filename":"/fw/OVMF_CODE_4M.fd","node-name":"fw-code-file","read-only":true}');
    expect(argv.slice(i - 1, i + 7)).toEqual([
      '-blockdev',
      '{"driver":"file","filename":"/fw/OVMF_CODE_4M.fd","node-name":"fw-code-file","read-only":true}',
      '-blockdev',
      '{"driver":"raw","file":"fw-code-file","node-name":"fw-code","read-only":true}',
      '-blockdev',
      '{"driver":"file","filename":"/data/vms/abc123/efivars.qcow2","node-name":"fw-vars-file"}',
      '-blockdev',
      '{"driver":"qcow2","file":"fw-vars-file","node-name":"fw-vars","backing":null}',
    ]);
    expect(argv).not.toContain('-global');
  });

  it('secure boot adds SMM and a secure pflash', () => {
    const firmware = { code: '/fw/OVMF_CODE_4M.secboot.fd', varsTemplate: '/fw/OVMF_VARS_4M.ms.fd', secure: true };
    const config: VmConfig = { ...base, firmware: 'uefi-secure', machineType: 'pc-q35-7.2' };
    const argv = buildArgv({ id: 'abc123', name: 'x', config, files, firmware }, { accel: 'tcg' });
    expect(after(argv, '-machine')).toBe('pc-q35-7.2,accel=tcg,smm=on,pflash0=fw-code,pflash1=fw-vars');
    expect(after(argv, '-global')).toBe('driver=cfi.pflash01,property=secure,value=on');
  });

  it("connects the TPM to the VM's swtpm socket in its run dir", () => {
    const argv = buildArgv({ id: 'abc123', name: 'x', config: { ...base, tpm: true }, files }, { accel: 'tcg' });
    expect(after(argv, '-tpmdev')).toBe('emulator,id=tpm0,chardev=tpm0-chr');
    expect(argv).toContain('socket,id=tpm0-chr,path=/data/vms/abc123/run/swtpm.sock');
    expect(argv).toContain('{"driver":"tpm-crb","tpmdev":"tpm0","id":"tpm0-dev"}');
    expect(buildArgv({ id: 'abc123', name: 'x', config: base, files }, { accel: 'tcg' })).not.toContain('-tpmdev');
  });

  it('shares folders over virtiofs (shared memfd RAM, the socket in the run dir) and 9p', () => {
    const shares = [
      { path: '/srv/a,b', tag: 'code', readOnly: false, via: 'auto' as const },
      { path: '/srv/docs', tag: 'docs', readOnly: true, via: '9p' as const },
    ];
    const argv = buildArgv(
      { id: 'abc123', name: 'vm', config: { ...base, shares }, files, shareVia: ['virtiofs', '9p'] },
      { accel: 'tcg' },
    );
    expect(after(argv, '-machine')).toContain('memory-backend=ram0');
    expect(after(argv, '-object')).toBe('memory-backend-memfd,id=ram0,size=1024M,share=on');
    expect(after(argv, '-m')).toBe('size=1024M');
    expect(argv).toContain(`socket,id=fs0-chr,path=${files.runDir}/fs0.sock`);
    expect(argv).toContain(
      JSON.stringify({ driver: 'vhost-user-fs-pci', chardev: 'fs0-chr', tag: 'code', id: 'fs0-dev', 'queue-size': 1024 }),
    );
    expect(after(argv, '-fsdev')).toBe('local,id=fs1-dev9p,path=/srv/docs,security_model=none,readonly=on');
    expect(argv).toContain(JSON.stringify({ driver: 'virtio-9p-pci', fsdev: 'fs1-dev9p', mount_tag: 'docs', id: 'fs1-dev' }));
    // only 9p: no shared memory needed, the RAM stays QEMU's own
    const only9p = buildArgv(
      { id: 'abc123', name: 'vm', config: { ...base, shares: [shares[0]!] }, files, shareVia: ['9p'] },
      { accel: 'tcg' },
    );
    expect(only9p).not.toContain('-object');
    expect(after(only9p, '-fsdev')).toBe('local,id=fs0-dev9p,path=/srv/a,,b,security_model=none');
  });

  it('escapes commas in names and option paths, and leaves JSON values intact', () => {
    const name = `it's a "vm", ünïcødé ✓`;
    const odd = vmFiles(dataLayout('/home/me/my data, "quoted"/ü'), 'abc123');
    const config: VmConfig = {
      ...base,
      disks: [{ path: '/imgs/a, b "c" ü.raw', format: 'raw', owned: false }],
      kernel: '/k/vmlinuz, v2',
      initrd: '/k/initrd ü',
      append: 'console=ttyS0 quiet foo="a,b"',
    };
    const argv = buildArgv({ id: 'abc123', name, config, files: odd }, { accel: 'tcg' });
    expect(after(argv, '-name')).toBe(`guest=it's a "vm",, ünïcødé ✓,debug-threads=on`);
    // the run dir moved to a short path (socket names must fit 108 bytes), the log stays in the data dir
    expect(after(argv, '-chardev', 1)).toContain(`logfile=/home/me/my data,, "quoted"/ü/vms/abc123/serial.log,logappend=on`);
    const file = JSON.parse(after(argv, '-blockdev')!) as { filename: string };
    expect(file.filename).toBe('/imgs/a, b "c" ü.raw');
    expect(JSON.parse(after(argv, '-blockdev', 1)!)).toMatchObject({ driver: 'raw' });
    // -kernel, -initrd and -append take their value verbatim
    expect(after(argv, '-kernel')).toBe('/k/vmlinuz, v2');
    expect(after(argv, '-initrd')).toBe('/k/initrd ü');
    expect(after(argv, '-append')).toBe('console=ttyS0 quiet foo="a,b"');
  });

  it('never lets QEMU probe an image format', () => {
    for (const format of ['qcow2', 'raw'] as const) {
      const argv = buildArgv(
        { id: 'abc123', name: 'x', config: { ...base, disks: [{ path: '/d.img', format, owned: false }] }, files },
        { accel: 'tcg' },
      );
      const formats = argv.flatMap((a, i) => (argv[i - 1] === '-blockdev' ? [JSON.parse(a).driver as string] : []));
      expect(formats).toEqual(['file', format]);
      expect(argv.join(' ')).not.toMatch(/-drive|-hda/);
    }
  });

  it('pins a qcow2 disk to no backing file, whatever its header says', () => {
    const argv = buildArgv(
      { id: 'abc123', name: 'x', config: { ...base, disks: [{ path: '/d.qcow2', format: 'qcow2', owned: false }] }, files },
      { accel: 'tcg' },
    );
    // "backing": null is QEMU's "open no backing file"; an absent key would open the header's
    expect(JSON.parse(after(argv, '-blockdev', 1)!)).toEqual({
      driver: 'qcow2',
      file: 'disk0-file',
      'node-name': 'disk0',
      discard: 'unmap',
      backing: null,
    });
    // raw has no backing option (QEMU would refuse the key)
    const raw = buildArgv(
      { id: 'abc123', name: 'x', config: { ...base, disks: [{ path: '/d.img', format: 'raw', owned: false }] }, files },
      { accel: 'tcg' },
    );
    expect(JSON.parse(after(raw, '-blockdev', 1)!)).not.toHaveProperty('backing');
  });

  it('keeps socket paths under the unix limit however deep the data dir is', () => {
    const deep = vmFiles(dataLayout('/' + 'x'.repeat(200)), 'abc123');
    for (const s of [deep.qmpSocket, deep.serialSocket, deep.vncSocket]) expect(Buffer.byteLength(s)).toBeLessThan(108);
    expect(deep.serialLog.startsWith('/' + 'x'.repeat(200))).toBe(true);
  });

  it('adds the i6300esb watchdog only when asked, with the action the supervisor needs', () => {
    expect(buildArgv({ id: 'abc123', name: 'x', config: base, files }, { accel: 'tcg' }).join(' ')).not.toContain('i6300esb');
    const argv = buildArgv({ id: 'abc123', name: 'x', config: { ...base, guestWatchdog: 'restart' }, files }, { accel: 'tcg' });
    expect(argv).toContain('{"driver":"i6300esb","id":"watchdog0"}');
    expect(argv).toContain('watchdog=pause'); // paused, then ended by the supervisor under the restart policy
    const reset = buildArgv({ id: 'abc123', name: 'x', config: { ...base, guestWatchdog: 'reset' }, files }, { accel: 'tcg' });
    expect(reset).toContain('watchdog=reset');
  });

  it('boots with the maximum memory and room for hotplugged vCPUs', () => {
    const argv = buildArgv(
      { id: 'abc123', name: 'x', config: { ...base, cpus: 2, maxCpus: 4, memoryMiB: 512, maxMemoryMiB: 2048 }, files },
      { accel: 'tcg' },
    );
    expect(after(argv, '-smp')).toBe('cpus=2,maxcpus=4');
    expect(after(argv, '-m')).toBe('size=2048M');
  });

  it('optValue doubles commas and refuses NUL', () => {
    expect(optValue('a,b,,c')).toBe('a,,b,,,,c');
    expect(() => optValue('a\0b')).toThrow(/NUL/);
  });
});

describe('NICs', () => {
  const nic = { bridge: null, network: null, forwards: [] };
  const config: VmConfig = {
    ...base,
    nics: [
      { ...nic, id: 'net0', kind: 'passt', mac: '52:54:00:00:00:01', forwards: [fwd] },
      { ...nic, id: 'net1', kind: 'private', mac: '52:54:00:00:00:02', network: 'lab' },
      { ...nic, id: 'net2', kind: 'bridge', mac: '52:54:00:00:00:03', bridge: 'br0' },
    ],
  };
  const argv = buildArgv({ id: 'abc123', name: 'x', config, files, passtFds: new Map([['net0', 3]]) }, { accel: 'tcg', hostKey: '/data' });

  it('gives each kind its netdev and each NIC its MAC', () => {
    const g = privateGroup('/data', 'lab');
    expect(argv.filter((_, i) => argv[i - 1] === '-netdev')).toEqual([
      'stream,id=net0,server=on,addr.type=fd,addr.str=3',
      `socket,id=net1,mcast=${g.addr}:${g.port},localaddr=127.0.0.1`,
      'bridge,id=net2,br=br0,helper=/usr/lib/qemu/qemu-bridge-helper',
    ]);
    expect(argv.filter((a) => a.includes('virtio-net-pci')).map((a) => (JSON.parse(a) as { mac: string }).mac)).toEqual([
      '52:54:00:00:00:01',
      '52:54:00:00:00:02',
      '52:54:00:00:00:03',
    ]);
    // the bridge helper is spawned by QEMU after its filter is in place
    expect(after(argv, '-sandbox')).toContain('spawn=allow');
    expect(after(buildArgv({ id: 'abc123', name: 'x', config: base, files }, { accel: 'tcg' }), '-sandbox')).toContain('spawn=deny');
  });

  it('keys private networks to the host: same name, another data dir, another group', () => {
    expect(privateGroup('/data', 'lab')).toEqual(privateGroup('/data', 'lab'));
    expect(privateGroup('/data', 'lab')).not.toEqual(privateGroup('/other', 'lab'));
    expect(privateGroup('/data', 'lab').addr).toMatch(/^239\.255\.\d+\.\d+$/);
  });

  it('has no network at all without NICs', () => {
    expect(buildArgv({ id: 'abc123', name: 'x', config: base, files }, { accel: 'tcg' })).not.toContain('-netdev');
  });
});
