// The checks that keep Corral's dirs and files out of other users' reach, on real files.
// Cases that need a file of another user run only as root (chown).
import fs from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { checkSharedBase, ensurePrivateDir, prepareDataDir, tightenFile, withPrivateUmask } from '../../electron/core/private-files';
import { tempDir } from '../helpers';

const root = process.getuid?.() === 0;
const modeOf = (p: string) => fs.statSync(p).mode & 0o7777;
const OTHER_UID = 54321;

describe('private dirs below a base', () => {
  it('creates the missing dirs 0700', () => {
    const base = tempDir();
    const dir = path.join(base, 'a', 'b');
    withUmask(0o022, () => ensurePrivateDir(dir, base));
    expect(modeOf(path.join(base, 'a'))).toBe(0o700);
    expect(modeOf(dir)).toBe(0o700);
  });

  it('makes an existing dir of ours 0700', () => {
    const base = tempDir();
    fs.mkdirSync(path.join(base, 'x'), { mode: 0o755 });
    ensurePrivateDir(path.join(base, 'x'), base);
    expect(modeOf(path.join(base, 'x'))).toBe(0o700);
  });

  it('refuses a symlink on the way, and creates nothing where it points', () => {
    const base = tempDir();
    const elsewhere = tempDir();
    fs.symlinkSync(elsewhere, path.join(base, 'corral-1000'));
    expect(() => ensurePrivateDir(path.join(base, 'corral-1000', 'key-vm'), base)).toThrow(/corral-1000 is a symbolic link/);
    expect(fs.readdirSync(elsewhere)).toEqual([]);
    fs.symlinkSync(elsewhere, path.join(base, 'last'));
    expect(() => ensurePrivateDir(path.join(base, 'last'), base)).toThrow(/symbolic link/);
    expect(() => ensurePrivateDir(path.join(base, 'last'))).toThrow(/symbolic link/);
  });

  it('refuses a dir on the way that others may write to', () => {
    const base = tempDir();
    fs.mkdirSync(path.join(base, 'open'));
    fs.chmodSync(path.join(base, 'open'), 0o777);
    expect(() => ensurePrivateDir(path.join(base, 'open', 'run'), base)).toThrow(/writable by other users \(mode 0777\)/);
  });

  it.runIf(root)('refuses a dir of another user', () => {
    const base = tempDir();
    fs.mkdirSync(path.join(base, 'theirs'), { mode: 0o700 });
    fs.chownSync(path.join(base, 'theirs'), OTHER_UID, OTHER_UID);
    expect(() => ensurePrivateDir(path.join(base, 'theirs', 'run'), base)).toThrow(/belongs to another user \(uid 54321\)/);
    expect(fs.readdirSync(path.join(base, 'theirs'))).toEqual([]);
  });
});

describe('a shared base such as /tmp', () => {
  it('accepts a sticky world-writable dir and refuses one that is not sticky', () => {
    const sticky = tempDir();
    fs.chmodSync(sticky, 0o1777);
    expect(() => checkSharedBase(sticky)).not.toThrow();
    const open = tempDir();
    fs.chmodSync(open, 0o777);
    expect(() => checkSharedBase(open)).toThrow(/writable by other users \(mode 0777\) and not sticky/);
    expect(() => checkSharedBase(path.join(open, '..', path.basename(open)))).toThrow(/not sticky/);
  });

  it.runIf(root)('refuses a base of another user, and a symlink of another user on the way', () => {
    const theirs = tempDir();
    fs.chownSync(theirs, OTHER_UID, OTHER_UID);
    expect(() => checkSharedBase(theirs)).toThrow(/belongs to another user/);
    const parent = tempDir();
    const link = path.join(parent, 'link');
    fs.symlinkSync(tempDir(), link);
    fs.lchownSync(link, OTHER_UID, OTHER_UID);
    expect(() => checkSharedBase(link)).toThrow(/symbolic link of another user/);
  });
});

describe('the data dir', () => {
  it('is created 0700 when new, and an empty one of ours is made 0700', () => {
    const fresh = path.join(tempDir(), 'new', 'data');
    withUmask(0o022, () => prepareDataDir(fresh, 'corral.db'));
    expect(modeOf(fresh)).toBe(0o700);
    const empty = tempDir();
    fs.chmodSync(empty, 0o755);
    prepareDataDir(empty, 'corral.db');
    expect(modeOf(empty)).toBe(0o700);
  });

  it('an open Corral data dir of ours is made 0700; an open dir of other things is refused and left alone', () => {
    const old = tempDir();
    fs.writeFileSync(path.join(old, 'corral.db'), '');
    fs.chmodSync(old, 0o755);
    prepareDataDir(old, 'corral.db');
    expect(modeOf(old)).toBe(0o700);
    const home = tempDir();
    fs.writeFileSync(path.join(home, 'notes.txt'), '');
    fs.chmodSync(home, 0o755);
    expect(() => prepareDataDir(home, 'corral.db')).toThrow(/open to other users \(mode 0755\).*--data/);
    expect(modeOf(home)).toBe(0o755);
  });

  it.runIf(root)("a 1777 dir holding another user's file is refused and keeps its mode", () => {
    const shared = tempDir();
    fs.chmodSync(shared, 0o1777);
    fs.writeFileSync(path.join(shared, 'their-file'), '');
    fs.chownSync(path.join(shared, 'their-file'), OTHER_UID, OTHER_UID);
    expect(() => prepareDataDir(shared, 'corral.db')).toThrow(/holds files of other users \(such as "their-file"\).*mode 1777/);
    expect(modeOf(shared)).toBe(0o1777);
  });

  it.runIf(root)('a dir of another user is refused', () => {
    const theirs = tempDir();
    fs.chownSync(theirs, OTHER_UID, OTHER_UID);
    expect(() => prepareDataDir(theirs, 'corral.db')).toThrow(/belongs to another user/);
  });

  it('a symlink or a file is refused', () => {
    const base = tempDir();
    fs.symlinkSync(tempDir(), path.join(base, 'link'));
    expect(() => prepareDataDir(path.join(base, 'link'), 'corral.db')).toThrow(/symbolic link/);
    fs.writeFileSync(path.join(base, 'file'), '');
    expect(() => prepareDataDir(path.join(base, 'file'), 'corral.db')).toThrow(/not a directory/);
  });
});

describe('private files', () => {
  it('are created 0600 under the private umask, and an older loose one is tightened', () => {
    const dir = tempDir();
    withUmask(0o022, () => withPrivateUmask(() => fs.writeFileSync(path.join(dir, 'f'), '')));
    expect(modeOf(path.join(dir, 'f'))).toBe(0o600);
    fs.writeFileSync(path.join(dir, 'old'), '', { mode: 0o644 });
    fs.chmodSync(path.join(dir, 'old'), 0o644);
    tightenFile(path.join(dir, 'old'));
    expect(modeOf(path.join(dir, 'old'))).toBe(0o600);
    tightenFile(path.join(dir, 'missing')); // nothing to do
  });
});

function withUmask<T>(mask: number, fn: () => T): T {
  const old = process.umask(mask);
  try {
    return fn();
  } finally {
    process.umask(old);
  }
}
