// Where an export may write: a new file in a pool (pools stay the only doors to host files),
// written under a hidden upload name and renamed into place only when complete.
import { randomBytes } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { CorralError } from '../api/dispatcher.js';
import { UPLOAD_PREFIX, within, type Pools } from '../vms/pools.js';

export interface PoolTarget {
  /** The final path. */
  file: string;
  /** Where it is written until complete. */
  temp: string;
}

export function newPoolFile(pools: Pools, file: string, field = 'file'): PoolTarget {
  const refuse = (why: string): never => {
    throw new CorralError('invalid-argument', `invalid argument "${field}": ${file}: ${why}`, field, { reason: `${file}: ${why}` });
  };
  let dir = '';
  try {
    dir = fs.realpathSync(path.dirname(file));
  } catch {
    refuse('its folder does not exist');
  }
  const name = path.basename(file);
  if (!name || name.startsWith('.')) refuse('the name must not start with "."');
  if (!pools.poolOf(dir) || within(dir, pools.basesDir())) refuse('is outside the storage pools: write it into a pool (corral pool list)');
  const final = path.join(dir, name);
  if (fs.existsSync(final)) refuse('already exists; Corral does not overwrite it');
  return { file: final, temp: path.join(dir, `${UPLOAD_PREFIX}${randomBytes(6).toString('hex')}-${name}`) };
}

/** A private scratch folder in the default pool (same file system as new disks: moves, not copies). */
export function stagingDir(pools: Pools, what: string): string {
  const dir = path.join(path.dirname(pools.basesDir()), `${UPLOAD_PREFIX}${what}-${randomBytes(6).toString('hex')}`);
  fs.mkdirSync(dir, { mode: 0o700 });
  return dir;
}
