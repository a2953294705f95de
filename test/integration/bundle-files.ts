// Builds and takes apart bundles and OVAs on disk for the import tests.
import { execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { BLOCK, header, padding } from '../../electron/core/portable/tar';

/** The entries of a (small) tar, in order. */
export function tarEntries(file: string): Array<[string, Buffer]> {
  const buf = fs.readFileSync(file);
  const out: Array<[string, Buffer]> = [];
  for (let at = 0; at + BLOCK <= buf.length;) {
    const h = buf.subarray(at, at + BLOCK);
    if (h.every((b) => b === 0)) break;
    const name = h.subarray(0, 100).toString('utf8').replace(/\0.*$/s, '');
    const size = parseInt(h.subarray(124, 136).toString('latin1').replace(/\0.*$/s, ''), 8);
    out.push([name, Buffer.from(buf.subarray(at + BLOCK, at + BLOCK + size))]);
    at += BLOCK + size + padding(size);
  }
  return out;
}

/** Writes a tar of these entries; `raw` headers replace the generated ones (links, devices). */
export function writeTar(file: string, entries: Array<[string, Buffer] | { raw: Buffer; data?: Buffer }>): void {
  const parts: Buffer[] = [];
  for (const e of entries) {
    const [h, data] = Array.isArray(e) ? [header(e[0], e[1].length), e[1]] : [e.raw, e.data ?? Buffer.alloc(0)];
    parts.push(h, data, Buffer.alloc(padding(data.length)));
  }
  parts.push(Buffer.alloc(2 * BLOCK));
  fs.writeFileSync(file, Buffer.concat(parts));
}

/** A header of any type and name (a symlink, a device…), its checksum right. */
export function rawHeader(name: string, type: string, size = 0): Buffer {
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

export const sha256 = (b: Buffer) => createHash('sha256').update(b).digest('hex');

/** An OVF for one VMDK, as an appliance tool would write it. */
export function ovfText(o: { name: string; cpus: number; memoryMiB: number; href: string; size: number; capacity: number }): string {
  return `<?xml version="1.0" encoding="UTF-8"?>
<Envelope xmlns="http://schemas.dmtf.org/ovf/envelope/1" xmlns:ovf="http://schemas.dmtf.org/ovf/envelope/1"
  xmlns:rasd="http://schemas.dmtf.org/wbem/wscim/1/cim-schema/2/CIM_ResourceAllocationSettingData">
  <References><File ovf:id="file1" ovf:href="${o.href}" ovf:size="${o.size}"/></References>
  <DiskSection><Info>Virtual disks</Info>
    <Disk ovf:diskId="vmdisk1" ovf:fileRef="file1" ovf:capacity="${o.capacity}" ovf:capacityAllocationUnits="byte"
      ovf:format="http://www.vmware.com/interfaces/specifications/vmdk.html#streamOptimized"/>
  </DiskSection>
  <VirtualSystem ovf:id="${o.name}">
    <Info>A virtual machine</Info>
    <Name>${o.name}</Name>
    <VirtualHardwareSection>
      <Info>Virtual hardware</Info>
      <Item><rasd:ElementName>${o.cpus} virtual CPU(s)</rasd:ElementName><rasd:InstanceID>1</rasd:InstanceID>
        <rasd:ResourceType>3</rasd:ResourceType><rasd:VirtualQuantity>${o.cpus}</rasd:VirtualQuantity></Item>
      <Item><rasd:AllocationUnits>byte * 2^20</rasd:AllocationUnits><rasd:ElementName>Memory</rasd:ElementName>
        <rasd:InstanceID>2</rasd:InstanceID><rasd:ResourceType>4</rasd:ResourceType><rasd:VirtualQuantity>${o.memoryMiB}</rasd:VirtualQuantity></Item>
      <Item><rasd:ElementName>Hard disk 1</rasd:ElementName><rasd:HostResource>ovf:/disk/vmdisk1</rasd:HostResource>
        <rasd:InstanceID>3</rasd:InstanceID><rasd:ResourceType>17</rasd:ResourceType></Item>
    </VirtualHardwareSection>
  </VirtualSystem>
</Envelope>
`;
}

/**
 * An OVA as appliance tools make it: a raw disk with `mark` at 1 MiB, converted to a
 * stream-optimized VMDK by qemu-img, the OVF first, then a SHA-256 manifest and the disk.
 */
export function makeOva(
  dir: string,
  file: string,
  o: { name: string; cpus: number; memoryMiB: number; mark: string; href?: string },
): void {
  const work = fs.mkdtempSync(path.join(dir, 'ova-work-'));
  const raw = path.join(work, 'disk.raw');
  const capacity = 32 * 1024 * 1024;
  const fd = fs.openSync(raw, 'w');
  fs.ftruncateSync(fd, capacity);
  fs.writeSync(fd, Buffer.from(o.mark), 0, o.mark.length, 1024 * 1024);
  fs.closeSync(fd);
  const href = `${o.name}-disk1.vmdk`;
  execFileSync('qemu-img', ['convert', '-f', 'raw', '-O', 'vmdk', '-o', 'subformat=streamOptimized', raw, path.join(work, href)]);
  const vmdk = fs.readFileSync(path.join(work, href));
  const ovf = Buffer.from(ovfText({ ...o, href: o.href ?? href, size: vmdk.length, capacity }));
  const mf = Buffer.from(`SHA256(${o.name}.ovf)= ${sha256(ovf)}\nSHA256(${href})= ${sha256(vmdk)}\n`);
  fs.writeFileSync(path.join(work, `${o.name}.ovf`), ovf);
  fs.writeFileSync(path.join(work, `${o.name}.mf`), mf);
  // the system's tar, as a user would make one
  execFileSync('tar', ['--format=ustar', '-cf', file, '-C', work, `${o.name}.ovf`, `${o.name}.mf`, href]);
  fs.rmSync(work, { recursive: true, force: true });
}
