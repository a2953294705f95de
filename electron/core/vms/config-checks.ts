// Checks a VM config against the host before it is saved or started: files lie in a pool and
// can be read, forwards stay on loopback unless exposed on purpose and do not collide, a
// liveness probe has a port to probe. Errors name the field.
import os from 'node:os';
import type { PortForward, VmConfig } from '../api/contract.js';
import { CorralError } from '../api/dispatcher.js';
import { exposure, isLoopback } from '../api/rules.js';
import { checkImage, detectFormat, type ImageFormat } from '../qemu/img.js';
import type { Pools } from './pools.js';

type BootFiles = Pick<VmConfig, 'iso' | 'kernel' | 'initrd' | 'append'>;

/** Who else uses a file: another VM's disk is never a second VM's file. */
export type DiskOwner = (realPath: string) => string | null;

/**
 * The ISO, kernel and initrd must be readable regular files in a pool. Returns the files with
 * their real paths (what is stored and given to QEMU).
 */
export function checkBootFiles<C extends BootFiles>(c: C, pools: Pools, diskOwner: DiskOwner): C {
  const out = { ...c };
  for (const field of ['iso', 'kernel', 'initrd'] as const) {
    const p = c[field];
    if (!p) continue;
    const real = pools.resolve(field, p).path;
    const owner = diskOwner(real);
    if (owner) {
      const reason = `${p}: is a disk of "${owner}"`;
      throw new CorralError('invalid-argument', `invalid argument "${field}": ${reason}`, field, { reason });
    }
    out[field] = real;
  }
  if ((c.initrd || c.append) && !c.kernel) {
    const field = c.initrd ? 'initrd' : 'append';
    throw new CorralError('invalid-argument', `invalid argument "${field}": needs a kernel`, field, { reason: 'needs a kernel' });
  }
  return out;
}

/**
 * Host addresses: loopback needs nothing; 0.0.0.0, another address of this host or a port
 * below 1024 needs the forward's `exposed` flag; an address this host does not have is refused.
 */
function checkForwardAddress(f: PortForward, i: number): void {
  const fail = (field: string, reason: string) =>
    new CorralError('invalid-argument', `invalid argument "forwards.${i}.${field}": ${reason}`, `forwards.${i}.${field}`, { reason });
  if (!isLoopback(f.hostAddr) && f.hostAddr !== '0.0.0.0' && !localAddresses().has(f.hostAddr))
    throw fail('hostAddr', `${f.hostAddr} is not an address of this host`);
  const why = exposure(f);
  // where accounts exist, only an admin may set `exposed`: that check belongs here
  if (why && !f.exposed) throw fail('exposed', `${why}: set "exposed" to open it on purpose`);
}

function localAddresses(): Set<string> {
  const out = new Set<string>();
  for (const list of Object.values(os.networkInterfaces())) for (const a of list ?? []) if (a.family === 'IPv4') out.add(a.address);
  return out;
}

export function checkNetwork(c: Pick<VmConfig, 'forwards' | 'liveness'>): void {
  const seen = new Set<string>();
  c.forwards.forEach((f, i) => {
    checkForwardAddress(f, i);
    const key = `${f.proto}:${f.hostAddr}:${f.hostPort}`;
    if (seen.has(key)) {
      const reason = `${f.hostPort} is forwarded twice`;
      throw new CorralError('invalid-argument', `invalid argument "forwards.${i}.hostPort": ${reason}`, `forwards.${i}.hostPort`, {
        reason,
      });
    }
    seen.add(key);
  });
  const l = c.liveness;
  if (l && l.kind !== 'agent' && !c.forwards.some((f) => f.proto === 'tcp' && f.guestPort === l.port)) {
    const reason = `the probe needs a tcp port forward to guest port ${l.port} (e.g. --forward tcp:HOSTPORT:${l.port})`;
    throw new CorralError('invalid-argument', `invalid argument "liveness.port": ${reason}`, 'liveness.port', { reason });
  }
}

/** An existing image the user brings: in a pool, no other VM's disk, readable and writable, format from its header. */
export async function checkExistingImage(
  image: string,
  format: ImageFormat | undefined,
  pools: Pools,
  diskOwner: DiskOwner,
  env: NodeJS.ProcessEnv,
): Promise<{ path: string; format: ImageFormat }> {
  const real = pools.resolve('disk.image', image, { write: true }).path;
  const owner = diskOwner(real);
  if (owner)
    throw new CorralError('conflict', `${image} is already a disk of "${owner}"`, 'disk.image', { reason: `is a disk of "${owner}"` });
  try {
    const fmt = format ?? detectFormat(real);
    await checkImage(real, fmt, env);
    return { path: real, format: fmt };
  } catch (err) {
    throw new CorralError('invalid-argument', (err as Error).message, 'disk.image');
  }
}

/** Cross-field rules the schema cannot express. */
export function checkResources(c: Pick<VmConfig, 'cpus' | 'maxCpus' | 'memoryMiB' | 'maxMemoryMiB'>): void {
  if (c.maxCpus !== null && c.maxCpus < c.cpus) {
    throw new CorralError('invalid-argument', `invalid argument "maxCpus": must be at least cpus (${c.cpus})`, 'maxCpus', {
      limit: c.cpus,
      reason: `must be at least cpus (${c.cpus})`,
    });
  }
  if (c.maxMemoryMiB !== null && c.maxMemoryMiB < c.memoryMiB) {
    throw new CorralError(
      'invalid-argument',
      `invalid argument "maxMemoryMiB": must be at least memoryMiB (${c.memoryMiB})`,
      'maxMemoryMiB',
      {
        limit: c.memoryMiB,
        reason: `must be at least memoryMiB (${c.memoryMiB})`,
      },
    );
  }
}
