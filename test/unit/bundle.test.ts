// Bundles and OVAs, read strictly: every bad archive is refused with a message naming what is
// wrong (tars built in memory here; the host's import is tested on real files in
// test/integration/bundle-refusals.test.ts).
import { randomBytes } from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { Readable } from 'node:stream';
import { describe, expect, it } from 'vitest';
import { BUNDLE_VERSION, parseManifest } from '../../electron/core/portable/manifest';
import { parseMf, parseOvf } from '../../electron/core/portable/ova';
import { BLOCK, BundleError, CHUNK, fileChunks, header, padding, parseHeader, TarReader } from '../../electron/core/portable/tar';
import { parseXml } from '../../electron/core/portable/xml';

/** A header with any name and type, its checksum right. */
function rawHeader(name: string, size: number, type: string): Buffer {
  const h = header('x', size);
  h.fill(0, 0, 100);
  h.write(name, 0, 100);
  h.write(type, 156);
  h.fill(0x20, 148, 156);
  let sum = 0;
  for (const b of h) sum += b;
  h.write(sum.toString(8).padStart(6, '0') + '\0 ', 148);
  return h;
}

function tar(entries: Array<[string, Buffer]>): Buffer {
  const parts: Buffer[] = [];
  for (const [name, data] of entries) parts.push(header(name, data.length), data, Buffer.alloc(padding(data.length)));
  parts.push(Buffer.alloc(2 * BLOCK));
  return Buffer.concat(parts);
}

async function readAll(buf: Buffer): Promise<Array<[string, string]>> {
  const r = new TarReader(Readable.from([buf.subarray(0, 700), buf.subarray(700)]));
  const out: Array<[string, string]> = [];
  for (let e = await r.next(); e; e = await r.next()) out.push([e.name, (await r.small(e, 1 << 20)).toString()]);
  return out;
}

const manifest = (over: Record<string, unknown> = {}) => ({
  format: 'corral-vm',
  version: BUNDLE_VERSION,
  name: 'web',
  exportedAt: 0,
  config: {
    cpus: 1,
    maxCpus: null,
    memoryMiB: 256,
    maxMemoryMiB: null,
    cpuWeight: null,
    cpuCapPercent: null,
    ioBps: null,
    ioIops: null,
    iso: null,
    kernel: null,
    initrd: null,
    append: null,
    forwards: [],
    restart: 'never',
    maxCrashes: 5,
    crashWindowSec: 900,
    liveness: null,
    livenessStartupSec: 300,
    guestWatchdog: 'off',
    firmware: 'bios',
    tpm: false,
    machineType: 'pc-q35-7.2',
    cpuModel: 'qemu64',
    autostart: false,
    autostartOrder: 0,
    autostartDelaySec: 0,
    stopTimeoutSec: 60,
    nics: [{ id: 'net0', kind: 'user', mac: '52:54:00:aa:bb:cc', bridge: null, network: null, forwards: [] }],
  },
  machineType: 'pc-q35-7.2',
  cpuModel: 'qemu64',
  firmware: 'bios',
  tpm: false,
  disks: [{ file: 'disk0.qcow2', virtualSize: 1 << 20, size: 200_000, sha256: 'a'.repeat(64) }],
  efiVars: null,
  tpmState: [],
  ...over,
});
const json = (v: unknown) => Buffer.from(JSON.stringify(v));

describe('tar', () => {
  it('reads back what it writes, across chunk boundaries', async () => {
    const data = Buffer.alloc(1500, 7);
    expect(
      await readAll(
        tar([
          ['manifest.json', Buffer.from('{}')],
          ['tpm/state', data],
        ]),
      ),
    ).toEqual([
      ['manifest.json', '{}'],
      ['tpm/state', data.toString()],
    ]);
  });

  it('reads a file through reused buffers: every entry intact while the consumer is slow', async () => {
    // entries that straddle the reader's buffers at odd offsets; a consumer that copies each
    // chunk only after a pause (as a write does) sees the bytes it was given, never the next read's
    const entries: Array<[string, Buffer]> = [
      ['a', randomBytes(2 * CHUNK + 777)],
      ['b', randomBytes(3 * CHUNK - 1000)],
      ['c', randomBytes(1234)],
    ];
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'corral-tar-'));
    try {
      const file = path.join(dir, 'x.tar');
      fs.writeFileSync(file, tar(entries));
      const r = new TarReader(fileChunks(file));
      const got: Array<[string, Buffer]> = [];
      for (let e = await r.next(); e; e = await r.next()) {
        const parts: Buffer[] = [];
        await r.data(e, async (chunk) => {
          await new Promise((res) => setTimeout(res, 5));
          parts.push(Buffer.from(chunk));
        });
        got.push([e.name, Buffer.concat(parts)]);
      }
      expect(got.map(([n]) => n)).toEqual(['a', 'b', 'c']);
      for (const [i, [, data]] of got.entries()) expect(data.equals(entries[i]![1])).toBe(true);
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });

  it('writes and reads sizes beyond 8 GiB (base-256)', () => {
    expect(parseHeader(header('disk0.qcow2', 20 * 2 ** 30))).toEqual({ name: 'disk0.qcow2', size: 20 * 2 ** 30 });
  });

  it.each([
    ['../etc/passwd', '0', /points outside the archive/],
    ['a/../../x', '0', /points outside the archive/],
    ['/etc/passwd', '0', /absolute path/],
    ['link', '2', /symbolic link/],
    ['hard', '1', /hard link/],
    ['null', '3', /character device/],
    ['sda', '4', /block device/],
    ['dir', '5', /directory/],
    ['fifo', '6', /FIFO/],
    ['PaxHeader', 'x', /pax extended header/],
    ['we ird', '0', /name Corral does not accept/],
  ])('refuses the entry %s (type %s)', (name, type, why) => {
    expect(() => parseHeader(rawHeader(name, 0, type))).toThrow(why);
  });

  it('refuses a corrupt header and a file that is no tar', async () => {
    const h = header('a', 1);
    h[0] = 0x62;
    expect(() => parseHeader(h)).toThrow(/checksum mismatch/);
    await expect(readAll(Buffer.from('hello'))).rejects.toThrow(/empty or not a tar|partial header/);
  });

  it('names the entry a truncated archive cuts short', async () => {
    const whole = tar([['disk0.qcow2', Buffer.alloc(4000, 1)]]);
    await expect(readAll(whole.subarray(0, 2000))).rejects.toThrow(/truncated: "disk0.qcow2" has \d+ of its 4000 bytes/);
    await expect(readAll(whole.subarray(0, whole.length - 2 * BLOCK))).rejects.toThrow(/truncated \(no end marker\)/);
  });
});

describe('the bundle manifest', () => {
  it('accepts a version 1 manifest', () => {
    expect(parseManifest(json(manifest({ version: 1 }))).disks[0]!.file).toBe('disk0.qcow2');
  });

  it('refuses a future version with what to do', () => {
    expect(() => parseManifest(json(manifest({ version: 3 })))).toThrow(
      /format version 3; this Corral reads versions up to 2: import it with a newer Corral/,
    );
  });

  it('refuses an absurd declared size, naming the field', () => {
    const m = manifest({ disks: [{ file: 'disk0.qcow2', virtualSize: 2 ** 52, size: 10, sha256: 'a'.repeat(64) }] });
    expect(() => parseManifest(json(m))).toThrow(/disks\.0\.virtualSize: is larger than Corral accepts/);
  });

  it('refuses files outside the archive, TPM files outside tpm/, a name twice, not JSON', () => {
    const bad = (file: string) => manifest({ disks: [{ file, virtualSize: 1, size: 1, sha256: 'a'.repeat(64) }] });
    expect(() => parseManifest(json(bad('../disk0.qcow2')))).toThrow(/disks\.0\.file: .*outside the archive/);
    expect(() => parseManifest(json(bad('/var/lib/x')))).toThrow(/absolute path/);
    expect(() => parseManifest(json(manifest({ tpmState: [{ file: 'efivars.qcow2', size: 1, sha256: 'a'.repeat(64) }] })))).toThrow(
      /TPM state files must be tpm\/NAME/,
    );
    expect(() => parseManifest(json(manifest({ efiVars: { file: 'disk0.qcow2', size: 1, sha256: 'b'.repeat(64) } })))).toThrow(/twice/);
    expect(() => parseManifest(Buffer.from('{'))).toThrow(/not valid JSON/);
    expect(() => parseManifest(json({ hello: 1 }))).toThrow(/not a Corral VM bundle/);
    expect(() => parseManifest(json(manifest({ config: { ...manifest().config, memoryMiB: 1 } })))).toThrow(/config\.memoryMiB/);
  });
});

const ovf = (refs: string, items = '') => `<?xml version="1.0" encoding="UTF-8"?>
<Envelope xmlns="http://schemas.dmtf.org/ovf/envelope/1" xmlns:ovf="http://schemas.dmtf.org/ovf/envelope/1"
  xmlns:rasd="http://schemas.dmtf.org/wbem/wscim/1/cim-schema/2/CIM_ResourceAllocationSettingData">
  <References>${refs}</References>
  <DiskSection><Info>disks</Info>
    <Disk ovf:diskId="d1" ovf:fileRef="f1" ovf:capacity="64" ovf:capacityAllocationUnits="byte * 2^20"/>
  </DiskSection>
  <VirtualSystem ovf:id="tiny &amp; small">
    <Name>tiny</Name>
    <VirtualHardwareSection>
      <Item><rasd:ResourceType>3</rasd:ResourceType><rasd:VirtualQuantity>2</rasd:VirtualQuantity></Item>
      <Item><rasd:AllocationUnits>byte * 2^30</rasd:AllocationUnits><rasd:ResourceType>4</rasd:ResourceType><rasd:VirtualQuantity>1</rasd:VirtualQuantity></Item>
      <Item><rasd:HostResource>ovf:/disk/d1</rasd:HostResource><rasd:ResourceType>17</rasd:ResourceType></Item>
      ${items}
    </VirtualHardwareSection>
  </VirtualSystem>
</Envelope>`;

describe('OVF', () => {
  it('reads CPUs, memory and disks', () => {
    expect(parseOvf(ovf('<File ovf:id="f1" ovf:href="tiny-disk1.vmdk" ovf:size="1234"/>'))).toEqual({
      name: 'tiny',
      cpus: 2,
      memoryMiB: 1024,
      disks: [{ href: 'tiny-disk1.vmdk', size: 1234, capacity: 64 * 2 ** 20 }],
    });
  });

  it.each(['../disk.vmdk', '/etc/shadow', 'file:///etc/shadow', 'http://example.com/d.vmdk', 'sub/d.vmdk'])(
    'refuses a reference outside the archive: %s',
    (href) => {
      expect(() => parseOvf(ovf(`<File ovf:id="f1" ovf:href="${href}"/>`))).toThrow(/outside the archive|points outside/);
    },
  );

  it('refuses DTDs and entities: nothing expands', () => {
    const bomb = `<?xml version="1.0"?><!DOCTYPE x [<!ENTITY a "aaaa"><!ENTITY b "&a;&a;">]><Envelope>&b;</Envelope>`;
    expect(() => parseOvf(bomb)).toThrow(/DOCTYPE and ENTITY declarations are not allowed/);
    expect(() => parseXml('<a>&ext;</a>')).toThrow(/not allowed/);
    expect(() => parseXml('<a><b></a>')).toThrow(/unexpected closing tag/);
  });

  it('refuses absurd CPU and memory figures', () => {
    const many = ovf('<File ovf:id="f1" ovf:href="d.vmdk"/>').replace('<rasd:VirtualQuantity>2<', '<rasd:VirtualQuantity>100000<');
    expect(() => parseOvf(many)).toThrow(/100000 CPUs/);
  });

  it('reads SHA-1 and SHA-256 manifests, and refuses what it cannot read', () => {
    expect(parseMf(`SHA256(a.ovf)= ${'AB'.repeat(32)}\nSHA1(d.vmdk)= ${'c'.repeat(40)}\n`)).toEqual(
      new Map([
        ['a.ovf', { algo: 'sha256', hex: 'ab'.repeat(32) }],
        ['d.vmdk', { algo: 'sha1', hex: 'c'.repeat(40) }],
      ]),
    );
    expect(() => parseMf('MD5(a)= 00')).toThrow(BundleError);
  });
});

describe('the snapshot section of a manifest', () => {
  const snap = (id: string, parentId: string | null, over: Record<string, unknown> = {}) => ({
    id,
    parentId,
    name: `n-${id}`,
    description: '',
    createdAt: 1,
    hasRam: false,
    kind: 'offline',
    consistency: 'offline',
    pauseMs: null,
    scheduled: false,
    withVars: false,
    withTpm: false,
    config: manifest().config,
    disks: [0],
    tpmState: [],
    ...over,
  });
  const A = 's00000000000a';
  const B = 's00000000000b';
  const C = 's00000000000c';
  const withTree = (list: unknown[], currentId: string | null = null, over: Record<string, unknown> = {}) =>
    json(manifest({ snapshots: { currentId, list }, ...over }));

  it('accepts a tree, and lists its TPM files among the bundle files', () => {
    const tpm = { file: `snapshots/${B}/tpm/tpm2-00.permall`, size: 10, sha256: 'c'.repeat(64) };
    const m = parseManifest(withTree([snap(A, null), snap(B, A, { withTpm: true, tpmState: [tpm] })], B));
    expect(m.snapshots!.list.map((s) => s.parentId)).toEqual([null, A]);
  });

  it('refuses an unknown parent, a cycle, an unknown current snapshot', () => {
    expect(() => parseManifest(withTree([snap(A, C)]))).toThrow(
      /snapshots\.list\.0 \("n-s00000000000a"\): its parent s00000000000c is not in the bundle/,
    );
    expect(() => parseManifest(withTree([snap(A, C), snap(B, A), snap(C, B)]))).toThrow(/its parents form a cycle/);
    expect(() => parseManifest(withTree([snap(A, A)]))).toThrow(/its parents form a cycle/);
    expect(() => parseManifest(withTree([snap(A, null)], B))).toThrow(/snapshots\.currentId: s00000000000b is not in the bundle/);
  });

  it('refuses absurd counts, ids twice, names twice, disks the bundle lacks, ids Corral never makes', () => {
    const many = Array.from({ length: 1025 }, (_, i) => snap(`s${i.toString(16).padStart(12, '0')}`, null));
    expect(() => parseManifest(withTree(many))).toThrow(/snapshots\.list: must hold at most 1024 snapshots/);
    expect(() => parseManifest(withTree([snap(A, null), snap(A, null, { name: 'other' })]))).toThrow(/the id s00000000000a appears twice/);
    expect(() => parseManifest(withTree([snap(A, null, { name: 'x' }), snap(B, null, { name: 'X' })]))).toThrow(/the name appears twice/);
    expect(() => parseManifest(withTree([snap(A, null, { disks: [3] })]))).toThrow(/names disk 3, which the bundle does not have/);
    expect(() => parseManifest(withTree([snap('../../etc', null)]))).toThrow(/snapshots\.list\.0\.id: must be a snapshot id Corral made/);
    expect(() => parseManifest(withTree([snap(A, null, { hasRam: true, disks: [] })]))).toThrow(/holds RAM, which lives in disk 0/);
  });

  it('refuses files where the snapshot kept none, outside its folder, and a tree in a version 1 bundle', () => {
    const tpm = (file: string) => ({ file, size: 1, sha256: 'c'.repeat(64) });
    expect(() => parseManifest(withTree([snap(A, null, { tpmState: [tpm(`snapshots/${A}/tpm/x`)] })]))).toThrow(
      /lists TPM state but says it kept none/,
    );
    expect(() => parseManifest(withTree([snap(A, null, { withTpm: true, tpmState: [tpm('tpm/x')] })]))).toThrow(
      /its TPM state file "tpm\/x" must be snapshots\/s00000000000a\/tpm\/NAME/,
    );
    expect(() => parseManifest(withTree([snap(A, null, { withVars: true })]))).toThrow(/the bundle has no variables file/);
    expect(() => parseManifest(withTree([snap(A, null)], null, { version: 1 }))).toThrow(/a version 1 bundle carries no snapshots/);
  });
});
