// Checks a VM config against the host before it is saved or started: files lie in a pool and
// can be read, forwards stay on loopback unless exposed on purpose and do not collide, a
// liveness probe has a port to probe. Errors name the field.
import dgram from 'node:dgram';
import net from 'node:net';
import os from 'node:os';
import type { PortForward, VmConfig } from '../api/contract.js';
import { CorralError } from '../api/dispatcher.js';
import { allForwards, primaryNic } from '../api/nics.js';
import { exposure, isLoopback } from '../api/rules.js';
import { checkImage, detectFormat, type ImageFormat } from '../qemu/img.js';
import { portHolder } from './port-holder.js';
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
function checkForwardAddress(f: PortForward, at: string): void {
  const fail = (field: string, reason: string) =>
    new CorralError('invalid-argument', `invalid argument "${at}.${field}": ${reason}`, `${at}.${field}`, { reason });
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

/** Two forwards that would listen on the same host socket. */
const clash = (a: PortForward, b: PortForward) =>
  a.proto === b.proto && a.hostPort === b.hostPort && (a.hostAddr === b.hostAddr || a.hostAddr === '0.0.0.0' || b.hostAddr === '0.0.0.0');

/** Each forward with the field a client knows it by: the primary NIC's are `forwards.N`. */
export function forwardFields(c: Pick<VmConfig, 'nics'>): Array<{ f: PortForward; at: string }> {
  const primary = primaryNic(c.nics);
  return c.nics.flatMap((n, i) => n.forwards.map((f, j) => ({ f, at: n === primary ? `forwards.${j}` : `nics.${i}.forwards.${j}` })));
}

/**
 * Forwards stay on loopback unless exposed, are not given twice and are no other VM's; a
 * liveness probe has a forward to its port. `others`: the other VMs, whose forwards are theirs
 * whether they run or not.
 */
export function checkNetwork(
  c: Pick<VmConfig, 'nics' | 'liveness'>,
  others: ReadonlyArray<{ name: string; config: Pick<VmConfig, 'nics'> }> = [],
): void {
  const seen: PortForward[] = [];
  for (const { f, at } of forwardFields(c)) {
    checkForwardAddress(f, at);
    if (seen.some((o) => o.proto === f.proto && o.hostAddr === f.hostAddr && o.hostPort === f.hostPort)) {
      const reason = `${f.hostPort} is forwarded twice`;
      throw new CorralError('invalid-argument', `invalid argument "${at}.hostPort": ${reason}`, `${at}.hostPort`, { reason });
    }
    seen.push(f);
    const holder = others.find((o) => allForwards(o.config).some((g) => clash(g, f)));
    if (holder) {
      const reason = `host port ${f.hostPort}/${f.proto} is already forwarded by VM "${holder.name}"`;
      throw new CorralError('conflict', `${reason}: pick another port`, `${at}.hostPort`, { reason });
    }
  }
  const l = c.liveness;
  if (l && l.kind !== 'agent' && !allForwards(c).some((f) => f.proto === 'tcp' && f.guestPort === l.port)) {
    const reason = `the probe needs a tcp port forward to guest port ${l.port} (e.g. --forward tcp:HOSTPORT:${l.port})`;
    throw new CorralError('invalid-argument', `invalid argument "liveness.port": ${reason}`, 'liveness.port', { reason });
  }
}

/** Whether another program listens where a forward would (its own QEMU's forwards are not asked about). */
export async function checkPortsFree(c: Pick<VmConfig, 'nics'>, own: ReadonlyArray<Pick<VmConfig, 'nics'>>): Promise<void> {
  const mine = own.flatMap((o) => allForwards(o));
  for (const { f, at } of forwardFields(c)) {
    if (mine.some((g) => clash(g, f))) continue;
    const err = await tryBind(f);
    if (err) {
      const reason = `host port ${f.hostPort}/${f.proto} on ${f.hostAddr} is in use by another program (${portHolder(f.proto, f.hostPort) ?? err})`;
      throw new CorralError('conflict', `${reason}: pick another port`, `${at}.hostPort`, { reason });
    }
  }
}

function tryBind(f: PortForward): Promise<string | null> {
  return new Promise((resolve) => {
    const done = (err: NodeJS.ErrnoException | null) => resolve(err && err.code === 'EADDRINUSE' ? err.code : null);
    if (f.proto === 'udp') {
      const s = dgram.createSocket('udp4');
      s.once('error', (e) => {
        s.close();
        done(e);
      });
      s.bind(f.hostPort, f.hostAddr, () => s.close(() => done(null)));
      return;
    }
    const s = net.createServer();
    s.once('error', (e) => done(e));
    s.listen(f.hostPort, f.hostAddr, () => s.close(() => done(null)));
  });
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
