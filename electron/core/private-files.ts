// Directories and files only this user can reach. Sockets, the pidfile, the store and logs
// decide what a guest runs and who drives it: another user who could swap a directory on the
// way to them (a symlink planted in /tmp, a dir of theirs, a world-writable parent) could
// hijack a guest. These checks refuse such paths with a message instead of following them.
import fs from 'node:fs';
import path from 'node:path';

const myUid = (): number | undefined => process.getuid?.();

const mode = (m: number) => (m & 0o7777).toString(8).padStart(4, '0');

function lstatOrNull(p: string): fs.Stats | null {
  try {
    return fs.lstatSync(p);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return null;
    throw err;
  }
}

/** Writable by group or others without the sticky bit: anyone could rename what is inside. */
const openToOthers = (st: fs.Stats) => (st.mode & 0o022) !== 0 && (st.mode & 0o1000) === 0;

/**
 * Creates `dir` (0700) and any dir missing between `base` and it. Every dir below `base` must
 * be a real directory (no symlink), ours, and not writable by others; `dir` itself is made 0700.
 * Without `base`, only `dir` is checked (its parents are already ours, e.g. the data dir).
 */
export function ensurePrivateDir(dir: string, base?: string): void {
  const uid = myUid();
  const chain = base ? path.relative(base, dir).split(path.sep).filter(Boolean) : [];
  if (base && (chain[0] === '..' || path.isAbsolute(path.relative(base, dir)))) throw new Error(`${dir} is not inside ${base}`);
  if (!base) fs.mkdirSync(path.dirname(dir), { recursive: true, mode: 0o700 });
  let cur = base ?? path.dirname(dir);
  for (const part of base ? chain : [path.basename(dir)]) {
    cur = path.join(cur, part);
    let st = lstatOrNull(cur);
    if (!st) {
      try {
        fs.mkdirSync(cur, { mode: 0o700 });
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err; // raced: checked below like any other
      }
      st = fs.lstatSync(cur);
    }
    if (st.isSymbolicLink())
      throw new Error(
        `${cur} is a symbolic link; Corral does not follow links to its private dirs (another user may have planted it): remove it`,
      );
    if (!st.isDirectory()) throw new Error(`${cur} is not a directory`);
    if (uid !== undefined && st.uid !== uid) throw new Error(`${cur} belongs to another user (uid ${st.uid}); Corral will not use it`);
    if (cur === dir) {
      if ((st.mode & 0o077) !== 0) fs.chmodSync(cur, 0o700);
    } else if (openToOthers(st)) {
      throw new Error(`${cur} is writable by other users (mode ${mode(st.mode)}); Corral will not keep private files below it`);
    }
  }
}

/**
 * Checks a shared base such as /tmp and each dir above it: owned by us or root, and not
 * writable by others unless sticky (as /tmp is), so no one else can swap what we create in it.
 * Symlinks on the way are allowed only when owned by us or root; their targets are checked too.
 */
export function checkSharedBase(base: string): void {
  const uid = myUid();
  const trusted = (st: fs.Stats) => uid === undefined || st.uid === uid || st.uid === 0;
  let cur = path.parse(base).root;
  for (const part of path.relative(cur, path.resolve(base)).split(path.sep).filter(Boolean)) {
    cur = path.join(cur, part);
    const link = fs.lstatSync(cur);
    if (link.isSymbolicLink() && !trusted(link)) throw new Error(`${cur} is a symbolic link of another user (uid ${link.uid})`);
  }
  const real = fs.realpathSync(base);
  cur = path.parse(real).root;
  for (const part of ['', ...path.relative(cur, real).split(path.sep).filter(Boolean)]) {
    cur = path.join(cur, part);
    const st = fs.statSync(cur);
    if (!st.isDirectory()) throw new Error(`${cur} is not a directory`);
    if (!trusted(st)) throw new Error(`${cur} belongs to another user (uid ${st.uid}); Corral will not keep sockets below it`);
    if (openToOthers(st))
      throw new Error(`${cur} is writable by other users (mode ${mode(st.mode)}) and not sticky; Corral will not keep sockets below it`);
  }
}

/**
 * The data dir given with --data (or the default): created 0700 when new. An existing one must
 * be ours and a real directory; if others can reach it, it is made 0700 only when empty or
 * already a Corral data dir holding nothing of another user. Anything else is refused, its
 * permissions left as they are: Corral never chmods someone else's (or a shared) directory.
 */
export function prepareDataDir(root: string, marker: string): void {
  const st = lstatOrNull(root);
  if (!st) {
    fs.mkdirSync(root, { recursive: true, mode: 0o700 });
    fs.chmodSync(root, 0o700); // mkdir's mode went through the umask
    return;
  }
  const uid = myUid();
  const why = (s: string) => new Error(`the data dir ${root} ${s}; pick another with --data (a new or empty directory of yours)`);
  if (st.isSymbolicLink()) throw why('is a symbolic link: give the directory it points to');
  if (!st.isDirectory()) throw why('is not a directory');
  if (uid !== undefined && st.uid !== uid) throw why(`belongs to another user (uid ${st.uid})`);
  if ((st.mode & 0o077) === 0) return;
  const entries = fs.readdirSync(root);
  const foreign = uid === undefined ? undefined : entries.find((e) => lstatOrNull(path.join(root, e))?.uid !== uid);
  if (foreign !== undefined) throw why(`holds files of other users (such as "${foreign}") and is open to them (mode ${mode(st.mode)})`);
  if (entries.length > 0 && !entries.includes(marker))
    throw why(
      `is open to other users (mode ${mode(st.mode)}) and holds files Corral did not make; \`chmod 700\` it first to use it anyway`,
    );
  fs.chmodSync(root, 0o700);
}

/**
 * Runs `fn` with umask 177, so the files and sockets it creates (or a process it spawns
 * creates: QEMU's sockets, pidfile and serial log, qemu-img's images, SQLite's files) are 0600
 * from the first moment. Not for creating directories (they would lack their x bit). `fn`
 * must be synchronous: the umask is the whole process's.
 */
export function withPrivateUmask<T>(fn: () => T): T {
  const old = process.umask(0o177);
  try {
    return fn();
  } finally {
    process.umask(old);
  }
}

/** Makes an existing file of ours 0600 (one an older Corral created under a looser umask). */
export function tightenFile(file: string): void {
  const st = lstatOrNull(file);
  if (st?.isFile() && st.uid === myUid() && (st.mode & 0o077) !== 0) fs.chmodSync(file, 0o600);
}
