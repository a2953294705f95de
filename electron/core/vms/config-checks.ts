// Checks a VM config against the host before it is saved or started: files exist and can be
// read, forwards do not collide, a liveness probe has a port to probe. Errors name the field.
import fs from 'node:fs';
import type { VmConfig } from '../api/contract.js';
import { CorralError } from '../api/dispatcher.js';
import { checkImage, detectFormat, type ImageFormat } from '../qemu/img.js';

type BootFiles = Pick<VmConfig, 'iso' | 'kernel' | 'initrd' | 'append'>;

export function checkBootFiles(c: BootFiles): void {
  for (const field of ['iso', 'kernel', 'initrd'] as const) {
    const p = c[field];
    if (!p) continue;
    let why: string | null = null;
    try {
      if (!fs.statSync(p).isFile()) why = 'not a file';
      else fs.accessSync(p, fs.constants.R_OK);
    } catch (err) {
      why = (err as NodeJS.ErrnoException).code === 'ENOENT' ? 'no such file' : 'not readable';
    }
    if (why) throw new CorralError('invalid-argument', `invalid argument "${field}": ${p}: ${why}`, field, { reason: `${p}: ${why}` });
  }
  if ((c.initrd || c.append) && !c.kernel) {
    const field = c.initrd ? 'initrd' : 'append';
    throw new CorralError('invalid-argument', `invalid argument "${field}": needs a kernel`, field, { reason: 'needs a kernel' });
  }
}

export function checkNetwork(c: Pick<VmConfig, 'forwards' | 'liveness'>): void {
  const seen = new Set<string>();
  c.forwards.forEach((f, i) => {
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

/** An existing image the user brings: real path, readable and writable, format from its header. */
export async function checkExistingImage(
  image: string,
  format: ImageFormat | undefined,
  env: NodeJS.ProcessEnv,
): Promise<{ path: string; format: ImageFormat }> {
  let real: string;
  try {
    real = fs.realpathSync(image);
    fs.accessSync(real, fs.constants.R_OK | fs.constants.W_OK);
  } catch (err) {
    const why = (err as NodeJS.ErrnoException).code === 'ENOENT' ? 'no such file' : 'not readable and writable';
    throw new CorralError('invalid-argument', `disk image ${image}: ${why}`, 'disk.image');
  }
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
