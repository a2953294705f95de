// Which host folders may be shared into a guest (vms/share-checks.ts), on real directories:
// judged by real path, with the reason naming the field.
import fs from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { toApiError } from '../../electron/core/api/dispatcher';
import { openDb } from '../../electron/core/store/db';
import { PoolRepo } from '../../electron/core/store/pool-repo';
import { Pools } from '../../electron/core/vms/pools';
import { checkShareFolder, defaultTag } from '../../electron/core/vms/share-checks';
import { tempDir } from '../helpers';

function setup() {
  const data = tempDir();
  const outside = tempDir('corral-share-');
  const pools = new Pools(new PoolRepo(openDb(':memory:')), {
    root: data,
    images: path.join(data, 'images'),
    vmsDir: path.join(data, 'vms'),
  });
  return { data, outside, pools };
}

function reason(fn: () => unknown): { field?: string; reason?: string } {
  try {
    fn();
  } catch (err) {
    return toApiError(err);
  }
  throw new Error('not refused');
}

describe('shared folder checks', () => {
  it('refuses /, system trees, the data dir, folders in or around it, and says where a symlink leads', () => {
    const { data, outside, pools } = setup();
    const check = (dir: string) => reason(() => checkShareFolder('path', dir, pools, [], false));
    expect(check('/')).toMatchObject({ field: 'path', reason: '/: is the root directory: share a folder below it' });
    expect(check('/etc').reason).toMatch(/is in \/etc, a host system tree/);
    expect(check('/proc/self').reason).toMatch(/host system tree/);
    expect(check(data).reason).toMatch(/is Corral's data dir/);
    expect(check(path.join(data, 'images')).reason).toMatch(/is inside Corral's data dir/);
    expect(check(path.dirname(data)).reason).toMatch(/holds Corral's data dir/);
    const link = path.join(outside, 'link');
    fs.symlinkSync(path.join(data, 'images'), link);
    expect(check(link).reason).toMatch(/is inside Corral's data dir .*\(it leads to .*images\)$/);
    fs.writeFileSync(path.join(outside, 'file'), '');
    expect(check(path.join(outside, 'file')).reason).toMatch(/not a directory/);
    expect(check(path.join(outside, 'none')).reason).toMatch(/no such directory/);
  });

  it('refuses a pool (VM disks) and a folder another VM writes to; two read-only shares may overlap', () => {
    const { outside, pools } = setup();
    const pool = path.join(outside, 'pool');
    fs.mkdirSync(pool);
    pools.add('isos', pool);
    expect(reason(() => checkShareFolder('path', outside, pools, [], true)).reason).toMatch(/overlaps the storage pool "isos"/);
    const shared = path.join(fs.realpathSync(outside), 'shared');
    fs.mkdirSync(shared);
    const other = [{ vm: 'web', share: { path: shared, tag: 'x', readOnly: false, via: 'auto' as const } }];
    expect(reason(() => checkShareFolder('path', shared, pools, other, true)).reason).toMatch(/overlaps the folder "web" shares/);
    const ro = [{ vm: 'web', share: { ...other[0]!.share, readOnly: true } }];
    expect(checkShareFolder('path', shared, pools, ro, true)).toBe(shared);
    expect(() => checkShareFolder('path', shared, pools, ro, false)).toThrow(/two VMs may share a folder only read-only/);
  });

  it('makes a tag from the folder name, unique within the VM', () => {
    expect(defaultTag('/home/ann/My Projects', [])).toBe('My-Projects');
    expect(defaultTag('/srv/data', ['data'])).toBe('data-2');
    expect(defaultTag('/srv/.hidden', [])).toBe('hidden');
  });
});
