// OVA import: a tar holding an OVF descriptor (first), optionally a manifest (.mf) of SHA-1 or
// SHA-256 digests, and the VMDK disks the OVF references. CPU count, memory and disks come from
// the OVF; disks are converted to qcow2 with qemu-img. An href that is not a plain name in the
// archive (a URL, a path, "..") is refused, as is a size or digest that does not match.
import { createHash } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { CONFIG_DEFAULTS, type VmInfo } from '../api/contract.js';
import { LIMITS } from '../api/rules.js';
import { VmName } from '../api/schemas.js';
import { CorralError } from '../api/dispatcher.js';
import { importToQcow2 } from '../qemu/img-copy.js';
import { checkImage } from '../qemu/img.js';
import type { VmContext } from '../vms/context.js';
import { newMac } from '../vms/mac.js';
import { checkDeclaredSizes, register, type ImportArgs } from './import.js';
import type { Job } from './jobs.js';
import { BundleError, checkEntryName, type TarEntry, type TarReader } from './tar.js';
import { child, findAll, parseXml, XmlError, type XmlNode } from './xml.js';

const OVF_MAX_BYTES = 4 << 20;

export interface OvfDisk {
  /** The file's name in the archive. */
  href: string;
  /** ovf:size of the file, when declared. */
  size: number | null;
  /** The disk's capacity in bytes, when declared. */
  capacity: number | null;
}

export interface Ovf {
  name: string;
  cpus: number;
  memoryMiB: number;
  disks: OvfDisk[];
}

const UNITS: Record<string, number> = { byte: 1, kilobytes: 2 ** 10, megabytes: 2 ** 20, gigabytes: 2 ** 30 };

/** "byte * 2^20", "MegaBytes"… as a number of bytes per unit. */
function unitBytes(units: string | undefined, dflt: number): number {
  if (!units) return dflt;
  const u = units.replace(/\s+/g, '').toLowerCase();
  const pow = /^byte\*2\^(\d+)$/.exec(u);
  if (pow) return 2 ** Number(pow[1]);
  const v = UNITS[u];
  if (v === undefined) throw new BundleError(`the OVF uses allocation units "${units}", which Corral does not know`);
  return v;
}

function int(text: string | undefined, what: string): number {
  if (!text || !/^\d+$/.test(text.trim())) throw new BundleError(`the OVF's ${what} is not a whole number: "${text ?? ''}"`);
  return Number(text.trim());
}

/** Reads what Corral needs from an OVF descriptor; errors name the OVF element at fault. */
export function parseOvf(text: string): Ovf {
  let env: XmlNode;
  try {
    env = parseXml(text);
  } catch (err) {
    throw new BundleError(`the OVF is not well-formed XML: ${(err as Error).message}`);
  }
  if (env.name !== 'Envelope') throw new BundleError('the OVF has no Envelope element');
  const files = new Map<string, { href: string; size: number | null }>();
  for (const f of findAll(env, 'File')) {
    const href = f.attrs.href ?? '';
    if (/^[a-z][a-z0-9+.-]*:/i.test(href) || href.includes('/') || href.includes('\\'))
      throw new BundleError(`the OVF references "${href}", outside the archive; only files inside the OVA are accepted`);
    try {
      checkEntryName(href);
    } catch (err) {
      throw new BundleError(`the OVF references "${href}": ${(err as Error).message}`);
    }
    files.set(f.attrs.id ?? '', { href, size: f.attrs.size ? int(f.attrs.size, `File ${href} size`) : null });
  }
  const disks = new Map<string, OvfDisk>();
  for (const d of findAll(env, 'Disk')) {
    const file = files.get(d.attrs.fileRef ?? '');
    if (!file) throw new BundleError(`the OVF's disk "${d.attrs.diskId ?? ''}" names no file of its References`);
    const cap = d.attrs.capacity
      ? int(d.attrs.capacity, `disk ${d.attrs.diskId} capacity`) * unitBytes(d.attrs.capacityAllocationUnits, 1)
      : null;
    disks.set(d.attrs.diskId ?? '', { ...file, capacity: cap });
  }
  const system = findAll(env, 'VirtualSystem')[0];
  if (!system) throw new BundleError('the OVF has no VirtualSystem');
  let cpus = 1;
  let memoryMiB = CONFIG_DEFAULTS.memoryMiB;
  const used: OvfDisk[] = [];
  for (const item of findAll(system, 'Item')) {
    const type = child(item, 'ResourceType')?.text.trim();
    const qty = child(item, 'VirtualQuantity')?.text;
    if (type === '3') cpus = int(qty, 'CPU count');
    else if (type === '4')
      memoryMiB = Math.round((int(qty, 'memory') * unitBytes(child(item, 'AllocationUnits')?.text.trim(), 2 ** 20)) / 2 ** 20);
    else if (type === '17') {
      const ref = child(item, 'HostResource')?.text.trim() ?? '';
      const id = ref.replace(/^ovf:\/disk\//, '').replace(/^\/disk\//, '');
      const disk = disks.get(id);
      if (!disk) throw new BundleError(`the OVF's disk drive names "${ref}", which is not one of its disks`);
      used.push(disk);
    }
  }
  if (cpus < LIMITS.cpus.min || cpus > LIMITS.cpus.max)
    throw new BundleError(`the OVF asks for ${cpus} CPUs; Corral allows ${LIMITS.cpus.min}-${LIMITS.cpus.max}`);
  if (memoryMiB < LIMITS.memoryMiB.min || memoryMiB > LIMITS.memoryMiB.max)
    throw new BundleError(`the OVF asks for ${memoryMiB} MiB of memory; Corral allows ${LIMITS.memoryMiB.min}-${LIMITS.memoryMiB.max} MiB`);
  if (used.length > LIMITS.disks.max) throw new BundleError(`the OVF has ${used.length} disks; Corral allows ${LIMITS.disks.max}`);
  for (const d of used) {
    if ((d.capacity ?? 0) > LIMITS.diskBytes.max || (d.size ?? 0) > LIMITS.diskBytes.max)
      throw new BundleError(`the OVF declares "${d.href}" larger than Corral accepts (${LIMITS.diskBytes.max} bytes)`);
  }
  const rawName = (child(system, 'Name')?.text ?? system.attrs.id ?? '').trim();
  return { name: VmName.safeParse(rawName).success ? rawName : 'imported', cpus, memoryMiB, disks: used };
}

/** A .mf file: "SHA256(name)= hex" lines. */
export function parseMf(text: string): Map<string, { algo: 'sha1' | 'sha256'; hex: string }> {
  const out = new Map<string, { algo: 'sha1' | 'sha256'; hex: string }>();
  for (const line of text.split(/\r?\n/)) {
    if (!line.trim()) continue;
    const m = /^(SHA1|SHA256)\s*\(([^)]+)\)\s*=\s*([0-9a-fA-F]+)\s*$/.exec(line.trim());
    if (!m) throw new BundleError(`the OVA's manifest has a line Corral cannot read: "${line.slice(0, 80)}"`);
    out.set(m[2]!, { algo: m[1] === 'SHA1' ? 'sha1' : 'sha256', hex: m[3]!.toLowerCase() });
  }
  return out;
}

export async function importOva(
  ctx: VmContext,
  a: ImportArgs & { src: string; archiveSize: number },
  reader: TarReader,
  first: TarEntry,
  scratch: string,
  job: Job,
): Promise<VmInfo> {
  const ovfRaw = await reader.small(first, OVF_MAX_BYTES);
  const ovf = parseOvf(ovfRaw.toString('utf8'));
  const name = a.name ?? ovf.name;
  if (ctx.vms.nameTaken(name))
    throw new CorralError('conflict', `a VM named "${name}" already exists: import it with another name (--name)`, 'name');
  checkDeclaredSizes(
    ctx,
    ovf.disks.map((d) => ({ file: d.href, size: d.size ?? 0 })),
    a.archiveSize,
    scratch,
  );
  const digests = new Map<string, { sha1: string; sha256: string }>([[first.name, hashes(ovfRaw)]]);
  const staged = new Map<string, string>();
  let mf: ReturnType<typeof parseMf> | null = null;
  for (let e = await reader.next(); e; e = await reader.next()) {
    job.check();
    if (e.name.endsWith('.mf')) {
      mf = parseMf((await reader.small(e, 1 << 20)).toString('utf8'));
      continue;
    }
    if (e.name.endsWith('.cert')) {
      await reader.small(e, 1 << 20);
      continue;
    }
    const disk = ovf.disks.find((d) => d.href === e.name);
    if (!disk) throw new BundleError(`"${e.name}" is in the archive but not in the OVF`);
    if (staged.has(e.name)) throw new BundleError(`"${e.name}" appears twice in the archive`);
    if (disk.size !== null && disk.size !== e.size)
      throw new BundleError(`"${e.name}" is ${e.size} bytes in the archive, the OVF says ${disk.size}`);
    const out = path.join(scratch, `f${staged.size}.vmdk`);
    const sha1 = createHash('sha1');
    const sha256 = createHash('sha256');
    const fh = await fs.promises.open(out, 'wx', 0o600);
    try {
      await reader.data(e, async (chunk) => {
        sha1.update(chunk);
        sha256.update(chunk);
        await fh.write(chunk);
        job.set(reader.offset);
      });
    } finally {
      await fh.close();
    }
    digests.set(e.name, { sha1: sha1.digest('hex'), sha256: sha256.digest('hex') });
    staged.set(e.name, out);
  }
  const missing = ovf.disks.find((d) => !staged.has(d.href));
  if (missing) throw new BundleError(`"${missing.href}" is in the OVF but missing from the archive`);
  for (const [file, want] of mf ?? []) {
    const got = digests.get(file);
    if (!got) throw new BundleError(`the OVA's manifest lists "${file}", which is not in the archive`);
    if (got[want.algo] !== want.hex) throw new BundleError(`"${file}" does not match its ${want.algo.toUpperCase()} in the OVA's manifest`);
  }
  // VMDK → qcow2; only monolithic sparse VMDKs (a text descriptor would name other files)
  const disks: string[] = [];
  for (const [i, d] of ovf.disks.entries()) {
    const vmdk = staged.get(d.href)!;
    const head = Buffer.alloc(4);
    const fd = fs.openSync(vmdk, 'r');
    fs.readSync(fd, head, 0, 4, 0);
    fs.closeSync(fd);
    if (head.toString('latin1') !== 'KDMV')
      throw new BundleError(
        `"${d.href}" is not a monolithic VMDK (stream-optimized or sparse); Corral does not open VMDKs that name other files`,
      );
    const out = path.join(scratch, `disk${i}.qcow2`);
    job.begin(`converting ${d.href}`, fs.statSync(vmdk).size);
    await importToQcow2(vmdk, 'vmdk', out, { signal: job.signal, onProgress: (f) => job.set(f * job.total) }, ctx.env).catch(
      (err: Error) => {
        throw new BundleError(`"${d.href}" could not be converted: ${err.message}`);
      },
    );
    const { virtualSize } = await checkImage(out, 'qcow2', ctx.env);
    if (d.capacity !== null && virtualSize !== d.capacity)
      throw new BundleError(`"${d.href}" holds ${virtualSize} bytes, the OVF says ${d.capacity}`);
    fs.rmSync(vmdk);
    disks.push(out);
  }
  job.check();
  return register(ctx, {
    name,
    config: {
      ...CONFIG_DEFAULTS,
      cpus: ovf.cpus,
      memoryMiB: ovf.memoryMiB,
      machineType: ctx.driver.pinnedMachineType(),
      nics: [{ id: 'net0', kind: ctx.driver.defaultNicKind(), mac: newMac(ctx.vms), bridge: null, network: null, forwards: [] }],
    },
    disks,
    efiVars: null,
    tpm: [],
    note: `Imported "${name}" from the OVA ${a.src} (${ovf.cpus} CPU, ${ovf.memoryMiB} MiB, ${disks.length} disk(s))`,
  });
}

function hashes(b: Buffer): { sha1: string; sha256: string } {
  return { sha1: createHash('sha1').update(b).digest('hex'), sha256: createHash('sha256').update(b).digest('hex') };
}

export { XmlError };
